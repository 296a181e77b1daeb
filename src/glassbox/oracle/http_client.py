"""An oracle that asks a running prediction service over HTTP (``glassbox serve`` or alike).

Batches go over one persistent connection (httpx), in the binary float64 encoding of
:mod:`glassbox.oracle.wire`, split to the service's row limit. Each batch carries a fresh request
id that its retries reuse: connection errors, timeouts and 5xx answers are retried with
exponential backoff, and the service answers a repeated id without charging it again, so
the rows this oracle counts are the rows the service counts. The budget is the smaller of
the one given and what the service says is left for the key; when the service refuses a
batch because the key's budget is spent, the query raises
:class:`~glassbox.oracle.core.QueryBudgetExceeded` and nothing of it is counted.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
import uuid
from typing import Any

import numpy as np

from glassbox.errors import GlassboxError
from glassbox.extras import require
from glassbox.oracle.core import UNLABELLED, Array, Oracle, QueryBudgetExceeded
from glassbox.oracle.wire import (
    API_KEY,
    BINARY,
    BUDGET_SPENT,
    PREFIX,
    REQUEST_ID,
    decode_binary,
    encode_binary,
)

#: Statuses worth retrying: the service (or something in front of it) failed, not the request.
RETRY_STATUSES = frozenset({500, 502, 503, 504})

#: A host name: letters (any script), digits, '-', '.', '_', '~' and %-escapes.
_HOST = re.compile(r"[\w.~%-]+")


def _bad_url(url: str, fault: str) -> GlassboxError:
    return GlassboxError(
        f"{url!r} is not a service address: {fault}; give http://HOST:PORT, "
        "e.g. http://127.0.0.1:8000 or http://[::1]:8000"
    )


def _host_port(url: str, hostport: str) -> tuple[str, str | None]:
    """Split ``HOST[:PORT]`` or ``[IPv6][:PORT]``; the port text is None when none is given."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise _bad_url(url, "the '[' that opens an IPv6 address is never closed by ']'")
        host, after = hostport[1:end], hostport[end + 1 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _bad_url(url, f"[{host}] is not an IPv6 address") from None
        if after and not after.startswith(":"):
            raise _bad_url(url, f"{after!r} after the IPv6 address is not ':PORT'")
        return host, after[1:] if after else None
    host, colon, port = hostport.partition(":")
    if ":" in port:
        raise _bad_url(url, "an IPv6 address goes in brackets")
    if host and not _HOST.fullmatch(host):
        raise _bad_url(url, f"{host!r} is not a host name")
    return host, port if colon else None


def check_url(url: str) -> str:
    """``url`` as the address of a service (scheme lower-cased); a malformed one is a one-line error.

    These are faults of the address itself, which no retry can mend: an unknown scheme,
    no host, an unclosed IPv6 bracket, a port that is not a whole number from 1 to 65535.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        raise _bad_url(url, "it does not begin with http:// or https://")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise _bad_url(url, "it holds a space or a control character")
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    host, port = _host_port(url, netloc.rpartition("@")[2])
    if not host:
        raise _bad_url(url, "it names no host")
    if port == "":
        raise _bad_url(url, "the ':' after the host names no port")
    if port is not None:
        if not (port.isascii() and port.isdigit()):
            raise _bad_url(url, f"port {port!r} is not a whole number from 1 to 65535")
        if not 1 <= int(port) <= 65535:
            raise _bad_url(url, f"port {int(port)} is out of range (1 to 65535)")
    return scheme.lower() + "://" + rest


def settle(ledger: Any, answered: int) -> None:
    """Take back from ``ledger``'s current phase what it charged beyond the ``answered`` rows."""
    extra = ledger.spent - answered
    if extra > 0:
        label = ledger.phases[-1] if ledger.phases else UNLABELLED
        ledger.by_phase[label] = max(ledger.by_phase.get(label, 0) - extra, 0)


def _reason(response: Any) -> str:
    try:
        doc = response.json()
        return f"{doc['error']}: {doc['detail']}"
    except (ValueError, KeyError, TypeError):
        return response.reason_phrase or "no reason given"


class HttpOracle(Oracle):
    """The black box behind ``url``: ``GET /v1/info`` gives its dimensions, ``POST /v1/predict`` answers."""

    def __init__(
        self,
        url: str,
        budget: int | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        retries: int = 8,
        backoff: float = 0.05,
    ) -> None:
        url = check_url(url)
        require("httpx", f"querying the service at {url}")
        import httpx

        if retries < 0 or backoff < 0 or timeout <= 0:
            raise GlassboxError("retries and backoff must be non-negative and timeout positive")
        headers = {"Accept": BINARY, "Content-Type": BINARY}
        if api_key:
            headers[API_KEY] = api_key
        self.__url = url.rstrip("/")
        self.__http = httpx
        # Without TCP_NODELAY, Nagle's algorithm and delayed ACKs cost ~40 ms a request.
        nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        try:
            self.__client = httpx.Client(
                base_url=self.__url,
                headers=headers,
                timeout=timeout,
                follow_redirects=False,
                transport=httpx.HTTPTransport(socket_options=nodelay),
            )
        except httpx.InvalidURL as exc:  # what check_url let through
            raise _bad_url(url, str(exc)) from None
        self.__retries, self.__backoff = retries, backoff
        self.__answered = 0
        try:
            info = self.__send("GET", f"{PREFIX}/info").json()
            left = self.__send("GET", f"{PREFIX}/usage").json().get("remaining")
            d, m = int(info["input_dim"]), int(info["output_dim"])
            limits = info.get("defences", {})
            rows = max(int(limits.get("max_rows") or 8192), 1)
            body = limits.get("max_body_bytes")  # split batches to fit the body limit too
            fit = rows if body is None else max(int(body) // (8 * d), 1)
            self.__max_rows = min(rows, fit)
        except (ValueError, KeyError, TypeError, httpx.InvalidURL) as exc:
            self.__client.close()
            if isinstance(exc, GlassboxError):
                raise
            raise GlassboxError(
                f"{url} does not answer like a glassbox prediction service"
            ) from None
        except BaseException:
            self.__client.close()
            raise
        if left is not None:
            budget = int(left) if budget is None else min(budget, int(left))
        super().__init__(d, m, budget)

    def close(self) -> None:
        """Close the connection to the service."""
        self.__client.close()

    def __enter__(self) -> HttpOracle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __send(self, method: str, path: str, body: bytes | None = None) -> Any:
        """One request, retried on connection errors, timeouts and 5xx; a refusal is raised."""
        http = self.__http
        headers = {REQUEST_ID: uuid.uuid4().hex} if body is not None else None
        last = ""
        for attempt in range(self.__retries + 1):
            if attempt:
                time.sleep(min(self.__backoff * 2 ** (attempt - 1), 2.0))
            try:
                response = self.__client.request(method, path, content=body, headers=headers)
            except http.TransportError as exc:  # connect / read / write errors and timeouts
                last = f"{type(exc).__name__}"
                continue
            if response.status_code in RETRY_STATUSES:
                last = f"HTTP {response.status_code}"
                continue
            if response.status_code == 429 and BUDGET_SPENT in response.text:
                raise QueryBudgetExceeded(self.budget or 0, self.__answered, 0)
            if response.status_code != 200:
                raise GlassboxError(
                    f"the service at {self.__url} refused {method} {path} "
                    f"(HTTP {response.status_code} {_reason(response)})"
                )
            return response
        raise GlassboxError(
            f"the service at {self.__url} did not answer {method} {path} after "
            f"{self.__retries + 1} tries (last: {last}); "
            + ("rerun with --resume to go on" if body is not None else "is it running?")
        )

    def _answer(self, X: Array) -> Array:
        parts = []
        try:
            for i in range(0, X.shape[0], self.__max_rows):
                chunk = X[i : i + self.__max_rows]
                response = self.__send("POST", f"{PREFIX}/predict", encode_binary(chunk))
                y = decode_binary(response.content, self.output_dim)
                if y.shape[0] != chunk.shape[0]:
                    raise GlassboxError(
                        f"the service answered {y.shape[0]} rows to a batch of {chunk.shape[0]}"
                    )
                self.__answered += chunk.shape[0]
                parts.append(y)
        except QueryBudgetExceeded as exc:
            settle(self._ledger, self.__answered)
            raise QueryBudgetExceeded(
                self.budget or self._ledger.spent, self._ledger.spent, X.shape[0]
            ) from exc
        return np.vstack(parts) if parts else np.zeros((0, self.output_dim))


def http_target(url: str, budget: int | None) -> tuple[Oracle, None, str]:
    """The oracle of ``glassbox extract http://...`` (key from ``GLASSBOX_API_KEY``); no truth."""
    import os

    oracle = HttpOracle(url, budget, api_key=os.environ.get("GLASSBOX_API_KEY") or None)
    return oracle, None, f"the service at {url}"
