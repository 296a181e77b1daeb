"""The prediction API: ``POST /v1/predict``, ``GET /v1/info``, ``GET /v1/usage`` (FastAPI).

When keys are set, every route but ``GET /v1/health`` needs one, unknown paths and the
schema included; the schema and docs (``/openapi.json``, ``/docs``) exist only with
``--docs``. Every refusal is JSON ``{"error": CODE, "detail": REASON}`` with its status: 400
malformed JSON or request id, 401/403 missing or wrong key, 409 a request id reused for
another batch, 413 a batch or body too large, 415 an unknown content type, 422 a batch of
the wrong shape or with non-finite numbers, or outputs that JSON cannot carry
(``not_finite_output``, not charged), 429 the key's budget spent. One log line per request
(:mod:`glassbox.serve.logs`), never the inputs.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from glassbox.oracle.core import Array, Oracle
from glassbox.oracle.wire import (
    API_KEY,
    BINARY,
    JSON,
    PREFIX,
    REQUEST_ID,
    encode_binary,
    media_type,
    wants_binary,
)
from glassbox.serve.accounts import Account, Accounts, Refusal
from glassbox.serve.bodies import (
    LARGE,
    LARGE_ANSWER,
    Offload,
    encode_json,
    finite_or_refuse,
    parse,
    parse_json,
)
from glassbox.serve.logs import LogRequests, log_event, request_target

HEALTH = f"{PREFIX}/health"
#: The default largest request body, in bytes (a client splits larger batches; see --max-body).
MAX_BODY = 16 * 2**20
#: Bytes a JSON number may take, with its separator (the repr of a double is at most 24).
JSON_BYTES_PER_NUMBER = 32


@dataclass(eq=False)
class Service:
    """What the API serves: the (weakened) oracle, its accounts, its limits and its defences."""

    oracle: Oracle
    accounts: Accounts
    max_rows: int
    defences: dict[str, Any] = field(default_factory=dict)
    max_body: int = MAX_BODY
    docs: bool = False
    offload: Offload = field(default_factory=Offload)

    @property
    def body_limit(self) -> int:
        """The largest body accepted: ``max_body``, or less when a full batch of JSON takes less."""
        return min(
            self.max_body, self.max_rows * self.oracle.input_dim * JSON_BYTES_PER_NUMBER + 65536
        )

    def info(self) -> dict[str, Any]:
        """What ``GET /v1/info`` says: dimensions, defences, limits, encodings; nothing about weights."""
        return {
            "input_dim": self.oracle.input_dim,
            "output_dim": self.oracle.output_dim,
            "defences": {
                **self.defences,
                "budget_per_key": self.accounts.budget,
                "max_rows": self.max_rows,
                "max_body_bytes": self.body_limit,
                "api_key_required": self.accounts.protected,
            },
            "encodings": [JSON, BINARY],
        }

    def close(self) -> None:
        """Stop the worker processes and close the state file."""
        self.offload.close()
        self.accounts.close()


def _refuse(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


def _key(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return headers.get(API_KEY.lower())


class Guard:
    """ASGI middleware: a request to anything but the health check needs a key (when keys are set)."""

    def __init__(self, app: Any, accounts: Accounts) -> None:
        self.app, self.accounts = app, accounts

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Refuse (401/403) or pass the request on with its account in ``request.state``."""
        if scope["type"] != "http" or scope["path"] == HEALTH:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            account = self.accounts.authorize(_key(headers))
        except Refusal as exc:
            await _refuse(exc.status, exc.code, exc.detail)(scope, receive, send)
            return
        scope.setdefault("state", {})["account"] = account
        await self.app(scope, receive, send)


async def _body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refusal(413, "body_too_large", f"request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _request_id(request: Request) -> str | None:
    rid = request.headers.get(REQUEST_ID)
    if rid is not None and not (0 < len(rid) <= 128 and rid.isascii() and rid.isprintable()):
        raise Refusal(400, "bad_request_id", f"{REQUEST_ID} must be 1 to 128 printable ASCII")
    return rid


class Predictor:
    """``POST /v1/predict``: read, parse, check the budget, answer, charge, reply."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.turn = threading.Lock()  # the oracle answers one batch at a time

    def settle(
        self, acct: Account, X: Array, rid: str | None, digest: str, binary: bool
    ) -> tuple[Array, bool]:
        """The answer to ``X`` and whether it was a replay; charged unless refused (in a thread).

        A retried request id gets the answer already given, free; otherwise the budget is
        checked, the oracle asked, a JSON answer checked to be finite (a refusal costs
        nothing), and the rows charged with the answer remembered, in one transaction.
        """
        accounts = self.service.accounts
        seen = accounts.before(acct, X.shape[0], rid, digest)
        if seen is None:
            with self.turn:
                Y = self.service.oracle.query(X)
        else:
            Y = seen
        if not binary:
            finite_or_refuse(Y)
        if seen is not None:
            return seen, True
        return accounts.charge(acct, rid, digest, Y), False

    async def __call__(self, request: Request) -> Response:
        """The answer to one request (a Refusal raised for anything refused)."""
        service = self.service
        kind = media_type(request.headers.get("content-type"))
        if kind not in (JSON, BINARY):
            raise Refusal(
                415, "unsupported_media_type", f"send {JSON} or {BINARY}, not {kind or 'nothing'}"
            )
        binary = wants_binary(request.headers.get("accept"), kind)
        rid = _request_id(request)
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > service.body_limit:
            raise Refusal(
                413,
                "body_too_large",
                f"request body of {length} bytes exceeds {service.body_limit}",
            )
        if length.isdigit() and int(length) <= LARGE:
            return await self.answer(request, kind, binary, rid, large=False)
        async with service.offload.slot():
            return await self.answer(request, kind, binary, rid, large=True)

    async def answer(
        self, request: Request, kind: str, binary: bool, rid: str | None, *, large: bool
    ) -> Response:
        """Read and answer one batch; ``large`` ones are parsed and written off the event loop."""
        service, oracle = self.service, self.service.oracle
        acct: Account = request.state.account
        body = await _body(request, service.body_limit)
        if large:
            digest = await asyncio.to_thread(_digest, kind, body)
            if kind == JSON:
                X = await service.offload.run(parse_json, body, oracle.input_dim)
            else:
                X = await asyncio.to_thread(parse, body, kind, oracle.input_dim)
        else:
            digest, X = _digest(kind, body), parse(body, kind, oracle.input_dim)
        del body
        request.state.rows = X.shape[0]
        if X.shape[0] > service.max_rows:
            raise Refusal(
                413,
                "batch_too_large",
                f"a batch of {X.shape[0]} rows exceeds this service's limit of {service.max_rows}",
            )
        Y, replay = await asyncio.to_thread(self.settle, acct, X, rid, digest, binary)
        request.state.replay = replay
        if binary:
            return Response(encode_binary(Y), media_type=BINARY)
        offload = large and Y.size > LARGE_ANSWER
        text = await service.offload.run(encode_json, Y) if offload else encode_json(Y)
        return Response(text, media_type=JSON)


def _digest(kind: str, body: bytes) -> str:
    return hashlib.sha256(kind.encode() + b"\0" + body).hexdigest()


def create_app(service: Service) -> FastAPI:
    """The FastAPI application serving ``service`` (one process, one model)."""
    app = FastAPI(
        title="glassbox prediction service",
        openapi_url="/openapi.json" if service.docs else None,
        docs_url="/docs" if service.docs else None,
        redoc_url=None,
    )
    app.add_middleware(Guard, accounts=service.accounts)
    app.add_middleware(LogRequests)  # outermost: refusals by the guard are logged too
    accounts = service.accounts
    predictor = Predictor(service)

    @app.exception_handler(Refusal)
    async def refused(request: Request, exc: Refusal) -> JSONResponse:
        return _refuse(exc.status, exc.code, exc.detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _refuse(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        where = request_target(request.scope)
        log_event("error", f"internal error on {where}: {type(exc).__name__}", path=where)
        return _refuse(500, "internal", "internal error")

    @app.get(HEALTH)
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get(f"{PREFIX}/info")
    async def info() -> JSONResponse:
        return JSONResponse(service.info())

    @app.get(f"{PREFIX}/usage")
    async def usage(request: Request) -> JSONResponse:
        return JSONResponse(await asyncio.to_thread(accounts.usage, request.state.account))

    @app.post(f"{PREFIX}/predict")
    async def predict(request: Request) -> Response:
        return await predictor(request)

    return app
