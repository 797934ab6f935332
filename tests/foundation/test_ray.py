"""`neumo lab --ray` and `neumo study run --ray` on a local Ray cluster give what a local run gives.
Ray is an extra (`pip install 'neumo[ray]'`; CI installs it)."""

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                reason="ray is not installed: pip install 'neumo[ray]'")


@pytest.fixture(scope="module", autouse=True)
def _shutdown_ray():
    yield
    import ray

    if ray.is_initialized():
        ray.shutdown()



def test_study_seeds_on_ray_match_a_local_run(tmp_path, cli):
    sets = [x for s in ("train.steps=60", "train.eval_every=30", "hidden=[32,32]") for x in ("--set", s)]
    base = ["study", "run", "F-mlp-digits", "--seeds", "2", *sets, "--json"]
    code, out, err = cli([*base, "--runs-dir", str(tmp_path / "local")])
    assert code == 0, err
    local = json.loads(out)
    code, out, err = cli([*base, "--ray", "local", "--runs-dir", str(tmp_path / "ray")])
    assert code == 0, err
    remote = json.loads(out)
    assert remote["seeds"] == local["seeds"] == [0, 1]
    assert [c["per_seed"] for c in remote["checks"]] == [c["per_seed"] for c in local["checks"]]
    assert remote["figures"] and remote["status"] == local["status"]


def test_lab_of_two_studies_on_ray(tmp_path, cli):
    code, out, err = cli(["lab", "--quick", "--study", "S-long-tail", "--study", "S-sharpening", "--seeds", "2",
                           "--ray", "local", "--runs-dir", str(tmp_path), "--json"])
    assert code == 0, err
    got = json.loads(out)
    assert [v["study"] for v in got["verdicts"]] == ["S-long-tail", "S-sharpening"]
    assert all(v["status"] in ("holds", "fails", "inconclusive") for v in got["verdicts"]), got["verdicts"]
    saved = yaml.safe_load(Path(got["run"], "config.yaml").read_text(encoding="utf-8"))
    assert saved["ray"] == "local" and saved["studies"] == ["S-long-tail", "S-sharpening"]
