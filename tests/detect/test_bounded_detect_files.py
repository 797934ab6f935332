"""Calibration and combiner files are read with a bound: an oversized one is refused with one line."""

from __future__ import annotations

import pytest

from neumo.detect.combine import load_combiner
from neumo.detect.evaluate import load_calibration
from neumo.errors import NeumoError


@pytest.mark.parametrize(("loader", "env", "what"), [(load_calibration, "NEUMO_MAX_CONFIG_BYTES", "calibration"),
                                                     (load_combiner, "NEUMO_MAX_COMBINER_BYTES", "combiner")])
def test_oversized_file_is_refused_before_parsing(tmp_path, monkeypatch, loader, env, what):
    p = tmp_path / "big.json"
    p.write_text("{" + " " * 4096 + "}", encoding="utf-8")
    monkeypatch.setenv(env, "1024")
    with pytest.raises(NeumoError, match=rf"{what} file .* is larger than 1024 bytes; .*raise \${env}"):
        loader(p)


@pytest.mark.parametrize("loader", [load_calibration, load_combiner])
def test_non_utf8_file_is_one_line_error(tmp_path, loader):
    p = tmp_path / "bad.json"
    p.write_bytes(b"\xff\xfe{}")
    with pytest.raises(NeumoError, match="is not a neumo"):
        loader(p)


def test_shipped_calibration_still_loads_under_the_default_bound():
    cal = load_calibration("smollm2")
    assert cal.source.endswith("(shipped)")


@pytest.mark.parametrize("path", ["/dev/zero", "."])
def test_a_calibration_that_is_not_a_regular_file_is_refused_unread(path):
    with pytest.raises(NeumoError, match="is not a regular file"):
        load_calibration(path)


def test_a_shipped_name_wins_over_a_folder_of_that_name(tmp_path, monkeypatch):
    (tmp_path / "smollm2").mkdir()
    monkeypatch.chdir(tmp_path)
    assert load_calibration("smollm2").source.endswith("(shipped)")


def test_a_combiner_that_is_not_a_regular_file_is_refused_unread():
    with pytest.raises(NeumoError, match="is not a regular file"):
        load_combiner("/dev/zero")


def test_the_ensemble_path_reads_a_calibration_once_and_bounded(tmp_path, monkeypatch):
    # plan_members used to json-parse every given file unbounded (to tell ensemble from one-model files)
    # before load_calibration's bound applied
    from neumo.detect import ensemble

    p = tmp_path / "big.json"
    p.write_text('{"kind": "ensemble"' + " " * 4096 + "}", encoding="utf-8")
    monkeypatch.setenv("NEUMO_MAX_CONFIG_BYTES", "1024")
    with pytest.raises(NeumoError, match="calibration file .* is larger than 1024 bytes"):
        ensemble.plan_members(["smollm2", "gemma3-270m"], [str(p)])
    with pytest.raises(NeumoError, match="is larger than 1024 bytes"):
        ensemble.load_ensemble(p)
