"""The service's answers and refusals, status code and reason, and a fuzz that never gets a 500."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassbox.mlp import ReLUNet
from glassbox.oracle.wire import BINARY, decode_binary, encode_binary
from glassbox.serve.app import create_app
from glassbox.serve.run import build_service

NET = ReLUNet.random("4-5-3", seed=0)
KEY = {"X-API-Key": "k1"}


def client(*, keys: tuple[str, ...] = ("k1",), **options: object) -> TestClient:
    service, _ = build_service("random:4-5-3", api_keys=keys, **options)  # type: ignore[arg-type]
    return TestClient(create_app(service), raise_server_exceptions=True)


def refusal(response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    doc = response.json()
    assert doc["error"] == code
    return doc["detail"]


def test_json_and_binary_answers_are_the_nets_float64_outputs() -> None:
    c = client()
    X = np.random.default_rng(0).normal(size=(5, 4))
    r = c.post("/v1/predict", json={"inputs": X.tolist()}, headers=KEY)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert np.array_equal(np.array(r.json()["outputs"]), NET.forward(X))
    headers = {**KEY, "Content-Type": BINARY}
    r = c.post("/v1/predict", content=encode_binary(X), headers=headers)
    assert r.headers["content-type"] == BINARY
    assert np.array_equal(decode_binary(r.content, 3), NET.forward(X))
    r = c.post(
        "/v1/predict", content=encode_binary(X), headers={**headers, "Accept": "application/json"}
    )
    assert np.array_equal(np.array(r.json()["outputs"]), NET.forward(X))
    assert c.get("/v1/usage", headers=KEY).json() == {
        "key": "key1",
        "queries": 15,
        "requests": 3,
        "budget": None,
        "remaining": None,
    }


def test_info_gives_dimensions_and_defences_and_nothing_about_weights() -> None:
    info = (
        client(round_digits=3, label=True, budget=10, max_rows=7)
        .get("/v1/info", headers=KEY)
        .json()
    )
    assert (info["input_dim"], info["output_dim"]) == (4, 1)
    assert info["defences"] == {
        "float32": False,
        "round_digits": 3,
        "noise_sigma": None,
        "label_only": True,
        "budget_per_key": 10,
        "max_rows": 7,
        "max_body_bytes": 7 * 4 * 32 + 65536,  # a full batch of JSON numbers, under --max-body
        "api_key_required": True,
    }
    assert set(info) == {"input_dim", "output_dim", "defences", "encodings"}


@pytest.mark.parametrize(
    ("body", "status", "code", "says"),
    [
        ("{not json", 400, "malformed_json", "not valid JSON"),
        ('{"rows": []}', 422, "bad_shape", '{"inputs"'),
        ('{"inputs": [1, 2, 3, 4]}', 422, "bad_shape", "list of rows"),
        ('{"inputs": [[1, 2], [3, 4, 5, 6]]}', 422, "bad_shape", "one width"),
        ('{"inputs": [["1", "2", "3", "4"]]}', 422, "bad_shape", "numbers"),
        ('{"inputs": [[1, 2, 3]]}', 422, "wrong_width", "rows have 3 numbers; this model takes 4"),
        ('{"inputs": [[1, 2, 3, NaN]]}', 422, "not_finite", "finite"),
        ('{"inputs": [[1, 2, 3, 1e999]]}', 422, "not_finite", "finite"),
        ('{"inputs": []}', 422, "bad_shape", "list of rows"),
        ("[" * 100000 + "]" * 100000, 400, "malformed_json", "not valid JSON"),
    ],
)
def test_bad_json_batches_are_refused_with_a_reason(
    body: str, status: int, code: str, says: str
) -> None:
    r = client().post(
        "/v1/predict", content=body, headers={**KEY, "Content-Type": "application/json"}
    )
    assert says in refusal(r, status, code)


def test_size_type_key_budget_and_request_id_refusals() -> None:
    c = client(max_rows=3, budget=5)
    post = c.post
    assert "4 rows exceeds this service's limit of 3" in refusal(
        post("/v1/predict", json={"inputs": [[0] * 4] * 4}, headers=KEY), 413, "batch_too_large"
    )
    assert "exceeds" in refusal(
        post("/v1/predict", content=b"0" * 10**6, headers={**KEY, "Content-Type": BINARY}),
        413,
        "body_too_large",
    )
    assert "whole number of rows" in refusal(
        post("/v1/predict", content=b"\0" * 12, headers={**KEY, "Content-Type": BINARY}),
        422,
        "bad_shape",
    )
    refusal(
        post("/v1/predict", content=b"x", headers={**KEY, "Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    refusal(post("/v1/predict", json={"inputs": [[0] * 4]}), 401, "missing_key")
    refusal(
        post("/v1/predict", json={"inputs": [[0] * 4]}, headers={"X-API-Key": "k2"}), 403, "bad_key"
    )
    ok = post("/v1/predict", json={"inputs": [[0] * 4] * 3}, headers={"Authorization": "Bearer k1"})
    assert ok.status_code == 200
    assert "3 of 5 queries used, 3 more asked for" in refusal(
        post("/v1/predict", json={"inputs": [[0] * 4] * 3}, headers=KEY), 429, "budget_spent"
    )
    rid = {**KEY, "X-Request-Id": "abc"}
    first = post("/v1/predict", json={"inputs": [[1] * 4]}, headers=rid)
    again = post("/v1/predict", json={"inputs": [[1] * 4]}, headers=rid)
    assert first.json() == again.json()
    assert c.get("/v1/usage", headers=KEY).json()["queries"] == 4  # the replay was free
    refusal(post("/v1/predict", json={"inputs": [[2] * 4]}, headers=rid), 409, "request_id_reused")
    refusal(c.get("/v1/nothing", headers=KEY), 404, "not_found")
    refusal(c.delete("/v1/usage", headers=KEY), 405, "method_not_allowed")


def test_defences_shape_the_answers() -> None:
    X = [[0.3, -1.2, 2.0, 0.5]]
    truth = NET.forward(np.array(X))
    answer = lambda c: np.array(c.post("/v1/predict", json={"inputs": X}).json()["outputs"])  # noqa: E731
    assert np.array_equal(answer(client(keys=(), float32=True)), truth.astype(np.float32))
    assert np.array_equal(
        answer(client(keys=(), round_digits=2)), np.array([[float(f"{v:.1e}") for v in truth[0]]])
    )
    assert answer(client(keys=(), label=True)).tolist() == [[float(np.argmax(truth))]]
    noisy = answer(client(keys=(), noise=0.1))
    assert 0 < np.abs(noisy - truth).max() < 1


HEADER_NAMES = st.sampled_from(
    ["Content-Type", "Accept", "X-API-Key", "Authorization", "X-Request-Id", "Content-Encoding"]
)
HEADER_VALUES = st.one_of(
    st.sampled_from(["application/json", BINARY, "k1", "Bearer k1", "", "*/*", "gzip"]),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.sampled_from(["inputs", "x"]), inner, max_size=2)
    ),
    max_leaves=30,
)
BODIES = st.one_of(
    st.binary(max_size=200),
    JSONISH.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda v: json.dumps({"inputs": v}).encode(), JSONISH),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    headers=st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=4),
    body=BODIES,
    path=st.sampled_from(
        ["/v1/predict", "/v1/info", "/v1/usage", "/v1/predict/", "/", "/v1/health"]
        + ["/openapi.json", "/docs", "/docs/oauth2-redirect", "/v1/%0Ax", "/v1/..%2f"]
    ),
    method=st.sampled_from(["POST", "GET", "PUT"]),
)
def test_random_malformed_requests_never_get_a_500(headers, body, path, method) -> None:
    r = FUZZ.request(method, path, content=body, headers=headers)
    assert r.status_code < 500, (r.status_code, r.text)
    if r.status_code != 200:
        doc = r.json()
        assert set(doc) == {"error", "detail"} and doc["detail"]


FUZZ = client(max_rows=50, budget=10**6, docs=True)


def test_remembered_answers_are_bounded_in_count_and_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    import glassbox.serve.accounts as accounts

    monkeypatch.setattr(accounts, "REMEMBER_BYTES", 3 * 8 * 10)
    book = accounts.Accounts(("k",))
    acct = book.authorize("k")
    for i in range(5):
        book.charge(acct, str(i), "d", np.zeros((10, 1)))
    assert book.remembered(acct) == ["2", "3", "4"]
    monkeypatch.setattr(accounts, "REMEMBER", 2)
    book.charge(acct, "5", "d", np.zeros((1, 1)))
    assert book.remembered(acct) == ["4", "5"]
    big = np.zeros((100, 1))  # alone over the byte limit: still remembered, the others dropped
    book.charge(acct, "6", "d", big)
    assert book.remembered(acct) == ["6"]
    assert np.array_equal(book.before(acct, 100, "6", "d"), big)
    assert book.usage(acct)["queries"] == 5 * 10 + 1 + 100
