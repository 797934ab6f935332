"""Test settings: one thread (two threads under load were 10x slower), offline, Agg, runs in tmp."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _runs_dir(tmp_path, monkeypatch):
    """Every test writes runs under its own tmp folder."""
    monkeypatch.setenv("NEUMO_RUNS_DIR", str(tmp_path / "runs"))
    yield


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture
def cli(capsys):
    """``cli(argv) -> (exit code, stdout, stderr)`` of ``neumo <argv>``."""
    from neumo.cli.main import main

    def run(argv):
        with pytest.raises(SystemExit) as e:
            main(argv)
        out = capsys.readouterr()
        return e.value.code, out.out, out.err

    return run
