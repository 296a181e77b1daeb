"""The service as a deployed API, through real HTTP on 127.0.0.1: keys on every route, logs that
cannot be forged, strict JSON, usage that survives restarts and is shared by processes, no stalls."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from glassbox.mlp import ReLUNet
from glassbox.oracle.wire import BINARY, decode_binary, encode_binary
from glassbox.serve.logs import escape
from glassbox.serve.process import running_service

KEY = {"X-API-Key": "k"}
FORGED = "/v1/%0Aglassbox%20serve:%20POST%20/v1/predict%20200%20rows=99999%20key=key1%20FORGED"


def lines_of(log: Path, at_least: int, timeout: float = 10.0) -> list[str]:
    """The log's lines, once it has ``at_least`` of them (the line follows the response)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = log.read_text().splitlines()
        if len(lines) >= at_least or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)


def test_every_route_but_health_needs_a_key_and_the_schema_needs_docs() -> None:
    with running_service("random:4-5-3", "--api-key", "k") as url:
        get = lambda path, **kw: httpx.get(url + path, timeout=10, **kw)  # noqa: E731
        for path in ("/openapi.json", "/docs", "/v1/info", "/v1/usage", "/nothing", FORGED):
            r = get(path)
            assert (r.status_code, r.json()["error"]) == (401, "missing_key"), path
        assert get("/v1/health").json() == {"status": "ok"}
        assert get("/openapi.json", headers=KEY).status_code == 404  # no --docs: no schema
        assert get("/docs", headers={"Authorization": "Bearer k"}).status_code == 404
        assert get("/openapi.json", headers={"X-API-Key": "wrong"}).status_code == 403
    with running_service("random:4-5-3", "--api-key", "k", "--docs") as url:
        assert httpx.get(f"{url}/openapi.json", timeout=10).status_code == 401
        schema = httpx.get(f"{url}/openapi.json", headers=KEY, timeout=10).json()
        assert "/v1/predict" in schema["paths"]
        assert httpx.get(f"{url}/docs", headers=KEY, timeout=10).status_code == 200
    with running_service("random:4-5-3") as url:  # no keys: open, but still no schema
        assert httpx.get(f"{url}/openapi.json", timeout=10).status_code == 404


def raw_request(url: str, target: bytes) -> bytes:
    """Send ``GET target`` byte for byte (no client library to tidy it); the status line back."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return s.recv(4096).split(b"\r\n", 1)[0]


@pytest.mark.parametrize("json_logs", [False, True])
def test_a_forged_newline_stays_on_one_line(tmp_path: Path, json_logs: bool) -> None:
    log = tmp_path / "serve.log"
    flags = ("--log-json",) if json_logs else ()
    quoted = b'/v1/a\\b"c%0D%0A?q=%0A'  # a backslash, a quote, an encoded CR LF, sent as they are
    with running_service("random:4-5-3", "--api-key", "k", *flags, log=log) as url:
        assert httpx.get(url + FORGED, timeout=10).status_code == 401
        assert httpx.get(url + FORGED, headers=KEY, timeout=10).status_code == 404
        assert raw_request(url, quoted) == b"HTTP/1.1 401 Unauthorized"
        assert raw_request(url, b"/v1/caf\xc3\xa9\x7f").startswith(b"HTTP/1.1 400")  # by uvicorn
        lines = lines_of(log, 5)
    assert len(lines) == 5, lines  # the start line and one line per request, nothing more
    if json_logs:
        docs = [json.loads(line) for line in lines]
        assert [d["event"] for d in docs] == ["start", "request", "request", "request", "server"]
        assert [d["status"] for d in docs[1:4]] == [401, 404, 401]
        assert docs[1]["path"] == FORGED and docs[2]["key"] == "key1"
        assert docs[3]["path"] == escape(quoted) == '/v1/a\\x5cb"c%0D%0A?q=%0A'
    else:
        assert all(line.startswith("glassbox serve: ") for line in lines), lines
        assert lines[1].startswith(f"glassbox serve: GET {FORGED} 401 rows=- key=- ")
        assert lines[3].startswith('glassbox serve: GET /v1/a\\x5cb"c%0D%0A?q=%0A 401 ')
    assert not any("FORGED" in line and "POST" in line.split()[2] for line in lines)


def test_escape_leaves_printable_ascii_and_hexes_the_rest() -> None:
    assert escape("/v1/info?x=1") == "/v1/info?x=1"
    assert escape("a b\nc\\") == "a\\x20b\\x0ac\\x5c"
    assert escape(b"\x00\xff") == "\\x00\\xff" and escape("é") == "\\xc3\\xa9"


def test_a_nan_producing_model_gives_422_and_no_charge() -> None:
    # random:4-5-3 (seed 0) answers -1e308 in every coordinate with -inf, NaN, NaN.
    X = np.array([[0.5] * 4, [-1e308] * 4, [0.25] * 4, [-1e308] * 4])
    with running_service("random:4-5-3", "--api-key", "k") as url:
        r = httpx.post(f"{url}/v1/predict", json={"inputs": X.tolist()}, headers=KEY, timeout=10)
        assert (r.status_code, r.json()["error"]) == (422, "not_finite_output")
        assert "rows 1, 3 (2 of 4)" in r.json()["detail"] and "nothing was charged" in r.text
        used = httpx.get(f"{url}/v1/usage", headers=KEY, timeout=10).json()
        assert (used["queries"], used["requests"]) == (0, 0)
        # The binary encoding carries them, and is charged.
        headers = {**KEY, "Content-Type": BINARY}
        r = httpx.post(f"{url}/v1/predict", content=encode_binary(X), headers=headers, timeout=10)
        Y = decode_binary(r.content, 3)
        assert r.status_code == 200 and np.isnan(Y[1, 1]) and np.isfinite(Y[[0, 2]]).all()
        # A JSON answer to the finite rows alone is strict JSON.
        r = httpx.post(f"{url}/v1/predict", json={"inputs": X[[0, 2]].tolist()}, headers=KEY)
        assert r.status_code == 200 and "NaN" not in r.text and "Infinity" not in r.text
        used = httpx.get(f"{url}/v1/usage", headers=KEY, timeout=10).json()
    assert (used["queries"], used["requests"]) == (6, 2)


def post_rows(url: str, rows: int, key: str = "k", rid: str | None = None) -> httpx.Response:
    headers = {"X-API-Key": key, **({"X-Request-Id": rid} if rid else {})}
    return httpx.post(
        f"{url}/v1/predict", json={"inputs": [[0.1] * 4] * rows}, headers=headers, timeout=30
    )


def test_a_restart_keeps_budgets_and_remembered_answers(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    flags = ("--api-key", "k", "--api-key", "k2", "--budget", "100", "--state", str(state))
    with running_service("random:4-5-3", *flags) as url:
        assert post_rows(url, 60, rid="r1").status_code == 200
        assert post_rows(url, 5, key="k2").status_code == 200
    # Restarted, with the keys given in another order: budgets follow the keys, not their places.
    flags = ("--api-key", "k2", "--api-key", "k", "--budget", "100", "--state", str(state))
    with running_service("random:4-5-3", *flags) as url:
        used = httpx.get(f"{url}/v1/usage", headers=KEY, timeout=10).json()
        assert (used["queries"], used["remaining"], used["key"]) == (60, 40, "key2")
        assert post_rows(url, 60, rid="r1").status_code == 200  # a retry: answered free
        r = post_rows(url, 41)
        assert (r.status_code, r.json()["error"]) == (429, "budget_spent")
        assert "60 of 100 queries used, 41 more asked for" in r.json()["detail"]
        assert post_rows(url, 40).status_code == 200
        other = httpx.get(f"{url}/v1/usage", headers={"X-API-Key": "k2"}, timeout=10).json()
    assert other["queries"] == 5
    assert b"k2" not in state.read_bytes()  # keys are stored as digests, never themselves


def test_two_processes_on_one_state_file_count_every_row_once(tmp_path: Path) -> None:
    state = tmp_path / "shared.sqlite"
    flags = ("--api-key", "k", "--budget", "1000", "--state", str(state))
    answered: list[int] = []
    refused: list[int] = []
    lock = threading.Lock()

    def client(url: str, seed: int) -> None:
        rng = np.random.default_rng(seed)
        with httpx.Client(base_url=url, headers=KEY, timeout=30) as c:
            for _ in range(40):
                rows = int(rng.integers(1, 12))
                r = c.post("/v1/predict", json={"inputs": [[0.2] * 4] * rows})
                with lock:
                    (answered if r.status_code == 200 else refused).append(rows)
                assert r.status_code in (200, 429), r.text

    with (
        running_service("random:4-5-3", *flags) as one,
        running_service("random:4-5-3", *flags) as two,
    ):
        threads = [threading.Thread(target=client, args=((one, two)[i % 2], i)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seen = [httpx.get(f"{u}/v1/usage", headers=KEY, timeout=10).json() for u in (one, two)]
    assert seen[0] == seen[1]
    assert seen[0]["queries"] == sum(answered) <= 1000 and seen[0]["requests"] == len(answered)
    # Both services refused only batches larger than what was left at the end.
    assert refused and min(refused) > 1000 - sum(answered) >= 0


def test_a_one_row_request_is_not_stalled_behind_maximal_ones() -> None:
    # random:784-16-10 behind a 4 MiB body limit; a maximal JSON body just fits it.
    rng = np.random.default_rng(0)
    row = json.dumps(rng.normal(size=784).tolist())
    rows = (4 * 2**20 - 20) // (len(row) + 2)
    body = '{"inputs": [' + ", ".join([row] * rows) + "]}"
    assert 4 * 2**20 - len(row) < len(body) <= 4 * 2**20
    small: list[tuple[float, float]] = []
    large: list[tuple[float, float, int]] = []
    with running_service("random:784-16-10", "--max-body", "4") as url:
        warm = httpx.post(
            f"{url}/v1/predict",
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=120,
        )
        assert warm.status_code == 200, warm.text

        def big() -> None:
            t0 = time.perf_counter()
            r = httpx.post(
                f"{url}/v1/predict",
                content=body,
                headers={"Content-Type": "application/json"},
                timeout=120,
            )
            large.append((t0, time.perf_counter(), r.status_code))
            assert r.status_code == 200, r.text

        threads = [threading.Thread(target=big) for _ in range(4)]
        for t in threads:
            t.start()
        one = json.dumps({"inputs": [[0.0] * 784]})
        with httpx.Client(base_url=url, timeout=60) as c:
            while any(t.is_alive() for t in threads):
                t0 = time.perf_counter()
                r = c.post("/v1/predict", content=one, headers={"Content-Type": "application/json"})
                assert r.status_code == 200
                small.append((t0, time.perf_counter()))
        for t in threads:
            t.join()
    start, end = min(x[0] for x in large), max(x[1] for x in large)
    during = [b - a for a, b in small if a >= start and b <= end]
    slowest_large = max(b - a for a, b, _ in large)
    assert len(during) >= 10, (len(during), slowest_large)
    # Each 1-row request waits a tiny part of a maximal one. Before the bodies went off the
    # event loop, every 1-row request sent during a parse waited for all of it: 13 were
    # answered in 1.5 s, p90 0.14 of the slowest maximal request (0.001 now).
    p90 = np.percentile(during, 90)
    assert p90 < 0.05 * slowest_large, (p90, slowest_large)


def test_large_bodies_are_refused_and_answered_like_small_ones() -> None:
    # Over 256 KiB, a body is parsed in a worker process: its refusals come back the same.
    X = np.random.default_rng(1).normal(size=(20000, 4))
    truth = ReLUNet.random("4-5-3", seed=0).forward(X)
    big = json.dumps({"inputs": X.tolist()})
    assert len(big) > 256 * 1024
    json_type = {"Content-Type": "application/json"}
    with running_service("random:4-5-3", "--max-rows", "30000") as url:

        def post(body: str) -> httpx.Response:
            return httpx.post(f"{url}/v1/predict", content=body, headers=json_type, timeout=60)

        r = post(big)
        assert r.status_code == 200 and np.array_equal(np.array(r.json()["outputs"]), truth)
        r = post(big[:-1])
        assert (r.status_code, r.json()["error"]) == (400, "malformed_json")
        r = post(json.dumps({"inputs": np.zeros((20000, 5)).tolist()}))
        assert (r.status_code, r.json()["error"]) == (422, "wrong_width")
        r = post(json.dumps({"inputs": [[-1e308] * 4] + X.tolist()}))
        assert (r.status_code, r.json()["error"]) == (422, "not_finite_output")
        used = httpx.get(f"{url}/v1/usage", timeout=10).json()
    assert (used["queries"], used["requests"]) == (20000, 1)


def test_a_lost_body_worker_is_a_503_and_the_next_body_gets_a_new_one() -> None:
    import asyncio
    import os

    from glassbox.serve.accounts import Refusal
    from glassbox.serve.bodies import Offload, parse_json

    offload = Offload()

    async def go() -> np.ndarray:
        with pytest.raises(Refusal) as lost:
            await offload.run(os._exit, 1)  # the worker dies mid-task
        assert (lost.value.status, lost.value.code) == (503, "worker_lost")
        return await offload.run(parse_json, b'{"inputs": [[1, 2.5]]}', 2)

    try:
        assert asyncio.run(go()).tolist() == [[1.0, 2.5]]
    finally:
        offload.close()
