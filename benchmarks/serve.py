"""The prediction service's speed (figures for BENCHMARKS.md).

    python benchmarks/serve.py                     # the first three tables
    python benchmarks/serve.py --only throughput   # or: demo, deep, latency, resume
    python benchmarks/serve.py --only latency --baseline /tmp/base/src   # beside an old tree

1. Throughput: rows per second through ``glassbox serve`` (a child process on a loopback
   port) for batches of 1, 64 and 4096 rows, JSON and binary, over one persistent httpx
   connection; each cell runs for about ``--seconds`` seconds. Model: random:100-40-100
   (the paper's toy-model shape).
2. The demo (default config): the attack's seconds and the whole run's wall time, over
   HTTP to a separate process and in-process.
3. Deep extraction of random:10-10-10-1 and random:80-40-20-1 (seed 0): wall time and
   queries through the service beside in-process; the service's own count must match.
4. Latency under load: p50/p99 of 1-row JSON requests from 20 clients while 4 maximal JSON
   requests run (random:784-32-10; the 4 are posted by separate processes).
5. Resume overhead: ``glassbox extract`` over HTTP killed (SIGKILL) at 25, 50 and 95% of its
   queries, then resumed; the service's total count against one uninterrupted run.
``--baseline SRC`` runs 4 and 5 also with the glassbox source tree SRC (e.g. an older commit
from ``git archive``), on the same machine in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

from glassbox.extract import extract
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import net_oracle
from glassbox.oracle.http_client import HttpOracle
from glassbox.oracle.wire import BINARY, JSON, encode_binary
from glassbox.serve.process import running_service

MODEL = "100-40-100"


def machine() -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, commit {commit}, load {load}"


def throughput(seconds: float) -> None:
    print(f"### Throughput: random:{MODEL} behind glassbox serve ({machine()})\n")
    print("| batch rows | encoding | requests/s | rows/s | ms per request |")
    print("|---:|---|---:|---:|---:|")
    rng = np.random.default_rng(0)
    nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    with (
        running_service(f"random:{MODEL}") as url,
        httpx.Client(
            base_url=url, timeout=60, transport=httpx.HTTPTransport(socket_options=nodelay)
        ) as client,
    ):
        for rows in (1, 64, 4096):
            X = rng.normal(size=(rows, 100))
            for kind in (JSON, BINARY):
                if kind == JSON:
                    body, headers = (
                        json.dumps({"inputs": X.tolist()}).encode(),
                        {"Content-Type": JSON},
                    )
                else:
                    body, headers = encode_binary(X), {"Content-Type": BINARY, "Accept": BINARY}
                n, t0 = 0, time.perf_counter()
                while time.perf_counter() - t0 < seconds:
                    r = client.post("/v1/predict", content=body, headers=headers)
                    if kind == JSON:
                        json.loads(r.content)  # the client's share: parsing the answer
                    assert r.status_code == 200, r.text
                    n += 1
                dt = time.perf_counter() - t0
                name = "JSON" if kind == JSON else "binary float64"
                print(
                    f"| {rows} | {name} | {n / dt:,.0f} | {n * rows / dt:,.0f} | {1e3 * dt / n:.2f} |"
                )
    print()


def demo() -> None:
    from glassbox.demo.run import DemoConfig, run_demo

    print(f"### The demo (default config) over HTTP and in-process ({machine()})\n")
    print("| boundary | attack seconds | whole run, wall seconds | queries |")
    print("|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for in_process in (False, True):
            out = Path(tmp) / f"run-{in_process}"
            t0 = time.perf_counter()
            run_demo(DemoConfig(), out, progress=False, in_process=in_process)
            wall = time.perf_counter() - t0
            ex = json.loads((out / "extraction.json").read_text())
            print(f"| {ex['boundary']} | {ex['seconds']:.1f} | {wall:.1f} | {ex['queries']:,} |")
    print()


def deep() -> None:
    print(f"### Deep extraction through the service ({machine()})\n")
    print("| net (seed 0) | boundary | wall seconds | queries | service's count | success |")
    print("|---|---|---:|---:|---:|---|")
    for spec in ("10-10-10-1", "80-40-20-1"):
        truth = ReLUNet.random(spec, seed=0)
        t0 = time.perf_counter()
        local = extract(net_oracle(truth))
        wall = time.perf_counter() - t0
        print(f"| {spec} | in-process | {wall:.1f} | {local.queries:,} | - | {local.success} |")
        with running_service(f"random:{spec}") as url:
            t0 = time.perf_counter()
            with HttpOracle(url) as oracle:
                remote = extract(oracle)
            wall = time.perf_counter() - t0
            served = httpx.get(f"{url}/v1/usage").json()["queries"]
        print(
            f"| {spec} | HTTP | {wall:.1f} | {remote.queries:,} | {served:,} | {remote.success} |"
        )
    print()


HERE = str(Path(__file__).resolve().parents[1] / "src")
POST = """
import sys, time, httpx
body = open(sys.argv[2], "rb").read()
t0 = time.perf_counter()
r = httpx.post(sys.argv[1] + "/v1/predict", content=body, timeout=600,
               headers={"Content-Type": "application/json"})
print(r.status_code, time.perf_counter() - t0)
"""


@contextmanager
def service_from(src: str, model: str, *options: str) -> Iterator[str]:
    """``glassbox serve MODEL --port 0`` with the glassbox of source tree ``src``; its address."""
    env = {**os.environ, "PYTHONPATH": src}
    cmd = [sys.executable, "-m", "glassbox.cli", "serve", model, "--port", "0", *options]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://"), f"the service of {src} did not start"
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _json_body(path: Path, rows: int, width: int, limit: int) -> int:
    """Write a JSON batch of up to ``rows`` rows that fits ``limit`` bytes; its row count."""
    row = json.dumps(np.random.default_rng(0).normal(size=width).tolist())
    rows = min(rows, (limit - 20) // (len(row) + 2))
    path.write_text('{"inputs": [' + ", ".join([row] * rows) + "]}")
    return rows


def _load(url: str, body: Path | None, clients: int = 20) -> dict[str, float]:
    """1-row latencies from ``clients`` threads while 4 processes post ``body`` (None: 5 s, none)."""
    one = json.dumps({"inputs": [[0.0] * 784]}).encode()
    times: list[tuple[float, float]] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=url, timeout=600) as c:
            while not stop.is_set():
                t0 = time.perf_counter()
                r = c.post("/v1/predict", content=one, headers={"Content-Type": JSON})
                assert r.status_code == 200, r.text
                times.append((t0, time.perf_counter()))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    start = time.perf_counter()
    big = [
        subprocess.Popen(
            [sys.executable, "-c", POST, url, str(body)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(4 if body is not None else 0)
    ]
    outs = [p.communicate()[0].split() for p in big] or [["-", "nan"]]
    if body is None:
        time.sleep(5.0)
    end = time.perf_counter()
    stop.set()
    for t in threads:
        t.join()
    during = np.array([b - a for a, b in times if a >= start and b <= end]) * 1e3
    return {
        "n": len(during),
        "p50": float(np.percentile(during, 50)) if len(during) else float("nan"),
        "p99": float(np.percentile(during, 99)) if len(during) else float("nan"),
        "max": float(during.max()) if len(during) else float("nan"),
        "big": max(float(o[1]) for o in outs),
        "status": ",".join(sorted({o[0] for o in outs})),
    }


def latency(baseline: str | None) -> None:
    print(f"### 1-row latency under 4 maximal requests: random:784-32-10 ({machine()})\n")
    print(
        "| service | maximal body | 1-row requests during | p50 ms | p99 ms | max ms | slowest maximal s | its status |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---|")
    cases: list[tuple[str, str, tuple[str, ...], int, int]] = []
    if baseline:  # today's default limit: 8192 rows of 784 long JSON numbers (~205 MB)
        cases.append(("baseline", baseline, (), 8192, 8192 * 784 * 32 + 65536))
    cases += [
        ("this tree, no maximal requests (the floor)", HERE, ("--state", ":memory:"), 0, 0),
        ("this tree, default --max-body 16", HERE, ("--state", ":memory:"), 8192, 16 * 2**20),
        (
            "this tree, --max-body 256",
            HERE,
            ("--state", ":memory:", "--max-body", "256"),
            8192,
            256 * 2**20,
        ),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name, src, options, rows, limit in cases:
            body = Path(tmp) / "big.json"
            n = _json_body(body, rows, 784, limit) if rows else 0
            with service_from(src, "random:784-32-10", *options) as url:
                got = _load(url, body if rows else None)
            size = body.stat().st_size / 2**20 if rows else 0
            print(
                f"| {name} | {n} rows, {size:.0f} MiB JSON | {got['n']} | {got['p50']:.1f} | "
                f"{got['p99']:.1f} | {got['max']:.0f} | {got['big']:.1f} | {got['status']} |"
            )
    print()


def _resume_once(src: str, spec: str, at: float, total: int, out: Path) -> tuple[int, int]:
    env = {**os.environ, "PYTHONPATH": src}
    cmd = [sys.executable, "-m", "glassbox.cli", "extract"]
    with service_from(HERE, f"random:{spec}", "--state", ":memory:") as url:
        served = lambda: httpx.get(f"{url}/v1/usage", timeout=30).json()["queries"]  # noqa: E731
        run = subprocess.Popen(
            [*cmd, url, "--out", str(out)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while served() < at * total and run.poll() is None:
            time.sleep(0.003)
        run.send_signal(signal.SIGKILL)
        run.wait()
        killed = served()
        subprocess.run(
            [*cmd, url, "--out", str(out), "--resume"], env=env, capture_output=True, check=True
        )
        return killed, served()


def resume(baseline: str | None, spec: str = "10-10-10-1") -> None:
    total = extract(net_oracle(ReLUNet.random(spec, seed=0))).queries
    print(f"### Resume overhead: random:{spec}, {total:,} queries uninterrupted ({machine()})\n")
    print("| extract from | killed at | queries then | service's total | overhead |")
    print("|---|---:|---:|---:|---:|")
    trees = ([("baseline", baseline)] if baseline else []) + [("this tree", HERE)]
    with tempfile.TemporaryDirectory() as tmp:
        for name, src in trees:
            for at in (0.25, 0.5, 0.95):
                out = Path(tmp) / f"{name}-{at}".replace(" ", "")
                killed, spent = _resume_once(src, spec, at, total, out)
                print(f"| {name} | {at:.0%} | {killed:,} | {spent:,} | {spent / total - 1:+.1%} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", choices=["throughput", "demo", "deep", "latency", "resume"], default=None
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="per throughput cell")
    parser.add_argument("--baseline", default=None, help="an older glassbox src/ to compare with")
    args = parser.parse_args()
    if args.only == "latency":
        latency(args.baseline)
    if args.only == "resume":
        resume(args.baseline)
    if args.only in (None, "throughput"):
        throughput(args.seconds)
    if args.only in (None, "deep"):
        deep()
    if args.only in (None, "demo"):
        demo()


if __name__ == "__main__":
    main()
