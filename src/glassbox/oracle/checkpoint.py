"""Checkpoints: an extraction that can be killed at any moment and resumed.

The attack is deterministic given its seed and the answers it gets, so the answers are the
whole of its state: replaying them rebuilds the recovered layers, the witnesses and the
query counts exactly, with no change to the attack. :class:`CheckpointOracle` wraps the
real oracle, records every batch's answers (with a digest of its inputs) and writes the new
ones to ``OUT/checkpoint/`` as one more segment file, then rewrites ``checkpoint.json`` (both
atomically: a temporary file, then a rename), every few seconds and whenever the unwritten
rows reach :data:`SHARE` of the run's rows so far (at least :data:`ROWS`). So a SIGKILL
loses at most those rows and the batch in flight: a few percent of the run at any moment,
where seconds alone could lose a quarter of a fast run. Resumed, it answers the recorded
batches from the log (counted in the run's totals and phases as before, not asked again)
as long as the inputs match their digests, then asks the real oracle.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import zipfile
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from glassbox.errors import GlassboxError
from glassbox.io import atomic_path, check_out_dir, dumps_json, read_json, write_json
from glassbox.oracle.core import Array, Oracle, QueryBudgetExceeded
from glassbox.oracle.http_client import settle

CHECKPOINT, MANIFEST = "checkpoint", "checkpoint.json"
FORMAT = 1
#: Seconds between checkpoint writes by default.
EVERY = 5.0
#: Unwritten rows that trigger a write: SHARE of the rows so far, and at least ROWS.
ROWS, SHARE = 256, 0.04

Batch = tuple[bytes, Array]


def digest(X: Array) -> bytes:
    """A 16-byte digest of a batch of inputs (to notice a replay that went another way)."""
    return hashlib.blake2b(
        np.ascontiguousarray(X, dtype=np.float64).tobytes(), digest_size=16
    ).digest()


def prepare(out: Path, resume: bool, overwrite: bool, marker: str) -> bool:
    """Check ``out`` for a run that may checkpoint into it; True when there is a checkpoint to resume."""
    folder = out / CHECKPOINT
    if (folder / MANIFEST).is_file():
        if resume:
            return True
        if not overwrite:
            raise GlassboxError(
                f"--out {out} holds the checkpoint of an unfinished extraction: pass --resume "
                "to go on from it, or --overwrite to start again"
            )
        shutil.rmtree(folder)
    elif resume and (out / marker).is_file():
        raise GlassboxError(f"--out {out} holds a finished extraction; there is nothing to resume")
    elif resume:
        raise GlassboxError(
            f"--out {out} holds no checkpoint to resume ({folder / MANIFEST} does not exist); "
            "run again without --resume to start from scratch"
        )
    check_out_dir(out, overwrite, marker=marker)
    return False


def _read_segments(folder: Path, segments: list[dict[str, Any]]) -> list[Batch]:
    """The recorded batches, in order: the first ``batches`` of each listed segment file."""
    batches: list[Batch] = []
    for seg in segments:
        with np.load(folder / seg["file"], allow_pickle=False) as data:
            digests, rows, outputs = data["digests"], data["rows"], data["outputs"]
        ends = np.cumsum(rows)
        for d, end, k in list(zip(digests, ends, rows, strict=True))[: seg["batches"]]:
            batches.append((d.tobytes(), outputs[end - k : end]))
    return batches


class CheckpointOracle(Oracle):
    """``inner``'s answers, recorded to a checkpoint folder; with ``resume``, replayed from it first."""

    def __init__(
        self,
        inner: Oracle,
        folder: Path,
        key: dict[str, Any],
        *,
        resume: bool = False,
        every: float = EVERY,
        rows: int = ROWS,
        share: float = SHARE,
        budget: int | None = None,
    ) -> None:
        super().__init__(inner.input_dim, inner.output_dim, budget)
        self.__inner, self.__folder, self.__every = inner, Path(folder), every
        self.__rows, self.__share = rows, share
        self.__pending_rows = 0
        self.__key = json.loads(dumps_json(key))  # as it reads back from checkpoint.json
        self.__start = inner.queries
        self.__pending: list[Batch] = []  # batches asked since the last write
        self.__replay: deque[Batch] = deque()
        self.__segments: list[dict[str, Any]] = []  # files, each with how many batches count
        self.__consumed = 0  # batches answered from the checkpoint so far
        self.__next = 0  # the number of the next segment file
        self.__replayed = 0  # rows answered from the log
        self.__last = time.monotonic()
        if resume:
            self.__load()

    def __load(self) -> None:
        unreadable = (
            f"{self.__folder}: unreadable checkpoint ({{}}); pass --overwrite to start again"
        )
        try:
            manifest = read_json(self.__folder / MANIFEST)
        except GlassboxError as exc:
            raise GlassboxError(unreadable.format(str(exc).split(": ", 1)[-1])) from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            found = manifest.get("format") if isinstance(manifest, dict) else None
            raise GlassboxError(unreadable.format(f"format {found}, expected {FORMAT}"))
        if manifest.get("key") != self.__key:
            raise GlassboxError(
                f"{self.__folder} was made by another extraction ({manifest.get('key')}); "
                "pass the same target and options, or --overwrite to start again"
            )
        try:
            segments = list(manifest["segments"])
            batches = _read_segments(self.__folder, segments)
            self.__next = int(manifest["next_segment"])
        except (OSError, KeyError, ValueError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
            raise GlassboxError(unreadable.format(reason)) from None
        self.__replay.extend(batches)
        self.__segments = segments

    @property
    def replayed(self) -> int:
        """Rows answered from the checkpoint instead of the real oracle (0 for a fresh run)."""
        return self.__replayed

    def _answer(self, X: Array) -> Array:
        d = digest(X)
        if self.__replay:
            seen, Y = self.__replay[0]
            if seen == d and Y.shape[0] == X.shape[0]:
                self.__replay.popleft()
                self.__consumed += 1
                self.__replayed += X.shape[0]
                return Y.copy()
            self.__diverged()
        try:
            Y = self.__inner.query(X)
        except QueryBudgetExceeded:
            settle(self._ledger, self.__replayed + self.__inner.queries - self.__start)
            raise
        self.__pending.append((d, Y.copy()))  # the caller may change Y in place
        self.__pending_rows += Y.shape[0]
        rows_due = self.__pending_rows >= max(self.__rows, self.__share * self.queries)
        if rows_due or time.monotonic() - self.__last >= self.__every:
            self.flush()
        return Y

    def __diverged(self) -> None:
        """The run asked something else than the recorded one: keep only the part that matched."""
        self.__replay.clear()
        kept, total = [], 0
        for seg in self.__segments:
            n = min(seg["batches"], self.__consumed - total)
            if n <= 0:
                break
            kept.append({**seg, "batches": n})
            total += n
        self.__segments = kept

    def flush(self) -> None:
        """Write the batches asked since the last write, then the manifest (both atomically)."""
        self.__last = time.monotonic()
        new, self.__pending, self.__pending_rows = self.__pending, [], 0
        self.__folder.mkdir(parents=True, exist_ok=True)
        if new:
            name = f"answers-{self.__next:05d}.npz"
            self.__next += 1
            with atomic_path(self.__folder / name) as tmp, open(tmp, "wb") as f:
                np.savez(
                    f,
                    digests=np.array([np.frombuffer(b, np.uint8) for b, _ in new]),
                    rows=np.array([y.shape[0] for _, y in new], dtype=np.int64),
                    outputs=np.concatenate([y for _, y in new]),
                )
            self.__segments.append({"file": name, "batches": len(new)})
        write_json(self.__folder / MANIFEST, self.summary())

    def summary(self) -> dict[str, Any]:
        """The checkpoint's manifest: what it is for, its segments and the run's counts so far."""
        return {
            "format": FORMAT,
            "key": self.__key,
            "segments": self.__segments,
            "next_segment": self.__next,
            "batches": sum(seg["batches"] for seg in self.__segments),
            "queries": self.queries,
            "queries_by_phase": self.queries_by_phase,
            "phase": list(self._ledger.phases),  # where the attack was when this was written
            "replayed_queries": self.__replayed,
            "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }


def checkpointed(
    inner: Oracle,
    out: Path,
    key: dict[str, Any],
    *,
    resume: bool,
    every: float = EVERY,
    budget: int | None = None,
) -> CheckpointOracle:
    """``inner`` recording to ``out/checkpoint`` (and replaying it when ``resume``)."""
    if not every > 0:
        raise GlassboxError(f"--checkpoint-every must be positive, got {every}")
    return CheckpointOracle(inner, out / CHECKPOINT, key, resume=resume, every=every, budget=budget)
