"""The CLI's one error boundary: user mistakes are one `error:` line and exit 2; bugs one `bug:` line, exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from neumo.cli import main as cli_main


def _run(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main.main(argv)
    out, err = capsys.readouterr()
    return e.value.code, out, err


@pytest.mark.parametrize("argv", [
    ["--bogus"],
    ["study", "run", "--seeds", "abc", "S-long-tail"],
    ["study", "run", "--no-such-flag", "S-long-tail"],
    ["study", "list", "extra-argument"],
    ["runs", "show"],
    ["config", "validate"],
])
def test_usage_errors_are_one_line_exit_2(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("NEUMO_RUNS_DIR", str(tmp_path / "runs"))
    code, _, err = _run(argv, capsys)
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_group_without_command_shows_help_exit_2(capsys):
    code, out, err = _run(["study"], capsys)
    assert code == 2 and "Usage" in out + err and "Traceback" not in err


def test_a_bug_is_one_line_naming_a_saved_traceback(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("NEUMO_CRASH_DIR", str(tmp_path / "crashes"))

    def boom(*a, **k):
        raise RuntimeError("planted bug")

    monkeypatch.setattr(cli_main, "app", boom)
    code, _, err = _run(["study", "list"], capsys)
    assert code == 1
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("bug: RuntimeError: planted bug"), err
    saved = Path(lines[0].split("traceback saved to ")[1].split(". Please")[0])
    assert saved.parent == tmp_path / "crashes"
    assert "Traceback" in saved.read_text() and "planted bug" in saved.read_text()


@pytest.mark.parametrize("exc, words", [
    (IsADirectoryError(21, "Is a directory", "/x"), "is a directory"),
    (PermissionError(13, "Permission denied", "/y"), "permission denied"),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "not UTF-8"),
    (RecursionError("deep"), "nested too deeply"),
])
def test_input_errors_are_user_errors(exc, words, capsys, monkeypatch):
    def raiser(*a, **k):
        raise exc

    monkeypatch.setattr(cli_main, "app", raiser)
    code, _, err = _run(["x"], capsys)
    assert code == 2 and err.startswith("error:") and words in err and "Traceback" not in err
