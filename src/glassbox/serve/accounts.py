"""Who may ask, how much they have asked, and the answers already given (so a retry is free).

Usage and remembered answers live in a SQLite file (the standard library's ``sqlite3``, WAL
mode), so a restart keeps every budget and several service processes can share one file:
each charge is one ``BEGIN IMMEDIATE`` transaction that checks the budget and counts the
rows together. A key is stored as a SHA-256 digest, never as itself. ``:memory:`` keeps
nothing across restarts (the child services of tests and the demo).
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from glassbox.errors import GlassboxError
from glassbox.oracle.wire import BUDGET_SPENT

Array = NDArray[np.float64]

#: How many answered request ids each key remembers, and how many bytes of answers at most
#: (a retry comes within seconds, so the last few suffice).
REMEMBER = 1024
REMEMBER_BYTES = 64 * 2**20
ANONYMOUS = "anonymous"
MEMORY = ":memory:"
#: Seconds a charge waits for another process's transaction on the same state file.
BUSY_TIMEOUT = 30.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    account TEXT PRIMARY KEY, queries INTEGER NOT NULL, requests INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS answers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL, request_id TEXT NOT NULL,
    digest TEXT NOT NULL, cols INTEGER NOT NULL, outputs BLOB NOT NULL,
    UNIQUE (account, request_id));
"""
# Keep, per account, the newest answers within REMEMBER of them and REMEMBER_BYTES (at least one).
PRUNE = """
DELETE FROM answers WHERE account = ?1 AND seq < (
    SELECT MIN(seq) FROM (
        SELECT seq, ROW_NUMBER() OVER w AS n, SUM(length(outputs)) OVER w AS total
        FROM answers WHERE account = ?1 WINDOW w AS (ORDER BY seq DESC))
    WHERE n = 1 OR (n <= ?2 AND total <= ?3))
"""


class Refusal(Exception):
    """A request the service refuses: an HTTP status, a short error code and a one-line reason."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(status, code, detail)  # all three in args: it survives pickling
        self.status, self.code, self.detail = status, code, detail

    def __str__(self) -> str:
        return self.detail


@dataclass(frozen=True)
class Account:
    """One API key as the service knows it: its label in logs and answers, its id in the state file."""

    label: str
    ident: str


def _ident(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _connect(state: str | Path) -> sqlite3.Connection:
    where = str(state)
    try:
        if where != MEMORY:
            Path(where).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            where, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript("BEGIN IMMEDIATE;" + SCHEMA + "COMMIT;")
    except (sqlite3.Error, OSError) as exc:
        raise GlassboxError(
            f"--state {where}: cannot use it as the service's state file ({exc}); "
            "choose another --state"
        ) from None
    return db


class Accounts:
    """The keys the service accepts (none: anyone, as one anonymous account), budgets and usage."""

    def __init__(
        self, keys: tuple[str, ...] = (), budget: int | None = None, state: str | Path = MEMORY
    ) -> None:
        if budget is not None and budget < 0:
            raise GlassboxError(f"--budget must be non-negative, got {budget}")
        if any(not k or not k.isprintable() or k != k.strip() for k in keys):
            raise GlassboxError("an --api-key must be printable text without surrounding spaces")
        self.budget = budget
        self.state = str(state)
        self._keys = [k.encode() for k in keys]
        self._accounts = (
            [Account(f"key{i + 1}", _ident(k)) for i, k in enumerate(keys)]
            if keys
            else [Account(ANONYMOUS, ANONYMOUS)]
        )
        self._db = _connect(state)
        self._lock = threading.Lock()  # one connection, used from the service's threads

    def close(self) -> None:
        """Close the state file."""
        with self._lock:
            self._db.close()

    @property
    def protected(self) -> bool:
        """Whether a request must carry one of the keys."""
        return bool(self._keys)

    def all(self) -> list[Account]:
        """Every account, in the order the keys were given."""
        return list(self._accounts)

    def authorize(self, key: str | None) -> Account:
        """The account of ``key``; 401 when a key is needed and missing, 403 when it is wrong."""
        if not self._keys:
            return self._accounts[0]
        if not key:
            raise Refusal(
                401,
                "missing_key",
                "this service needs an API key: send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
            )
        given = key.encode("utf-8", "replace")
        found = None
        for i, known in enumerate(self._keys):  # compare with every key, in constant time
            if hmac.compare_digest(given, known):
                found = i
        if found is None:
            raise Refusal(403, "bad_key", "the API key is not valid for this service")
        return self._accounts[found]

    def _counts(self, acct: Account) -> tuple[int, int]:
        row = self._db.execute(
            "SELECT queries, requests FROM usage WHERE account = ?", (acct.ident,)
        ).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def _remaining(self, queries: int) -> int | None:
        return None if self.budget is None else max(self.budget - queries, 0)

    def usage(self, acct: Account) -> dict[str, object]:
        """What ``GET /v1/usage`` says about this key."""
        with self._lock:
            queries, requests = self._counts(acct)
        return {
            "key": acct.label,
            "queries": queries,
            "requests": requests,
            "budget": self.budget,
            "remaining": self._remaining(queries),
        }

    def _stored(self, acct: Account, request_id: str, digest: str) -> Array | None:
        row = self._db.execute(
            "SELECT digest, cols, outputs FROM answers WHERE account = ? AND request_id = ?",
            (acct.ident, request_id),
        ).fetchone()
        if row is None:
            return None
        if row[0] != digest:
            raise Refusal(
                409,
                "request_id_reused",
                f"request id {request_id!r} was already used for a different batch",
            )
        return np.frombuffer(row[2], dtype="<f8").astype(np.float64).reshape(-1, int(row[1]))

    def _refuse_over(self, queries: int, rows: int) -> None:
        left = self._remaining(queries)
        if left is not None and rows > left:
            raise Refusal(
                429,
                BUDGET_SPENT,
                f"query budget spent: {queries} of {self.budget} queries used, "
                f"{rows} more asked for",
            )

    def before(self, acct: Account, rows: int, request_id: str | None, digest: str) -> Array | None:
        """The answer already given to ``request_id`` (free), else None; a short budget is a 429."""
        with self._lock:
            seen = None if request_id is None else self._stored(acct, request_id, digest)
            if seen is None:
                self._refuse_over(self._counts(acct)[0], rows)
            return seen

    def charge(self, acct: Account, request_id: str | None, digest: str, outputs: Array) -> Array:
        """Count ``outputs``' rows against the key and remember them, in one transaction.

        Returns the answer to send: ``outputs``, or the one already stored when another
        process answered the same request id meanwhile (then nothing is charged). A budget
        spent meanwhile is a 429 and nothing is counted.
        """
        rows = outputs.shape[0]
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                seen = None if request_id is None else self._stored(acct, request_id, digest)
                if seen is not None:
                    db.execute("COMMIT")
                    return seen
                queries, requests = self._counts(acct)
                self._refuse_over(queries, rows)
                db.execute(
                    "INSERT INTO usage (account, queries, requests) VALUES (?, ?, ?) "
                    "ON CONFLICT (account) DO UPDATE SET queries = ?2, requests = ?3",
                    (acct.ident, queries + rows, requests + 1),
                )
                if request_id is not None:
                    blob = np.ascontiguousarray(outputs, dtype="<f8").tobytes()
                    db.execute(
                        "INSERT INTO answers (account, request_id, digest, cols, outputs) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (acct.ident, request_id, digest, outputs.shape[1], blob),
                    )
                    db.execute(PRUNE, (acct.ident, REMEMBER, REMEMBER_BYTES))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return outputs

    def remembered(self, acct: Account) -> list[str]:
        """The request ids whose answers this key's retries get free, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT request_id FROM answers WHERE account = ? ORDER BY seq", (acct.ident,)
            ).fetchall()
        return [r[0] for r in rows]
