"""JSON that any reader loads, and files and folders that are never half-written."""

import math
import os
from pathlib import Path

import numpy as np
import pytest

from glassbox.errors import GlassboxError
from glassbox.io import (
    atomic_path,
    check_out_dir,
    check_out_file,
    check_writable,
    dumps_json,
    normalize_modes,
    read_json,
    staged_dir,
    to_jsonable,
    write_json,
)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


# -------------------------------------------------------------------- JSON
def test_json_values_become_standard_json():
    value = {
        1: np.float32(0.5),
        "t": (1, np.int64(2)),
        "a": np.array([[1.0, np.nan]]),
        "inf": -math.inf,
        "p": Path("a/b"),
        "s": "x",
        "f": 0.25,
        "n": None,
    }
    assert to_jsonable(value) == {
        "1": 0.5,
        "t": [1, 2],
        "a": [[1.0, None]],
        "inf": None,
        "p": "a/b",
        "s": "x",
        "f": 0.25,
        "n": None,
    }
    assert dumps_json({"a": [1, math.nan]}) == '{\n  "a": [\n    1,\n    null\n  ]\n}\n'


def test_json_files_round_trip_and_bad_ones_are_one_line_errors(tmp_path):
    p = tmp_path / "deep" / "er" / "x.json"
    write_json(p, {"a": np.arange(3), "b": math.inf})
    assert read_json(p) == {"a": [0, 1, 2], "b": None}
    assert p.read_text().endswith("}\n")
    with pytest.raises(GlassboxError, match="no such file"):
        read_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(GlassboxError, match="not valid JSON"):
        read_json(tmp_path / "bad.json")


# ------------------------------------------------------------------ writing
def test_atomic_writes_land_whole_or_not_at_all(tmp_path, umask_022):
    target = tmp_path / "a" / "b" / "out.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("done")
        assert not target.exists()
    assert target.read_text() == "done" and target.stat().st_mode & 0o777 == 0o644
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "done"
    assert sorted(q.name for q in target.parent.iterdir()) == ["out.txt"]


def test_check_writable_accepts_a_folder_to_be_and_names_a_file_in_the_way(tmp_path):
    check_writable(tmp_path / "not" / "yet")
    assert not (tmp_path / "not").exists()  # checked, not created
    assert list(tmp_path.iterdir()) == []  # and the probe is gone
    (tmp_path / "f").write_text("x")
    with pytest.raises(
        GlassboxError, match=r"--report .*f/x: .*f is a file, not a folder; choose another --report"
    ):
        check_writable(tmp_path / "f" / "x", "--report")


def test_check_out_dir_refuses_files_strangers_folders_and_allows_its_own(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(GlassboxError, match="exists and is not a folder; choose another --out"):
        check_out_dir(tmp_path / "file", True, "report.html")
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    with pytest.raises(
        GlassboxError,
        match="already exists and is not empty; choose another --out or pass --overwrite",
    ):
        check_out_dir(full, False, "report.html")
    with pytest.raises(GlassboxError, match="holds no report.html, so glassbox did not write it"):
        check_out_dir(full, True, "report.html")
    (full / "report.html").write_text("ours")
    check_out_dir(full, True, "report.html")
    (tmp_path / "empty").mkdir()
    check_out_dir(tmp_path / "empty", False, "report.html")
    check_out_dir(tmp_path / "new", False, "report.html")


def test_check_out_file_refuses_folders_existing_files_and_missing_folders(tmp_path):
    with pytest.raises(GlassboxError, match="is a folder; give a file name"):
        check_out_file(tmp_path, True)
    f = tmp_path / "x.safetensors"
    check_out_file(f, False)
    f.write_text("x")
    with pytest.raises(GlassboxError, match="exists; choose another --save or pass --overwrite"):
        check_out_file(f, False, "--save")
    check_out_file(f, True)
    missing = tmp_path / "no" / "x.json"
    with pytest.raises(
        GlassboxError, match=r"folder .*no does not exist; create it first \(mkdir -p .*no\)"
    ):
        check_out_file(missing, True)


def test_modes_are_ordinary_less_the_umask_and_links_are_left_alone(tmp_path, umask_022):
    (tmp_path / "d").mkdir(mode=0o700)
    (tmp_path / "d" / "f").write_text("x")
    (tmp_path / "d" / "f").chmod(0o600)
    (tmp_path / "link").symlink_to(tmp_path / "d" / "f")
    normalize_modes(tmp_path)
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "d" / "f").stat().st_mode & 0o777 == 0o644


def test_a_staged_folder_appears_whole_or_not_at_all(tmp_path, umask_022):
    out = tmp_path / "runs" / "deep" / "one"  # parents made as needed
    with staged_dir(out, False) as tmp:
        (tmp / "a.txt").write_text("a")
        assert not out.exists()
    assert (out / "a.txt").read_text() == "a" and out.stat().st_mode & 0o777 == 0o755
    assert sorted(p.name for p in out.parent.iterdir()) == ["one"]
    with pytest.raises(RuntimeError), staged_dir(out.parent / "two", False) as tmp:
        (tmp / "b.txt").write_text("b")
        raise RuntimeError("boom")
    assert sorted(p.name for p in out.parent.iterdir()) == ["one"]
    filled = "was filled by another process while this one ran"
    with pytest.raises(GlassboxError, match=filled), staged_dir(out, False) as tmp:
        (tmp / "c.txt").write_text("c")
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]
    with staged_dir(out, True) as tmp:
        (tmp / "c.txt").write_text("c")
    assert sorted(p.name for p in out.iterdir()) == ["c.txt"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["one"]
