"""A loopback proxy that makes a service unreliable: dropped connections, 500s and stalls.

Put it between the HTTP oracle and the service to check that extraction survives faults
and still counts each row once. At the given rate, a request meets one of:

- ``drop_before`` / ``drop_after``: the connection is closed before the request reaches
  the service, or after the service answered (and charged) it;
- ``error_before`` / ``error_after``: a 500 comes back instead (before or after charging);
- ``stall``: the answer is held back ``stall`` seconds (past the client's timeout).
"""

from __future__ import annotations

import random
import socket
import threading
import time
from typing import BinaryIO
from urllib.parse import urlsplit

FAULTS = ("drop_before", "drop_after", "error_before", "error_after", "stall")
ERROR = (
    b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n"
    b'content-length: 42\r\n\r\n{"error":"internal","detail":"injected"}\r\n'
)


def _read_message(f: BinaryIO) -> bytes | None:
    """One HTTP/1.1 message (start line, headers, Content-Length body); None at end of stream."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = f.readline(65536)
        if not line:
            return None
        head += line
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return head + f.read(length)


class FaultyProxy:
    """Forwards ``127.0.0.1:PORT`` to ``upstream``, injecting a fault into a share ``rate`` of requests."""

    def __init__(self, upstream: str, rate: float, *, stall: float = 1.0, seed: int = 0) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rate, self.stall = rate, stall
        self.injected = dict.fromkeys(FAULTS, 0)
        self.forwarded = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._closed = False
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        """Stop accepting connections."""
        self._closed = True
        self._server.close()

    def __enter__(self) -> FaultyProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _fault(self) -> str | None:
        with self._lock:
            if self._rng.random() >= self.rate:
                self.forwarded += 1
                return None
            fault = self._rng.choice(FAULTS)
            self.injected[fault] += 1
            return fault

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=30)
        except OSError:
            client.close()
            return
        cin, uin = client.makefile("rb"), upstream.makefile("rb")
        try:
            while (request := _read_message(cin)) is not None:
                fault = self._fault()
                if fault == "drop_before":
                    return
                if fault == "error_before":
                    client.sendall(ERROR)
                    continue
                upstream.sendall(request)
                response = _read_message(uin)
                if response is None or fault == "drop_after":
                    return
                if fault == "error_after":
                    client.sendall(ERROR)
                    continue
                if fault == "stall":
                    time.sleep(self.stall)
                client.sendall(response)
        except OSError:
            return
        finally:
            for s in (cin, uin, client, upstream):
                s.close()
