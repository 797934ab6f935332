"""``neumo serve`` is thin: it validates its options, builds the app and hands it to uvicorn."""

from __future__ import annotations

import pytest
import uvicorn

from neumo.cli.main import main
from neumo.cli.serve import is_loopback


@pytest.fixture
def captured(monkeypatch):
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    return calls


def _run(argv):
    with pytest.raises(SystemExit) as e:
        main(argv)
    return e.value.code


def test_serve_builds_the_app_and_binds_loopback_by_default(captured, tmp_path, capsys):
    assert _run(["serve", "--runs-dir", str(tmp_path), "--model", "ngram", "--port", "8123",
                 "--max-tokens", "64"]) == 0
    (app, kw), = captured
    assert kw["host"] == "127.0.0.1" and kw["port"] == 8123
    state = app.state.neumo
    assert state.runs_dir == tmp_path and state.scorer.model == "ngram" and state.limits.max_tokens == 64
    assert state.scorer.loaded is False  # lazy: nothing loads before the first detect request
    assert "warning" not in capsys.readouterr().err


def test_serve_warns_when_bound_beyond_loopback(captured, tmp_path, capsys):
    assert _run(["serve", "--host", "0.0.0.0", "--runs-dir", str(tmp_path)]) == 0
    assert "warning: binding 0.0.0.0" in " ".join(capsys.readouterr().err.split())
    assert captured[0][1]["host"] == "0.0.0.0"


@pytest.mark.parametrize("argv,msg", [
    (["--port", "70000"], "--port must be in 0..65535"),
    (["--max-tokens", "0"], "invalid limit max_tokens"),
    (["--model", "hf:/no/such/folder"], "does not exist"),
    (["--model", "gpt5"], "unknown --model 'gpt5'; use one of: smollm2"),
    (["--calibration", "/no/such/file.json"], "does not exist"),
])
def test_bad_options_are_one_line_errors(captured, tmp_path, capsys, argv, msg):
    assert _run(["serve", "--runs-dir", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and msg in err and "Traceback" not in err
    assert captured == []


@pytest.mark.parametrize("host,loop", [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True),
                                       ("localhost", True), ("0.0.0.0", False), ("192.168.1.4", False),
                                       ("example.org", False)])
def test_is_loopback(host, loop):
    assert is_loopback(host) is loop
