"""Request bodies to batches and batches to answers, large ones off the event loop.

``json.loads`` and ``json.dumps`` hold the GIL for the whole of a large body, so a thread
would still stall every other client: bodies over :data:`LARGE` bytes are parsed (and their
JSON answers written) in a small pool of worker processes, and at most ``slots`` of them
are in flight at once (reading, parsing, answering), which also bounds the memory they take.
The workers run at a lower CPU priority (nice +10), so that on a busy machine the event loop
answering the small requests is served first. Small bodies are handled inline: a thread hop
would cost them more than it saves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import threading
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np

from glassbox.errors import GlassboxError
from glassbox.oracle.core import Array
from glassbox.oracle.wire import JSON, decode_binary
from glassbox.serve.accounts import Refusal

#: Bodies above this many bytes are parsed in a worker process, in one of the bounded slots.
LARGE = 256 * 1024
#: Rows of non-finite outputs named in a refusal (then "and N more").
NAMED_ROWS = 20
#: Answers of more numbers than this are written as JSON in a worker process too.
LARGE_ANSWER = 2_000
#: How much lower the workers' CPU priority is than the service's.
NICE = 10


def _lower_priority() -> None:
    with contextlib.suppress(OSError):  # not allowed here: run at the same priority
        os.nice(NICE)


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


def parse_json(body: bytes, width: int) -> Array:
    """``{"inputs": [[...], ...]}`` to a float64 batch of ``width`` columns, or a Refusal."""
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


def parse(body: bytes, kind: str, width: int) -> Array:
    """A JSON or binary body to a batch of ``width`` columns, or a Refusal."""
    if kind == JSON:
        return parse_json(body, width)
    try:
        return _checked(decode_binary(body, width), width)
    except GlassboxError as exc:
        raise Refusal(422, "bad_shape", str(exc)) from None


def finite_or_refuse(Y: Array) -> None:
    """Refuse (422 ``not_finite_output``) a JSON answer with NaN or infinite outputs, naming the rows."""
    bad = np.flatnonzero(~np.all(np.isfinite(Y), axis=1))
    if bad.size:
        named = ", ".join(str(int(i)) for i in bad[:NAMED_ROWS])
        more = f" and {bad.size - NAMED_ROWS} more" if bad.size > NAMED_ROWS else ""
        raise Refusal(
            422,
            "not_finite_output",
            f"the model's outputs for rows {named}{more} ({bad.size} of {Y.shape[0]}) are not "
            "finite, which JSON cannot carry; nothing was charged (the binary encoding "
            "application/vnd.glassbox.float64 carries them)",
        )


def encode_json(Y: Array) -> bytes:
    """``{"outputs": [[...], ...]}`` in strict JSON (finite outputs only)."""
    return json.dumps({"outputs": Y.tolist()}, allow_nan=False).encode()


class Offload:
    """Bounded off-loop work: ``slots`` large bodies at once, ``workers`` processes to parse them."""

    def __init__(self, workers: int = 1, slots: int = 2) -> None:
        if workers < 1 or slots < 1:
            raise GlassboxError(
                "the service needs at least one worker and one slot for large bodies"
            )
        self.workers, self.slots = workers, slots
        self._pool: Executor | None = None
        self._slots: asyncio.Semaphore | None = None
        self._lock = threading.Lock()

    def slot(self) -> asyncio.Semaphore:
        """The semaphore a large request holds from reading its body to writing its answer."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.slots)
        return self._slots

    def _executor(self) -> Executor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_lower_priority,
                )
            return self._pool

    async def run(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` in a worker process (its Refusal comes back as one)."""
        loop = asyncio.get_running_loop()
        pool = self._pool or await asyncio.to_thread(self._executor)  # spawning blocks
        try:
            return await loop.run_in_executor(pool, fn, *args)
        except BrokenProcessPool:  # a worker died (out of memory?): start afresh next time
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            raise Refusal(
                503, "worker_lost", "the worker parsing this body stopped; retry the request"
            ) from None

    def close(self) -> None:
        """Stop the worker processes."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
