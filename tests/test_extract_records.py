"""The attack's config (its checks at their edges) and its records (the figures agree with each other)."""

import math

import pytest

from glassbox.config import config_to_dict
from glassbox.errors import GlassboxError
from glassbox.extract import ExtractConfig, extract
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import net_oracle


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"input_scale": 0.0}, "input_scale and line_length must be positive"),
        ({"line_length": 0.0}, "input_scale and line_length must be positive"),
        ({"input_scale": -1.0}, "input_scale and line_length must be positive"),
        ({"lines_per_batch": 0}, r"lines_per_batch, max_lines, patience, max_depth must be >= 1"),
        ({"max_lines": 0}, "max_depth must be >= 1"),
        ({"patience": 0}, "max_depth must be >= 1"),
        ({"max_depth": 0}, "max_depth must be >= 1"),
        ({"max_queries": 0}, "max_queries must be >= 1, got 0"),
        ({"check_samples": 0}, "check_samples must be >= 1 and max_batch_rows >= 16"),
        ({"max_batch_rows": 15}, "check_samples must be >= 1 and max_batch_rows >= 16"),
        ({"architecture": "10-1"}, r"'10-1' needs at least one hidden layer, e\.g\. 10-20-1"),
    ],
)
def test_a_config_past_an_edge_is_a_one_line_error(settings, message):
    with pytest.raises(GlassboxError, match=message):
        ExtractConfig(**settings)


def test_a_config_exactly_at_every_edge_is_accepted():
    edge = ExtractConfig(
        input_scale=0.5,
        line_length=0.5,
        lines_per_batch=1,
        max_lines=1,
        patience=1,
        max_depth=1,
        max_queries=1,
        check_samples=1,
        max_batch_rows=16,
        architecture="3-2-1",
    )
    assert (edge.max_queries, edge.check_samples, edge.max_batch_rows) == (1, 1, 16)
    # others at 1 do not excuse one at 0
    with pytest.raises(GlassboxError):
        ExtractConfig(lines_per_batch=5, max_lines=5, patience=5, max_depth=0)
    assert ExtractConfig(max_queries=None).max_queries is None


def test_the_readme_row_cap_is_the_default():
    # README: "larger than `max_batch_rows` (8192)"
    assert ExtractConfig().max_batch_rows == 8192


def test_widths_come_from_the_architecture_hint_or_the_width_or_nothing():
    assert ExtractConfig(architecture="40-20-10-10-1").widths() == [20, 10, 10]
    assert ExtractConfig(architecture="7-5-2").widths() == [5]
    assert ExtractConfig(architecture="7-5-2:relu").widths() == [5]
    assert ExtractConfig(hidden_width=12).widths() == [12]
    assert ExtractConfig().widths() is None


def test_a_config_round_trips_through_its_saved_form():
    config = ExtractConfig(seed=3, architecture="6-5-4-2", max_queries=10**6, patience=4)
    assert ExtractConfig(**config_to_dict(config)) == config


@pytest.fixture(scope="module")
def deep_run():
    truth = ReLUNet.random("6-5-4-2", seed=3)
    return truth, extract(net_oracle(truth), ExtractConfig(seed=0))


def test_the_record_of_a_deep_run_adds_up(deep_run):
    truth, result = deep_run
    assert result.success, result.message
    data = result.to_json()
    assert data["success"] is True and data["message"] == result.message
    assert data["architecture"] == "6-5-4-2" == "-".join(map(str, result.net.dims))
    assert data["net"] == result.net.describe()
    assert data["queries"] == result.queries == sum(result.queries_by_phase.values())
    assert data["queries_log2"] == math.log2(result.queries)
    assert data["config"] == config_to_dict(ExtractConfig(seed=0))
    assert data["threads"] == result.threads >= 1
    layers = data["layers"]
    assert [layer["layer"] for layer in layers] == [1, 2]
    assert [layer["neurons"] for layer in layers] == [5, 4]
    for layer in layers:
        assert len(layer["neuron_evidence"]) == layer["neurons"]
        assert layer["incomplete_rows"] == 0
        evidence = layer["neuron_evidence"]
        assert layer["rank_deficient_witnesses"] == sum(
            n["rank_deficient_witnesses"] for n in evidence
        )
        for n in layer["neuron_evidence"]:
            assert n["witnesses"] >= 1 and 0 <= n["known_inputs"] <= truth.dims[layer["layer"] - 1]
    # membership through a prefix exists from layer 2 on; layer 1 is judged by flatness alone
    assert all(n["membership"] is None for n in layers[0]["neuron_evidence"])
    assert all(isinstance(n["membership"], dict) for n in layers[1]["neuron_evidence"])
