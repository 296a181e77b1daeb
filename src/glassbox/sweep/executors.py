"""Where points run: any ``concurrent.futures.Executor``.

- :class:`InlineExecutor`: one point at a time in this process (the default).
- :func:`process_pool`: ``--workers N`` local processes, each with one thread for torch,
  OpenMP and BLAS, so that N workers never oversubscribe N cores (``--threads`` sets it).
- :func:`dask_executor`: ``--dask tcp://HOST:8786``, an existing Dask cluster through
  ``distributed.Client(address).get_executor()`` (the ``dask`` extra). Dask's nanny gives
  each worker process ``OMP_NUM_THREADS`` = 1 (and the same for MKL and OpenBLAS); start
  workers with ``--nthreads`` points at once each.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from glassbox.errors import GlassboxError
from glassbox.extras import require

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: Seconds to reach a Dask scheduler, and to wait for its first worker.
CONNECT_TIMEOUT, WORKER_TIMEOUT = 20, 60
#: Seconds one plain connection to a scheduler's host and port may take (tried until CONNECT_TIMEOUT).
PROBE_TIMEOUT = 3.0
#: Seconds between a pool worker's checks that the sweep that started it is still there.
ORPHAN_POLL = 1.0
#: Threads a pool worker gets unless ``--threads`` says otherwise.
POOL_THREADS = 1


class InlineExecutor(Executor):
    """Runs each call at once in this process and returns a finished future."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Call ``fn(*args, **kwargs)`` now; its result or exception is in the returned future."""
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future


@dataclass(frozen=True, eq=False)
class Pool:
    """An executor, how many points to keep in flight on it, and its description for people."""

    executor: Executor
    window: int
    description: str


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _init_worker(threads: int, parent: int) -> None:
    """Pool worker start: thread counts for libraries loaded from now on, and a parent watch.

    A worker whose sweep was killed (``kill -9``) would wait for work for ever; it ends
    within :data:`ORPHAN_POLL` seconds of losing its parent instead.
    """
    os.environ.update({k: str(threads) for k in THREAD_VARIABLES})

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(ORPHAN_POLL)
        os._exit(1)

    threading.Thread(target=watch, name="glassbox-parent-watch", daemon=True).start()


def _ready() -> int:
    return os.getpid()


def default_threads(workers: int) -> int:
    """Threads per pool worker: :data:`POOL_THREADS`, a constant, never the machine's load.

    The pool already spreads points over the cores, and on cores that other processes keep
    busy spinning BLAS and OpenMP threads slow a run down several times (BENCHMARKS.md,
    Sweeps: 6x for the extraction suite). A constant also gives every point the same bits
    on every machine; ``--threads`` asks for more.
    """
    if workers < 1:
        raise GlassboxError(f"--workers must be at least 1, got {workers}")
    return POOL_THREADS


def process_pool(workers: int, threads: int | None = None) -> Pool:
    """``workers`` fresh (spawned) processes with ``threads`` each (default :func:`default_threads`).

    The thread variables are set while the processes start, so that they hold from the
    first import (NumPy's BLAS reads them once, when it loads), and again by the initializer.
    """
    if workers < 1:
        raise GlassboxError(f"--workers must be at least 1, got {workers}")
    if threads is not None and threads < 1:
        raise GlassboxError(f"--threads must be at least 1, got {threads}")
    threads = threads or default_threads(workers)
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(threads, os.getpid()),
    )
    # A spawned pool starts one process per submit while none is idle: start all now.
    with _environment({k: str(threads) for k in THREAD_VARIABLES}):
        started = [pool.submit(_ready) for _ in range(workers)]
    for future in started:
        future.result()
    plural = "es" if workers > 1 else ""
    return Pool(pool, 2 * workers, f"{workers} local process{plural}, {threads} thread(s) each")


def check_dask_address(address: str) -> None:
    """A one-line error, within seconds, for an address no Dask scheduler can be at.

    Checked before a ``distributed.Client`` exists: a client whose connection failed
    waits 40 s and prints a traceback as it is collected.
    """
    from distributed.comm import parse_address, parse_host_port
    from distributed.comm.registry import backends

    def bad(reason: str) -> GlassboxError:
        return GlassboxError(
            f"--dask {address}: {reason}; give the scheduler's address, e.g. tcp://HOST:8786"
        )

    try:
        scheme, location = parse_address(address)
        host, port = parse_host_port(location, default_port=8786) if location else ("", 0)
    except (ValueError, TypeError) as exc:
        raise bad(f"not an address ({exc})") from None
    if scheme not in backends:
        raise bad(f"unknown scheme {scheme!r} (known: {', '.join(sorted(backends))})")
    if scheme in ("inproc", "ucx"):
        return
    if not host:
        raise bad("no host")
    if not 1 <= port <= 65535:  # bad input, not a scheduler still starting: no waiting
        raise bad(f"port {port} is out of range (1 to 65535)")
    deadline = time.monotonic() + CONNECT_TIMEOUT  # a scheduler may still be starting
    while True:
        try:
            socket.create_connection((host, port), timeout=PROBE_TIMEOUT).close()
            return
        except OSError as exc:
            if time.monotonic() >= deadline:
                reason = exc.strerror or type(exc).__name__
                raise GlassboxError(
                    f"--dask {address}: cannot reach a Dask scheduler there ({reason}); "
                    "start one with `dask scheduler` (see the README)"
                ) from None
            time.sleep(0.2)


def dask_executor(address: str) -> tuple[Pool, Any]:
    """An executor on the Dask cluster whose scheduler is at ``address``; returns it and the client."""
    require("distributed", "--dask")
    from distributed import Client

    check_dask_address(address)
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GlassboxError(
            f"--dask {address}: cannot reach a Dask scheduler there ({reason}); "
            "start one with `dask scheduler` (see the README)"
        ) from None
    try:
        client.wait_for_workers(1, timeout=WORKER_TIMEOUT)
    except Exception:
        client.close()
        raise GlassboxError(
            f"--dask {address}: the scheduler has no workers after {WORKER_TIMEOUT} s; "
            f"start some with `dask worker {address}`"
        ) from None
    threads = sum(client.nthreads().values())
    pool = Pool(
        client.get_executor(pure=False),
        2 * max(threads, 1),
        f"Dask cluster {address} ({len(client.nthreads())} workers, {threads} threads)",
    )
    return pool, client


@contextmanager
def open_executor(
    workers: int | None = None, dask: str | None = None, threads: int | None = None
) -> Iterator[Pool]:
    """The executor a sweep asks for: in-process, a process pool or a Dask cluster; closed after."""
    if workers is not None and dask is not None:
        raise GlassboxError("--workers and --dask exclude each other; give one")
    if threads is not None and workers is None:
        raise GlassboxError("--threads sets the threads of each --workers process; give --workers")
    if dask is not None:
        pool, client = dask_executor(dask)
        try:
            yield pool
        finally:
            client.close()
        return
    pool = (
        process_pool(workers, threads)
        if workers is not None
        else Pool(InlineExecutor(), 1, "this process")
    )
    try:
        yield pool
    finally:
        pool.executor.shutdown(wait=True, cancel_futures=True)
