"""BLAS threads by the shapes of the work, never by the machine's load.

The attack's matrices are small: a gradient batch is a few thousand rows of ``d0``
inputs, a solve or SVD at most ``d0 x d0``. On such shapes a second BLAS thread gains
little on an idle machine and loses several times over on a busy one, where OpenBLAS's
spinning workers fight other processes for the cores (measured on the 2-core machine
at load 3.4: an 1570 x 785 SVD 396 ms on one thread, 5.8 s on two; an 8192 x 784 by
784 x 512 product 253 ms against 282 ms; BENCHMARKS.md, "Threads"). So the choice is a
pure function of the shapes: one thread below :data:`LARGE_INPUT` inputs, and never the
load average, so that one command gives the same bits on a quiet and a busy machine.
A different thread count (``--threads``) may change the last bits: at 784-32-1 OpenBLAS's
threaded products round differently and the attack asked 9 queries more of 72,556.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from glassbox.errors import GlassboxError

# From this many inputs on, the products of a gradient batch are large enough that two
# threads can pay for themselves (none of the benchmark rows comes near it).
LARGE_INPUT = 8192


def usable_cores() -> int:
    """Cores this process may run on (its affinity), not counting how busy they are."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def attack_threads(input_dim: int, output_dim: int) -> int:
    """BLAS threads for an attack on a black box of these widths (a pure function of them)."""
    if input_dim < LARGE_INPUT:
        return 1
    return max(1, min(2, usable_cores()))


def check_threads(threads: int | None) -> None:
    """A one-line error for a thread count below one."""
    if threads is not None and threads < 1:
        raise GlassboxError(f"--threads must be at least 1, got {threads}")


@contextmanager
def blas_threads(threads: int) -> Iterator[None]:
    """Limit the BLAS libraries loaded in this process to ``threads`` threads inside the block."""
    check_threads(threads)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        yield
