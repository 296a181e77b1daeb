"""The prediction API: ``POST /v1/predict``, ``GET /v1/info``, ``GET /v1/usage`` (FastAPI).

Every refusal is JSON ``{"error": CODE, "detail": REASON}`` with its status: 400 malformed
JSON or request id, 401/403 missing or wrong key, 409 a request id reused for another
batch, 413 a batch or body too large, 415 an unknown content type, 422 a batch of the wrong
shape or with non-finite numbers, 429 the key's budget spent. One log line per request
(path, status, rows, key label), never the inputs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from glassbox.errors import GlassboxError
from glassbox.oracle.core import Array, Oracle
from glassbox.oracle.wire import (
    API_KEY,
    BINARY,
    JSON,
    PREFIX,
    REQUEST_ID,
    decode_binary,
    encode_binary,
    media_type,
    wants_binary,
)
from glassbox.serve.accounts import Account, Accounts, Refusal

LOG = logging.getLogger("glassbox.serve")
#: Bytes a JSON number may take, with its separator (the repr of a double is at most 24).
JSON_BYTES_PER_NUMBER = 32


@dataclass(eq=False)
class Service:
    """What the API serves: the (weakened) oracle, its accounts, its limits and its defences."""

    oracle: Oracle
    accounts: Accounts
    max_rows: int
    defences: dict[str, Any] = field(default_factory=dict)

    @property
    def max_body(self) -> int:
        """The largest request body accepted, in bytes (a full batch of long JSON numbers)."""
        return self.max_rows * self.oracle.input_dim * JSON_BYTES_PER_NUMBER + 65536

    def info(self) -> dict[str, Any]:
        """What ``GET /v1/info`` says: dimensions, defences, limits, encodings; nothing about weights."""
        return {
            "input_dim": self.oracle.input_dim,
            "output_dim": self.oracle.output_dim,
            "defences": {
                **self.defences,
                "budget_per_key": self.accounts.budget,
                "max_rows": self.max_rows,
                "api_key_required": self.accounts.protected,
            },
            "encodings": [JSON, BINARY],
        }


def _refuse(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


def _key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get(API_KEY)


async def _body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise Refusal(413, "body_too_large", f"request body of {length} bytes exceeds {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refusal(413, "body_too_large", f"request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_json(body: bytes, width: int) -> Array:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise Refusal(400, "malformed_json", f"body is not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list):
        raise Refusal(422, "bad_shape", 'expected a JSON object {"inputs": [[...], ...]}')
    try:
        X = np.array(doc["inputs"])
    except (ValueError, TypeError, RecursionError, OverflowError):
        X = np.array([], dtype=object)
    if X.dtype.kind not in "fiu" or X.ndim != 2:
        raise Refusal(
            422, "bad_shape", '"inputs" must be a list of rows, each a list of numbers of one width'
        )
    return _checked(X.astype(np.float64), width)


def _checked(X: Array, width: int) -> Array:
    if X.shape[1] != width:
        raise Refusal(
            422, "wrong_width", f"rows have {X.shape[1]} numbers; this model takes {width}"
        )
    if X.shape[0] == 0:
        raise Refusal(422, "empty_batch", "the batch has no rows")
    if not np.all(np.isfinite(X)):
        raise Refusal(422, "not_finite", "inputs must be finite numbers (no NaN or Infinity)")
    return X


def _inputs(body: bytes, kind: str, width: int) -> Array:
    if kind == JSON:
        return _parse_json(body, width)
    try:
        return _checked(decode_binary(body, width), width)
    except GlassboxError as exc:
        raise Refusal(422, "bad_shape", str(exc)) from None


def _reply(Y: Array, binary: bool) -> Response:
    if binary:
        return Response(encode_binary(Y), media_type=BINARY)
    return Response(json.dumps({"outputs": Y.tolist()}), media_type=JSON)


class LogRequests:
    """ASGI middleware: one log line per request (method, path, status, rows, key), never the body."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
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
            state = scope.get("state", {})  # what the route put in request.state
            LOG.info(
                "%s %s %d rows=%s key=%s%s %.1f ms",
                scope["method"],
                scope["path"],
                status[0],
                state.get("rows", "-"),
                state.get("key", "-"),
                " replay" if state.get("replay") else "",
                1e3 * (time.perf_counter() - t0),
            )


def create_app(service: Service) -> FastAPI:
    """The FastAPI application serving ``service`` (one process, one model)."""
    app = FastAPI(title="glassbox prediction service", docs_url=None, redoc_url=None)
    app.add_middleware(LogRequests)
    app.openapi_url = None  # the schema would only describe what /v1/info says
    accounts, oracle = service.accounts, service.oracle

    @app.exception_handler(Refusal)
    async def refused(request: Request, exc: Refusal) -> JSONResponse:
        return _refuse(exc.status, exc.code, exc.detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _refuse(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        LOG.error("internal error on %s: %s", request.url.path, type(exc).__name__)
        return _refuse(500, "internal", "internal error")

    def account(request: Request) -> Account:
        acct = accounts.authorize(_key(request))
        request.state.key = acct.label
        return acct

    @app.get(f"{PREFIX}/info")
    async def info(request: Request) -> JSONResponse:
        account(request)
        return JSONResponse(service.info())

    @app.get(f"{PREFIX}/usage")
    async def usage(request: Request) -> JSONResponse:
        return JSONResponse(account(request).usage())

    @app.post(f"{PREFIX}/predict")
    async def predict(request: Request) -> Response:
        acct = account(request)
        kind = media_type(request.headers.get("content-type"))
        if kind not in (JSON, BINARY):
            raise Refusal(
                415, "unsupported_media_type", f"send {JSON} or {BINARY}, not {kind or 'nothing'}"
            )
        binary = wants_binary(request.headers.get("accept"), kind)
        body = await _body(request, service.max_body)
        rid = request.headers.get(REQUEST_ID)
        if rid is not None and not (0 < len(rid) <= 128 and rid.isascii() and rid.isprintable()):
            raise Refusal(400, "bad_request_id", f"{REQUEST_ID} must be 1 to 128 printable ASCII")
        digest = hashlib.sha256(kind.encode() + b"\0" + body).hexdigest()
        if rid is not None:
            seen = acct.replay(rid, digest)
            if seen is not None:
                request.state.rows, request.state.replay = seen.shape[0], True
                return _reply(seen, binary)
        X = _inputs(body, kind, oracle.input_dim)
        request.state.rows = X.shape[0]
        if X.shape[0] > service.max_rows:
            raise Refusal(
                413,
                "batch_too_large",
                f"a batch of {X.shape[0]} rows exceeds this service's limit of {service.max_rows}",
            )
        acct.charge(X.shape[0])
        Y = oracle.query(X)
        if rid is not None:
            acct.remember(rid, digest, Y)
        return _reply(Y, binary)

    return app
