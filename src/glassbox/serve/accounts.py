"""Who may ask, how much they may ask, and the answers already given (so a retry is free)."""

from __future__ import annotations

import hmac
from collections import OrderedDict
from dataclasses import dataclass, field

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


class Refusal(Exception):
    """A request the service refuses: an HTTP status, a short error code and a one-line reason."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


@dataclass
class Account:
    """One API key's usage and the answers it was given, by request id."""

    label: str
    budget: int | None
    queries: int = 0
    requests: int = 0
    answered: OrderedDict[str, tuple[str, Array]] = field(default_factory=OrderedDict)
    answered_bytes: int = 0

    @property
    def remaining(self) -> int | None:
        """Rows this key may still ask for (None: unlimited)."""
        return None if self.budget is None else max(self.budget - self.queries, 0)

    def usage(self) -> dict[str, object]:
        """What ``GET /v1/usage`` says about this key."""
        return {
            "key": self.label,
            "queries": self.queries,
            "requests": self.requests,
            "budget": self.budget,
            "remaining": self.remaining,
        }

    def replay(self, request_id: str, digest: str) -> Array | None:
        """The answer already given to ``request_id`` (None if none); another body is a 409."""
        seen = self.answered.get(request_id)
        if seen is None:
            return None
        if seen[0] != digest:
            raise Refusal(
                409,
                "request_id_reused",
                f"request id {request_id!r} was already used for a different batch",
            )
        return seen[1]

    def charge(self, rows: int) -> None:
        """Count ``rows`` against this key, or refuse the whole batch (429) if the budget is short."""
        left = self.remaining
        if left is not None and rows > left:
            raise Refusal(
                429,
                BUDGET_SPENT,
                f"query budget spent: {self.queries} of {self.budget} queries used, "
                f"{rows} more asked for",
            )
        self.queries += rows
        self.requests += 1

    def remember(self, request_id: str, digest: str, outputs: Array) -> None:
        """Keep the answer to ``request_id`` so that a retry of it is answered free."""
        self.answered[request_id] = (digest, outputs)
        self.answered_bytes += outputs.nbytes
        while len(self.answered) > 1 and (
            len(self.answered) > REMEMBER or self.answered_bytes > REMEMBER_BYTES
        ):
            self.answered_bytes -= self.answered.popitem(last=False)[1][1].nbytes


class Accounts:
    """The keys the service accepts (none: anyone, as one anonymous account) and their budgets."""

    def __init__(self, keys: tuple[str, ...] = (), budget: int | None = None) -> None:
        if budget is not None and budget < 0:
            raise GlassboxError(f"--budget must be non-negative, got {budget}")
        if any(not k or not k.isprintable() or k != k.strip() for k in keys):
            raise GlassboxError("an --api-key must be printable text without surrounding spaces")
        self.budget = budget
        self._keys = [k.encode() for k in keys]
        labels = [f"key{i + 1}" for i in range(len(keys))] if keys else [ANONYMOUS]
        self._accounts = [Account(label, budget) for label in labels]

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
