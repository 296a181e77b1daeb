"""The prediction service's speed (figures for BENCHMARKS.md).

    python benchmarks/serve.py                     # all three tables
    python benchmarks/serve.py --only throughput   # or: demo, deep

1. Throughput: rows per second through ``glassbox serve`` (a child process on a loopback
   port) for batches of 1, 64 and 4096 rows, JSON and binary, over one persistent httpx
   connection; each cell runs for about ``--seconds`` seconds. Model: random:100-40-100
   (the paper's toy-model shape).
2. The demo (default config): the attack's seconds and the whole run's wall time, over
   HTTP to a separate process and in-process.
3. Deep extraction of random:10-10-10-1 and random:80-40-20-1 (seed 0): wall time and
   queries through the service beside in-process; the service's own count must match.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import tempfile
import time
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["throughput", "demo", "deep"], default=None)
    parser.add_argument("--seconds", type=float, default=2.0, help="per throughput cell")
    args = parser.parse_args()
    if args.only in (None, "throughput"):
        throughput(args.seconds)
    if args.only in (None, "deep"):
        deep()
    if args.only in (None, "demo"):
        demo()


if __name__ == "__main__":
    main()
