"""The service's log: one line per request, whatever the client sends, as text or JSON lines.

Every field a client can touch (method, path, query) is escaped before it is written: the
path is the raw one from the request line, and any byte that is not printable ASCII, a
backslash or a space is written as ``\\xNN``. So a percent-encoded newline (or a raw one)
can never start a forged line. ``--log-json`` writes each line as a JSON object instead.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

LOG = logging.getLogger("glassbox.serve")
#: Longest path logged, in escaped characters (a longer one is cut and marked).
MAX_PATH = 256


def escape(value: bytes | str) -> str:
    """``value`` as printable ASCII with no spaces: other bytes (UTF-8 for text) become ``\\xNN``."""
    raw = value.encode("utf-8", "backslashreplace") if isinstance(value, str) else value
    return "".join(chr(b) if 33 <= b <= 126 and b != 92 else f"\\x{b:02x}" for b in raw)


def request_target(scope: Any) -> str:
    """The escaped path and query of a request, as the client sent them (cut at MAX_PATH)."""
    raw = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogateescape")
    query = scope.get("query_string") or b""
    target = escape(raw + (b"?" + query if query else b""))
    return target if len(target) <= MAX_PATH else target[:MAX_PATH] + "..."


class JsonLines(logging.Formatter):
    """Each record as one JSON object: its fields (``extra``) or its message, and the time."""

    def format(self, record: logging.LogRecord) -> str:
        """One line of JSON (``json.dumps`` escapes every control character)."""
        doc: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
        }
        fields = getattr(record, "fields", None)
        if not isinstance(fields, dict):  # uvicorn's own lines
            fields = {"event": "server", "message": record.getMessage()}
        doc.update(fields)
        return json.dumps(doc, allow_nan=False, default=str)


class OneLine(logging.Formatter):
    """Text lines prefixed ``glassbox serve:``; a newline in a message cannot start another line."""

    def format(self, record: logging.LogRecord) -> str:
        """The message with control characters escaped."""
        text = super().format(record)
        return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def setup(json_lines: bool) -> None:
    """Send the service's log and uvicorn's warnings to stderr, as JSON lines or as text."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines() if json_lines else OneLine("glassbox serve: %(message)s"))
    for name, level in ((LOG.name, logging.INFO), ("uvicorn", logging.WARNING)):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


def log_request(fields: dict[str, Any]) -> None:
    """One request's line: ``METHOD TARGET STATUS rows=N key=LABEL [replay] T ms``."""
    rows = "-" if fields["rows"] is None else fields["rows"]
    text = (
        f"{fields['method']} {fields['path']} {fields['status']} rows={rows} "
        f"key={fields['key']}{' replay' if fields['replay'] else ''} {fields['ms']:.1f} ms"
    )
    LOG.info("%s", text, extra={"fields": {"event": "request", **fields}})


def log_event(event: str, message: str, **fields: Any) -> None:
    """A line that is not a request (start, usage at the end, an internal error)."""
    LOG.info("%s", message, extra={"fields": {"event": event, "message": message, **fields}})


class LogRequests:
    """ASGI middleware: one log line per request (method, path, status, rows, key), never the body."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Pass the request on; log it when it is done, however it ends."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0, status = time.perf_counter(), [500]

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            state = scope.get("state", {})  # what the routes put in request.state
            account = state.get("account")
            log_request(
                {
                    "method": escape(str(scope.get("method", "-"))),
                    "path": request_target(scope),
                    "status": status[0],
                    "rows": state.get("rows"),
                    "key": account.label if account is not None else "-",
                    "replay": bool(state.get("replay")),
                    "ms": round(1e3 * (time.perf_counter() - t0), 1),
                }
            )
