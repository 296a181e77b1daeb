"""How batches travel over HTTP between ``glassbox serve`` and the HTTP oracle.

Two encodings, negotiated by content type:

- JSON: ``{"inputs": [[...], ...]}`` in, ``{"outputs": [[...], ...]}`` out. Python writes a
  float as its shortest repr, which reads back as the same double, so JSON loses nothing.
- Binary (:data:`BINARY`): the batch as raw little-endian float64, row after row, no header;
  the width is the service's input (or output) dimension from ``GET /v1/info``. About three
  times smaller than JSON and parsed without a loop.

A request carries a request id (:data:`REQUEST_ID`): the service answers a repeated id with
the answer it already gave, uncharged, so a retried request is never counted twice.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from glassbox.errors import GlassboxError

Array = NDArray[np.float64]

JSON = "application/json"
BINARY = "application/vnd.glassbox.float64"
REQUEST_ID = "X-Request-Id"
API_KEY = "X-API-Key"
PREFIX = "/v1"
#: The error code of a refusal because the caller's query budget is spent.
BUDGET_SPENT = "budget_spent"


def encode_binary(X: Array) -> bytes:
    """The batch as raw little-endian float64 bytes, row-major."""
    return np.ascontiguousarray(X, dtype="<f8").tobytes()


def decode_binary(body: bytes, width: int) -> Array:
    """Rows of ``width`` float64 from raw little-endian bytes; a ragged body is a GlassboxError."""
    row = 8 * width
    if len(body) % row:
        raise GlassboxError(
            f"a binary body of {len(body)} bytes is not a whole number of rows of "
            f"{width} float64 ({row} bytes each)"
        )
    return np.frombuffer(body, dtype="<f8").astype(np.float64).reshape(-1, width)


def wants_binary(accept: str | None, content_type: str | None) -> bool:
    """Answer in binary when the client accepts it, or sent binary and did not ask for JSON."""
    accept = (accept or "").lower()
    if BINARY in accept:
        return True
    if JSON in accept:
        return False
    return media_type(content_type) == BINARY


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header, without parameters, lower case."""
    return (content_type or "").split(";", 1)[0].strip().lower()
