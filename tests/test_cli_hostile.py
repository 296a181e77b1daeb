"""Hostile input, as a fuzzer or a demanding user types it: one line, exit 2, nothing written.

Malformed service addresses fail before any connection (no retries), an ``--architecture``
hint is held against the black box before any query, and every command shares one
``--threads`` option. Then what a sweep of the CLI found: NaN and wrong kinds in configs,
sizes beyond memory, folders where files belong, empty grids.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from conftest import TINY_DEMO, run_cli
from glassbox.config import config_from_dict, config_to_dict
from glassbox.demo.run import DemoConfig
from glassbox.errors import GlassboxError
from glassbox.mlp import ReLUNet
from glassbox.oracle.http_client import HttpOracle, check_url
from sweep_helpers import TINY_EXTRACT, train_grid, write_grid
from test_cli_errors import one_line_error

FIX = "give http://HOST:PORT"


def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection or retry pause fails the test: a bad address must never get that far."""
    import httpx

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a malformed address reached the network")

    monkeypatch.setattr(httpx.Client, "request", refuse)
    monkeypatch.setattr("glassbox.oracle.http_client.time.sleep", refuse)


# ------------------------------------------------------------ service addresses
@pytest.mark.parametrize(
    ("url", "fault"),
    [
        ("http://[::1", "'[' that opens an IPv6 address is never closed"),
        ("http://127.0.0.1:99999", "port 99999 is out of range (1 to 65535)"),
        ("http://127.0.0.1:0", "port 0 is out of range"),
        ("http://127.0.0.1:abc", "port 'abc' is not a whole number"),
        ("http://h:-1", "port '-1' is not a whole number"),
        ("http://h:", "names no port"),
        ("http://", "names no host"),
        ("http://:8000", "names no host"),
        ("https://user@:8000/x", "names no host"),
        ("ftp://example.org", "does not begin with http:// or https://"),
        ("http:example.org:80", "does not begin with http:// or https://"),
        ("http://::1:8000", "an IPv6 address goes in brackets"),
        ("http://[zz]:80", "[zz] is not an IPv6 address"),
        ("http://[::1]x", "'x' after the IPv6 address is not ':PORT'"),
        ("http://a b:80", "a space or a control character"),
        ("http://a<b:80", "'a<b' is not a host name"),
    ],
)
def test_a_malformed_service_address_fails_at_once_naming_the_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, fault: str
) -> None:
    _no_network(monkeypatch)
    code, _, err = run_cli("extract", url, "--out", str(tmp_path / "x"))
    one_line_error(code, err, repr(url), "is not a service address", fault, FIX)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(GlassboxError, match="is not a service address"):
        HttpOracle(url)  # the library refuses it too, before a client exists


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("HTTP://localhost:1", "http://localhost:1"),
        ("https://[::1]:65535/prefix", "https://[::1]:65535/prefix"),
        ("http://user:secret@example.org", "http://user:secret@example.org"),
        ("http://[fe80::1%25eth0]:80", "http://[fe80::1%25eth0]:80"),
    ],
)
def test_a_well_formed_address_passes_the_check_unchanged_but_its_scheme(
    url: str, kept: str
) -> None:
    assert check_url(url) == kept


# ------------------------------------------------------------ --architecture
@pytest.mark.parametrize(
    ("hint", "needles"),
    [
        ("6-4-2", ("6 input(s) and 2 output(s)", "has 6 input(s) and 1 output(s)", "6-20-1")),
        ("7-4-1", ("7 input(s) and 1 output(s)", "give 6-...-1", "or drop --architecture")),
        ("6-0-1", ("widths of at least 1", "e.g. 10-20-1")),
        ("6--4-1", ("widths of at least 1 joined by '-'",)),
        ("10-x-3", ("'10-x-3'", "widths of at least 1 joined by '-'")),
        ("6-1", ("at least one hidden layer",)),
        ("", ("--architecture ''",)),
        ("6-4-1:relu", ("a hint is the widths alone", "drop ':relu'")),
        ("6-" + "9" * 5000 + "-1", ("...'", "widths of at least 1")),
    ],
)
def test_a_wrong_architecture_is_refused_before_any_query(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hint: str, needles: tuple[str, ...]
) -> None:
    def no_attack(*args: object, **kwargs: object) -> None:
        raise AssertionError("the attack started")

    monkeypatch.setattr("glassbox.cli.extract.extract", no_attack)
    net = tmp_path / "n.safetensors"
    ReLUNet.random("6-4-1", seed=2).save(net)
    code, _, err = run_cli(
        "extract", str(net), "--architecture", hint, "--out", str(tmp_path / "x")
    )
    one_line_error(code, err, "--architecture", *needles)
    assert len(err) < 400  # a 5000-digit hint is not echoed whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.safetensors"]


def test_a_right_architecture_is_used_and_saved(tmp_path: Path) -> None:
    out = tmp_path / "x"
    code, _, err = run_cli("extract", "random:6-4-1", "--architecture", "6-4-1", "--out", str(out))
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["architecture"] == "6-4-1"


# ------------------------------------------------------------ --threads
def _command(*path: str) -> click.Command:
    from glassbox.cli import _register, cli

    _register()
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        found = command.get_command(click.Context(command), name)
        assert found is not None, name
        command = found
    return command


COMMANDS = [("extract",), ("demo",), ("serve",), ("train", "abs"), ("sweep",)]


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_threads_option_is_the_shared_one(path: tuple[str, ...]) -> None:
    pytest.importorskip("torch")
    (option,) = [p for p in _command(*path).params if p.name == "threads"]
    assert isinstance(option, click.Option) and option.opts == ["--threads"]
    assert isinstance(option.type, click.IntRange) and option.type.min == 1
    assert option.default is None and option.metavar == "N"
    assert option.help is not None and option.help.endswith("; never by load].")


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_zero_threads_is_a_usage_error_of_every_command(
    tmp_path: Path, path: tuple[str, ...]
) -> None:
    pytest.importorskip("torch")
    argument = () if path == ("demo",) else ("x",)
    code, _, err = run_cli(*path, *argument, "--threads", "0")
    one_line_error(code, err, "'--threads': 0 is not in the range x>=1")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------ configs and values
def test_configs_refuse_nan_infinities_and_wrong_kinds_but_round_trip() -> None:
    plain = config_to_dict(TINY_DEMO)
    assert config_from_dict(DemoConfig, json.loads(json.dumps(plain))) == TINY_DEMO
    for key, value, needle in [
        ("budget", float("nan"), "DemoConfig: budget must be a whole number, got nan"),
        ("budget", float("inf"), "must be a whole number, got inf"),
        ("budget", True, "must be a whole number, got True"),
        ("verify_seed", "0", "must be a whole number, got '0'"),
    ]:
        with pytest.raises(GlassboxError, match=needle.replace("(", r"\(")):
            config_from_dict(DemoConfig, {**plain, key: value})
    toy = {**plain, "toy": {**plain["toy"], "lr": float("nan")}}
    with pytest.raises(GlassboxError, match="ToyConfig: lr must be a finite number, got nan"):
        config_from_dict(DemoConfig, toy)


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ('{"budget": NaN}', ("budget must be a whole number, got nan",)),
        ('{"budget": 1e400}', ("budget must be a whole number, got inf",)),
        ('{"budget": -5}', ("budget must be at least 1 query or null, got -5",)),
        ('{"toy": {"n_features": 1000000}}', ("free memory", "smaller toy model in --config")),
        ("", ("not valid JSON",)),
    ],
)
def test_a_bad_demo_config_is_one_line_before_training(
    tmp_path: Path, text: str, needles: tuple[str, ...]
) -> None:
    config = tmp_path / "c.json"
    config.write_text(text)
    code, _, err = run_cli("demo", "--config", str(config), "--out", str(tmp_path / "run"))
    one_line_error(code, err, f"--config {config}" if "memory" not in err else "", *needles)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json"]


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (("extract", "random:4-3-1", "--checkpoint-every", "nan"), ("nan is not a finite",)),
        (("extract", "random:4-3-1", "--checkpoint-every", "inf"), ("inf is not a finite",)),
        (("serve", "random:4-3-1", "--noise", "nan"), ("'--noise': nan is not a finite",)),
        (("verify", "a", "b", "--sparse-probability", "nan"), ("nan is not a finite",)),
        (("train", "abs", "--anneal-steps", "-1"), ("'--anneal-steps': -1",)),
        (("train", "abs", "--batch", "100000000000"), ("free memory", "lower --batch")),
        (("train", "abs", "--steps", "10000000000000"), ("free memory", "--steps")),
        (("train", "abs", "--features", "1000000000000"), ("out of memory", "smaller sizes")),
        (("extract", "random:4-" + "9" * 5000 + "-1"), ("more than 18 digits",)),
        (("extract", ""), ("TARGET is empty",)),
        (("extract", "/dev/null"), ("/dev/null: not a regular file",)),
    ],
)
def test_hostile_values_are_one_line_errors(
    tmp_path: Path, argv: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    if argv[0] in ("train", "serve"):
        pytest.importorskip("torch" if argv[0] == "train" else "fastapi")
    out = () if argv[0] in ("serve", "verify") else ("--out", str(tmp_path / "x"))
    code, _, err = run_cli(*argv, *out)
    one_line_error(code, err, *needles)
    assert len(err) < 600 and list(tmp_path.iterdir()) == []


def test_verify_samples_beyond_memory_and_folders_for_nets_are_refused(tmp_path: Path) -> None:
    net = tmp_path / "n.safetensors"
    ReLUNet.random("4-3-1").save(net)
    code, _, err = run_cli("verify", str(net), str(net), "--samples", "1000000000000")
    one_line_error(code, err, "--samples 1,000,000,000,000 through both nets", "lower --samples")
    for argv in (("verify", str(tmp_path), str(net)), ("net", "info", str(tmp_path))):
        code, _, err = run_cli(*argv)
        one_line_error(code, err, f"{tmp_path} is a folder; give a net file")


def test_a_sweep_with_no_points_or_too_many_workers_is_refused(tmp_path: Path) -> None:
    grid = train_grid(tmp_path, seeds=[0])
    out = str(tmp_path / "s")
    code, _, err = run_cli("sweep", str(grid), "--out", out, "--set", "seed=[]")
    one_line_error(code, err, "has no points", "give every axis a value")
    code, _, err = run_cli("sweep", str(grid), "--out", out, "--workers", "10000")
    one_line_error(code, err, "--workers 10,000 processes", "free memory", "lower --workers")
    assert not (tmp_path / "s").exists()


def test_a_sweep_of_a_malformed_service_address_is_refused_before_any_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_network(monkeypatch)
    grid = write_grid(tmp_path, "e.toml", TINY_EXTRACT)
    out = str(tmp_path / "s")
    code, _, err = run_cli("sweep", str(grid), "--out", out, "--set", 'target="http://[::1"')
    one_line_error(code, err, "'http://[::1' is not a service address", "never closed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.toml"]


@pytest.mark.parametrize("port", ["99999", "0"])
def test_a_dask_port_out_of_range_is_refused_without_waiting(tmp_path: Path, port: str) -> None:
    pytest.importorskip("distributed")
    grid = train_grid(tmp_path, seeds=[0])
    dask = f"tcp://127.0.0.1:{port}"
    code, _, err = run_cli("sweep", str(grid), "--out", str(tmp_path / "s"), "--dask", dask)
    one_line_error(code, err, f"--dask {dask}: port {port} is out of range (1 to 65535)")
    assert not (tmp_path / "s").exists()


def test_serve_on_an_address_it_cannot_bind_says_only_that(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    code, _, err = run_cli(
        "serve", "random:4-3-1", "--host", "no-such-host.invalid", "--state", ":memory:"
    )
    one_line_error(code, err, "cannot listen on no-such-host.invalid:8000")


@pytest.mark.parametrize("command", ["report", "plot"])
def test_a_file_given_as_a_run_directory_is_called_a_file(tmp_path: Path, command: str) -> None:
    pytest.importorskip("torch")
    file = tmp_path / "run.json"
    file.write_text("{}")
    code, _, err = run_cli(command, str(file))
    one_line_error(code, err, f"{file}: a file, not a run directory")
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]
