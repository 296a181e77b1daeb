"""Build the service from a MODEL string and its defence flags, and run it with uvicorn."""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from glassbox.errors import GlassboxError
from glassbox.oracle.core import label_only, noisy, rounded
from glassbox.serve.accounts import Accounts
from glassbox.serve.app import LOG, Service, create_app

#: The default request-size limit, in rows (the attack asks at most 8192 per batch).
MAX_ROWS = 8192


def build_service(
    model: str,
    *,
    seed: int = 0,
    instance: int | None = None,
    float32: bool = False,
    round_digits: int | None = None,
    noise: float | None = None,
    noise_seed: int = 0,
    label: bool = False,
    api_keys: tuple[str, ...] = (),
    budget: int | None = None,
    max_rows: int = MAX_ROWS,
    output: str | None = None,
) -> tuple[Service, str]:
    """The :class:`Service` for ``model`` (anything ``glassbox extract`` takes) and its description."""
    from glassbox.oracle.targets import resolve_target
    from glassbox.toy.target import toy_instance

    if model.startswith(("http://", "https://")):
        raise GlassboxError(f"{model}: glassbox serve needs a model, not the address of a service")
    if max_rows < 1:
        raise GlassboxError(f"--max-rows must be at least 1, got {max_rows}")
    target = resolve_target(
        model,
        seed=seed,
        instance=instance,
        float32=float32,
        toy_loader=toy_instance,
        output=output,
    )
    oracle, desc = target.oracle, target.description
    if round_digits is not None:
        oracle = rounded(oracle, round_digits)
        desc += f", rounded to {round_digits} significant digits"
    if noise is not None:
        oracle = noisy(oracle, noise, seed=noise_seed)
        desc += f", noise sigma {noise:g}"
    if label:
        oracle = label_only(oracle)
        desc += ", top-1 label only"
    defences: dict[str, Any] = {
        "float32": float32,
        "round_digits": round_digits,
        "noise_sigma": noise,
        "label_only": label,
    }
    return Service(oracle, Accounts(api_keys, budget), max_rows, defences), desc


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1 or localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one); a taken port is a one-line error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP lets asyncio set TCP_NODELAY on each connection (else ~40 ms a request).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise GlassboxError(f"cannot listen on {host}:{port} ({exc.strerror})") from None
    sock.listen(128)
    return sock


def url_of(sock: socket.socket) -> str:
    """The http:// address a bound socket serves."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(service: Service, sock: socket.socket, ready: Callable[[str], None]) -> None:
    """Serve on ``sock`` until interrupted (SIGINT or SIGTERM); ``ready`` gets the address first."""
    import uvicorn

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("glassbox serve: %(message)s"))
    LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
    LOG.propagate = False
    config = uvicorn.Config(
        create_app(service), log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)

    def stop(*_: object) -> None:
        server.should_exit = True

    # A signal before uvicorn takes over its handlers (or the one it re-raises when done)
    # asks the server to stop, so the usage summary below is written and the command ends.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    ready(url_of(sock))
    server.run(sockets=[sock])
    for acct in service.accounts.all():
        LOG.info("usage %s: %d queries in %d requests", acct.label, acct.queries, acct.requests)
