"""Run ids from URLs never reach outside the runs dir: '..', encoded slashes, absolute paths, symlinks."""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient

from neumo.runs import Run
from neumo.server import create_app
from neumo.server.limits import ApiError
from neumo.server.runs_access import resolve_run, run_file

SECRET = "outside-secret-7f3a"


@pytest.fixture
def outside(tmp_path, runs_root):
    """A valid run folder next to (not inside) the runs dir, plus a symlink to it from inside."""
    run = Run.create("outside", {"secret": SECRET}, root=tmp_path / "elsewhere")
    run.finish({"secret_metric": 1.0})
    (runs_root / "linked-run").symlink_to(run.dir, target_is_directory=True)
    return run


@pytest.mark.parametrize("bad", ["..", "../elsewhere", "a..b", ".hidden", "-rf", "a b", "a/b", "/etc", "x" * 300])
def test_resolve_run_rejects_malformed_ids(runs_root, bad):
    with pytest.raises(ApiError) as e:
        resolve_run(bad, runs_root)
    assert e.value.status == 400 and "not a valid run id" in e.value.body.message


def test_resolve_run_refuses_symlinks_and_cwd_folders(runs_root, outside, tmp_path, monkeypatch):
    with pytest.raises(ApiError) as e:
        resolve_run("linked-run", runs_root)
    assert e.value.status == 404
    # find_run would open a folder of that name relative to the working directory; the server must not
    monkeypatch.chdir(outside.dir.parent)
    with pytest.raises(ApiError) as e:
        resolve_run(outside.id, runs_root)
    assert e.value.status == 404


@pytest.mark.parametrize("path", [
    "/api/runs/..%2F..%2Felsewhere", "/api/runs/%2E%2E", "/api/runs/%2e%2e%2fetc%2fpasswd",
    "/api/runs/..%5Cwindows", "/api/runs/%2Fetc%2Fpasswd", "/api/runs/linked-run", "/api/runs/linked-run/metrics",
    "/runs/linked-run/report.html", "/runs/..%2Felsewhere/report.html", "/api/runs/....%2F%2F",
])
def test_http_paths_never_leave_the_runs_dir(runs_root, outside, path):
    with TestClient(create_app(runs_dir=runs_root)) as c:
        r = c.get(path)
        assert r.status_code in (400, 404), (path, r.status_code)
        assert SECRET not in r.text and "error" in r.json()
        listing = c.get("/api/runs").text
    assert "linked-run" not in listing and SECRET not in listing


def test_outside_run_by_its_own_id_is_not_found(runs_root, outside):
    with TestClient(create_app(runs_dir=runs_root)) as c:
        r = c.get(f"/api/runs/{outside.id}")
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_run_files_are_confined_to_the_run(runs_root, ids, tmp_path):
    run = Run.open(runs_root / ids["train"])
    (tmp_path / "secret.txt").write_text(SECRET)
    (run.dir / "artifacts" / "link.txt").symlink_to(tmp_path / "secret.txt")
    for parts in [("..", "config.yaml"), ("artifacts", "../../secret.txt"), ("artifacts", "link.txt")]:
        with pytest.raises(ApiError) as e:
            run_file(run, *parts)
        assert e.value.status in (400, 404)
    with TestClient(create_app(runs_dir=runs_root)) as c:
        for url in [f"/runs/{ids['train']}/artifacts/link.txt", f"/runs/{ids['train']}/artifacts/..%2F..%2Fsecret.txt",
                    f"/runs/{ids['train']}/artifacts/%2E%2E"]:
            r = c.get(url)
            assert r.status_code in (400, 404) and SECRET not in r.text, url
    assert os.path.exists(tmp_path / "secret.txt")
