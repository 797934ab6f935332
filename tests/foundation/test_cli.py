"""The CLI is thin: tested by what it prints and calls, and by its error behaviour."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from neumo import __version__
from neumo.cli.main import app, main

runner = CliRunner()


def run_main(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_help_and_version(capsys):
    code, out, _ = run_main(["--version"], capsys)
    assert code == 0 and __version__ in out
    for group in ([], ["study"], ["runs"], ["config"], ["lab"]):
        res = runner.invoke(app, [*group, "--help"])
        assert res.exit_code == 0, res.output
        assert "Usage" in res.output


def test_help_keeps_square_brackets():
    # rich markup would eat an unescaped "[ray]" and print an install command that installs nothing
    res = runner.invoke(app, ["lab", "--help"], terminal_width=200)
    assert "neumo[ray]" in res.output, res.output


@pytest.mark.parametrize("args,needle", [
    (["study", "run", "no-such-study"], "unknown study"),
    (["study", "run", "F-mlp-digits", "--set", "train.stepz=3"], "train.stepz"),
    (["study", "run", "F-mlp-digits", "--set", "nonsense"], "key.path=value"),
    (["runs", "show", "../../etc"], "not a valid run id"),
    (["config", "validate", "/no/such/file.yaml"], "does not exist"),
    (["study", "run", "--resume", "nope"], "no run"),
    (["study", "run", "F-mlp-digits", "--resume", "nope"], "drop the study id"),
])
def test_user_mistakes_are_one_line_exit_2(args, needle, capsys):
    code, out, err = run_main(args, capsys)
    assert code == 2
    text = out + err
    assert needle in text
    assert "Traceback" not in text


def test_config_validate_names_the_misspelled_key(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text("study: F-mlp-digits\ntrain:\n  steps: 10\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("study: F-mlp-digits\ntrain:\n  setps: 10\nactivaton: relu\n")
    code, out, _ = run_main(["config", "validate", str(good), "--json"], capsys)
    assert code == 0 and json.loads(out)[0]["ok"]
    code, out, _ = run_main(["config", "validate", str(bad), "--json"], capsys)
    assert code == 2
    errs = {e["path"] for e in json.loads(out)[0]["errors"]}
    assert errs == {"train.setps", "activaton"}


def test_study_list_json_and_run_json(capsys):
    code, out, _ = run_main(["study", "list", "--json"], capsys)
    rows = json.loads(out)
    assert code == 0 and "F-mlp-digits" in {r["id"] for r in rows}
    code, out, _ = run_main(["study", "run", "F-mlp-digits", "--seeds", "2", "--set", "train.steps=20", "--set",
                             "hidden=[16]", "--set", "thresholds.min_test_acc=0.0", "--set",
                             "thresholds.max_rank_ratio=1000", "--set", "thresholds.min_train_acc=0",
                             "--json"], capsys)
    v = json.loads(out)
    assert code == 0 and v["study"] == "F-mlp-digits" and v["seeds"] == [0, 1]
    assert v["status"] == "inconclusive" and "study defect" in v["reason"]  # at 1000 even the null "passes"
    by = {c["name"]: c for c in v["checks"]}
    assert by["test_acc"]["op"] == ">=" and by["test_acc"]["threshold"] == 0.0 and by["test_acc"]["passed"] is not False
    assert by["sr_update_over_shuffled"]["relative_to"] == "shuffled_labels"
    assert 0 < v["measured"]["test_acc"] <= 1 and len(by["test_acc"]["per_seed"]) == 2
    code, out, _ = run_main(["study", "list", "--json"], capsys)
    assert {r["id"]: r["last_verdict"] for r in json.loads(out)}["F-mlp-digits"] == v["status"]
    code, out, _ = run_main(["runs", "list", "--json"], capsys)
    (row,) = json.loads(out)
    assert row["state"] == "complete"
    code, out, _ = run_main(["runs", "compare", row["id"], "--json"], capsys)
    assert json.loads(out)[row["id"]]["verdict"] == v["status"]


def test_console_script_entry_point():
    out = subprocess.run([sys.executable, "-m", "neumo.cli.main", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"neumo {__version__}"


def test_verdict_table_fits_80_columns_and_keeps_the_interval():
    from rich.console import Console

    from neumo.cli.lab_cmd import verdict_table

    check = {"name": "a_very_long_check_name_that_cannot_fit_the_column", "op": "<=", "threshold": 0.5,
             "mean": 3.37, "ci_low": 2.81, "ci_high": 3.93, "passed": False}
    rows = [{"study": "S-parity-extrapolation", "status": s, "checks": [check], "elapsed_s": 1234.0}
            for s in ("inconclusive", "fails")]
    con = Console(width=80, record=True, color_system=None)
    con.print(verdict_table(rows))
    lines = con.export_text().splitlines()
    assert lines and all(len(line) <= 80 for line in lines)
    assert sum("3.37 [2.81, 3.93]" in line and "1234s" in line for line in lines) == 2


def test_a_failed_gate_is_the_key_number_and_blocks_the_checks():
    from neumo.report.html import build_report
    from neumo.report.verdicts import key_number

    v = {"study": "F-mlp-digits", "status": "inconclusive", "claim": "c", "reason": "precondition failed",
         "preconditions": [{"name": "acc_at_L", "value": 0.488, "op": ">=", "threshold": 0.95, "passed": False}],
         "checks": [{"name": "gap", "op": ">=", "threshold": 0.35, "mean": 0.1, "ci_low": 0.0, "ci_high": 0.2,
                     "per_seed": [0.1, 0.0, 0.2], "passed": False}]}
    assert key_number(v) == "0.488 (gate >=0.95) acc_at_L"
    doc, _ = build_report([v])
    assert "not judged (gate failed)" in doc and ">fail<" not in doc


def test_one_seed_prints_no_interval_and_says_how_to_get_one(capsys):
    code, out, _ = run_main(["study", "run", "F-mlp-digits", "--seeds", "1", "--set", "train.steps=5", "--set", "thresholds.min_train_acc=0", "--set",
                             "hidden=[8]"], capsys)
    assert code == 0
    assert "[no interval]" in out and "--seeds 2" in out.replace("\n", " ")  # not swallowed as rich markup
