"""The real service on a free loopback port, attacked over HTTP: figures, counts, keys, budgets, faults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassbox.errors import GlassboxError
from glassbox.extract.attack import extract
from glassbox.mlp import ReLUNet
from glassbox.oracle.http_client import HttpOracle
from glassbox.oracle.wire import BINARY
from glassbox.serve.faults import FAULTS, FaultyProxy
from glassbox.serve.process import running_service
from glassbox.verify.compare import verify

SRC = str(Path(__file__).resolve().parents[1] / "src")
DEEP = "10-8-6-3"  # two hidden layers; seed 0 extracts in a fraction of a second in-process


def usage(url: str, key: str | None = None) -> dict:
    headers = {"X-API-Key": key} if key else {}
    return httpx.get(f"{url}/v1/usage", headers=headers, timeout=10).json()


def test_a_deep_net_is_extracted_over_http_and_both_sides_count_the_same(tmp_path: Path) -> None:
    truth = ReLUNet.random(DEEP, seed=0)
    log = tmp_path / "serve.log"
    with running_service(f"random:{DEEP}", "--seed", "0", log=log) as url:
        with HttpOracle(url) as oracle:
            assert (oracle.input_dim, oracle.output_dim) == (10, 3)
            result = extract(oracle)
        served = usage(url)
    assert result.success, result.message
    assert result.architecture == DEEP
    check = verify(result.net, truth, n_samples=2048, seed=0)
    assert check.max_weight_error_log2 < -25
    assert check.epsilon_log2 < -25
    assert served["queries"] == result.queries == oracle.queries > 1000
    # One log line per request batch, with its row count, and never the inputs.
    lines = log.read_text().splitlines()
    rows = [int(x.split("rows=")[1].split()[0]) for x in lines if "/v1/predict 200" in x]
    assert sum(rows) == result.queries and len(rows) == served["requests"]
    assert f"usage anonymous: {result.queries} queries" in lines[-1]
    assert "[[" not in log.read_text()


def test_the_service_budget_stops_the_attack_clearly_and_counts_agree(tmp_path: Path) -> None:
    with running_service(f"random:{DEEP}", "--api-key", "k1", "--budget", "3000") as url:
        with HttpOracle(url, api_key="k1") as oracle:
            assert oracle.budget == 3000
            result = extract(oracle)
        served = usage(url, "k1")
        wrong = httpx.get(f"{url}/v1/usage", headers={"X-API-Key": "k2"}, timeout=10)
        missing = httpx.get(f"{url}/v1/info", timeout=10)
    assert not result.success
    assert "query budget exhausted" in result.message
    assert served["queries"] == result.queries <= 3000
    assert served["remaining"] == 3000 - served["queries"]
    assert (wrong.status_code, wrong.json()["error"]) == (403, "bad_key")
    assert (missing.status_code, missing.json()["error"]) == (401, "missing_key")


def test_extraction_survives_drops_500s_and_stalls_and_counts_each_row_once() -> None:
    truth = ReLUNet.random(DEEP, seed=0)
    with (
        running_service(f"random:{DEEP}", "--seed", "0") as url,
        FaultyProxy(url, rate=0.08, stall=0.6, seed=1) as proxy,
    ):
        with HttpOracle(proxy.url, timeout=0.3, retries=12, backoff=0.01) as oracle:
            result = extract(oracle)
        served = usage(url)
    assert all(proxy.injected[f] > 0 for f in FAULTS), proxy.injected
    assert result.success, result.message
    assert verify(result.net, truth, n_samples=2048, seed=0).max_weight_error_log2 < -25
    # drop_after, error_after and stall were charged by the service and retried: still equal.
    assert served["queries"] == result.queries


def test_an_unreachable_service_is_one_line_after_the_retries() -> None:
    with running_service("random:4-5-3") as url:
        oracle = HttpOracle(url, retries=2, backoff=0.01)
    with (
        oracle,
        pytest.raises(GlassboxError, match=r"did not answer POST /v1/predict after 3 tries"),
    ):
        oracle.query([[0.0] * 4])
    assert oracle.queries == 1  # the ledger charged the row; the run ends here (resume goes on)


def cli_extract(url: str, out: Path, key: str | None = None) -> subprocess.CompletedProcess[str]:
    """``glassbox extract URL --out OUT`` in a child process, the key in GLASSBOX_API_KEY."""
    env = {**os.environ, "PYTHONPATH": SRC, "GLASSBOX_API_KEY": key or ""}
    cmd = [sys.executable, "-m", "glassbox.cli", "extract", url, "--out", str(out)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def test_glassbox_extract_attacks_a_url_with_the_key_from_the_environment(tmp_path: Path) -> None:
    out = tmp_path / "x"
    with running_service(f"random:{DEEP}", "--api-key", "s3cret") as url:
        run = cli_extract(url, out, "s3cret")
        served = usage(url, "s3cret")
        refused = cli_extract(url, tmp_path / "y", "nope")
    assert run.returncode == 0, run.stderr
    assert f"({served['queries']})" in run.stdout  # the printed count is the service's
    assert (out / "recovered.safetensors").is_file()
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == (
        f"glassbox: error: the service at {url} refused GET /v1/info "
        "(HTTP 403 bad_key: the API key is not valid for this service)"
    )


def test_the_cli_run_stops_at_the_service_budget_with_equal_counts(tmp_path: Path) -> None:
    out = tmp_path / "x"
    with running_service(f"random:{DEEP}", "--budget", "2500") as url:
        run = cli_extract(url, out)
        served = usage(url)
    assert run.returncode == 1, run.stderr
    assert "query budget exhausted" in run.stdout
    record = json.loads((out / "extraction.json").read_text())
    assert record["queries"] == served["queries"] <= 2500 and not record["success"]


# The client itself refuses header values with surrounding spaces; the service sees the rest.
PRINTABLE = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30).map(str.strip)


PATHS = st.one_of(
    st.sampled_from(
        ["/v1/predict", "/v1/info", "/v1/usage", "/v1/health", "/openapi.json", "/docs", "/"]
    ),
    st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF), max_size=20).map(
        lambda t: "/v1/" + quote(t, safe="/?=&%")
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    headers=st.dictionaries(
        st.sampled_from(["Content-Type", "Accept", "X-API-Key", "X-Request-Id", "Authorization"]),
        st.one_of(st.sampled_from(["application/json", BINARY, "k", "Bearer k"]), PRINTABLE),
        max_size=4,
    ),
    body=st.one_of(
        st.binary(max_size=300),
        st.lists(st.lists(st.floats(), max_size=6), max_size=4).map(
            lambda v: json.dumps({"inputs": v}).encode()
        ),
    ),
    path=PATHS,
    method=st.sampled_from(["POST", "GET"]),
)
def test_the_real_service_never_answers_500_to_random_requests(
    live_service, headers, body, path, method
) -> None:
    url, log = live_service
    before = len(log.read_text().splitlines())
    r = httpx.request(method, url + path, content=body, headers=headers, timeout=30)
    assert r.status_code < 500, r.text
    assert httpx.get(f"{url}/v1/info", headers={"X-API-Key": "k"}, timeout=30).status_code == 200
    # Two requests, two log lines, each one JSON object.
    lines = log.read_text().splitlines()
    deadline = time.monotonic() + 10
    while len(lines) < before + 2 and time.monotonic() < deadline:
        time.sleep(0.01)
        lines = log.read_text().splitlines()
    assert len(lines) == before + 2, lines[before:]
    docs = [json.loads(line) for line in lines[before:]]
    assert docs[0]["status"] == r.status_code and docs[0]["event"] == "request"


@pytest.fixture(scope="module")
def live_service(tmp_path_factory):
    folder = tmp_path_factory.mktemp("live")
    log, state = folder / "serve.log", str(folder / "state.sqlite")
    flags = ("--api-key", "k", "--max-rows", "3", "--docs", "--log-json", "--state", state)
    with running_service("random:4-5-3", *flags, log=log) as url:
        yield url, log


def test_the_http_oracle_holds_nothing_of_the_net() -> None:
    import numpy as np

    public = {"input_dim", "output_dim", "budget", "queries", "queries_by_phase", "phase", "query"}
    with running_service("random:4-5-3") as url, HttpOracle(url) as oracle:
        assert {n for n in dir(oracle) if not n.startswith("_")} == public | {"close"}
        for value in vars(oracle).values():
            assert not isinstance(value, ReLUNet | np.ndarray)
        assert oracle.query([[0.0] * 4]).shape == (1, 3)
