"""Build the service from a MODEL string and its defence flags, and run it with uvicorn."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import signal
import socket
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from glassbox.errors import GlassboxError
from glassbox.oracle.core import label_only, noisy, rounded
from glassbox.serve import logs
from glassbox.serve.accounts import MEMORY, Accounts
from glassbox.serve.app import MAX_BODY, Service, create_app

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
    max_body: int = MAX_BODY,
    state: str | Path = MEMORY,
    docs: bool = False,
    output: str | None = None,
) -> tuple[Service, str]:
    """The :class:`Service` for ``model`` (anything ``glassbox extract`` takes) and its description."""
    from glassbox.oracle.targets import resolve_target
    from glassbox.toy.target import toy_instance

    if model.startswith(("http://", "https://")):
        raise GlassboxError(f"{model}: glassbox serve needs a model, not the address of a service")
    if max_rows < 1:
        raise GlassboxError(f"--max-rows must be at least 1, got {max_rows}")
    if max_body < 1024:
        raise GlassboxError(f"--max-body must be at least 1 KiB, got {max_body} bytes")
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
        if oracle.output_dim < 2:
            raise GlassboxError(
                f"--label-only needs a model with at least two outputs: {model} has one, so its "
                "top-1 label would be 0 for every input; serve it without --label-only"
            )
        oracle = label_only(oracle)
        desc += ", top-1 label only"
    defences: dict[str, Any] = {
        "float32": float32,
        "round_digits": round_digits,
        "noise_sigma": noise,
        "label_only": label,
    }
    accounts = Accounts(api_keys, budget, state)
    service = Service(oracle, accounts, max_rows, defences, max_body=max_body, docs=docs)
    return service, desc


def default_state(model: str, seed: int = 0, instance: int | None = None) -> Path:
    """Where ``glassbox serve MODEL`` keeps usage by default: one SQLite file per model.

    In the user data folder: ``$XDG_DATA_HOME/glassbox/serve/`` (``~/.local/share/...``
    when unset), named after the model and a digest of its full identity (a file model by
    its absolute path; the seed and the instance).
    """
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    identity = model if model.startswith("random:") else str(Path(model).resolve())
    digest = hashlib.sha256(f"{identity}\0{seed}\0{instance}".encode()).hexdigest()[:12]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(model).name or model)[:48]
    return base / "glassbox" / "serve" / f"{slug}-{digest}.sqlite"


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


def serve(
    service: Service,
    sock: socket.socket,
    ready: Callable[[str], None],
    *,
    json_logs: bool = False,
) -> None:
    """Serve on ``sock`` until interrupted (SIGINT or SIGTERM); ``ready`` gets the address first."""
    import uvicorn

    logs.setup(json_logs)
    # Overflow in the model is answered (binary) or refused (JSON), not warned about on stderr.
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    config = uvicorn.Config(create_app(service), log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)

    def stop(*_: object) -> None:
        server.should_exit = True

    # A signal before uvicorn takes over its handlers (or the one it re-raises when done)
    # asks the server to stop, so the usage summary below is written and the command ends.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    ready(url_of(sock))
    try:
        server.run(sockets=[sock])
        for acct in service.accounts.all():
            use = service.accounts.usage(acct)
            logs.log_event(
                "usage",
                f"usage {acct.label}: {use['queries']} queries in {use['requests']} requests",
                key=acct.label,
                queries=use["queries"],
                requests=use["requests"],
            )
    finally:
        service.close()
