"""POST /api/detect with the n-gram LM: the response is the library's DetectionResult, unchanged."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from neumo.detect.analyze import analyze_text
from neumo.detect.evaluate import fit_calibration, save_calibration
from neumo.detect.lm import load_lm
from neumo.detect.registry import detector_names
from neumo.errors import NeumoError
from neumo.server import Limits, create_app
from neumo.server.scorer import count_tokens

TEXT = ("The council met on Tuesday to discuss the new bridge. Residents said the plan ignored the river "
        "walk; the mayor promised a second consultation before any work starts.")
MACHINE_LIKE = "the the the the the the the the the the the the the the the the the the the the."
HUMAN_REF = ["Zebras quietly juggle violet kumquats near Oslo's fjords.",
             "Qwerty typists rarely enjoy xylophone jazz at dawn.",
             "My aunt's parrot swears in Welsh whenever it rains."]


@pytest.fixture(scope="module")
def lm():
    return load_lm("ngram")


@pytest.fixture
def client(tmp_path):
    with TestClient(create_app(runs_dir=tmp_path, model="ngram")) as c:
        yield c


def test_detect_returns_what_the_library_computes(client, lm):
    r = client.post("/api/detect", json={"text": TEXT})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body == analyze_text(TEXT, lm).model_dump(mode="json")
    assert body["n_tokens"] == len(body["tokens"]) == count_tokens(lm, TEXT)
    assert "".join(t["token"] for t in body["tokens"]) == TEXT
    assert set(body["scores"]) == set(detector_names())
    assert body["verdict"] == "undecided" and body["threshold"] is None  # no calibration given
    assert [s["text"] for s in body["sentences"]] and "".join(s["text"] for s in body["sentences"]).strip() == TEXT
    assert client.get("/healthz").json()["model_loaded"] is True


def test_detector_selection_and_unknown_names(client, lm):
    body = client.post("/api/detect", json={"text": TEXT, "detectors": ["likelihood", "gltr"]}).json()
    assert body["scores"] == analyze_text(TEXT, lm, detectors=["likelihood", "gltr"]).scores
    r = client.post("/api/detect", json={"text": TEXT, "detectors": ["likelihood", "nope"]})
    assert r.status_code == 422 and r.json()["error"] == "unknown_detector" and "'nope'" in r.json()["message"]
    assert "fast_detectgpt" in r.json()["message"]


def test_token_limit_with_the_real_tokenizer(tmp_path, lm):
    n = count_tokens(lm, TEXT)
    with TestClient(create_app(runs_dir=tmp_path, model="ngram", limits=Limits(max_tokens=n - 1))) as c:
        r = c.post("/api/detect", json={"text": TEXT})
        assert r.status_code == 413 and r.json()["limit"] == "max_tokens" and r.json()["value"] == n - 1
        assert f"{n} tokens long" in r.json()["message"]
        assert c.post("/api/detect", json={"text": TEXT[: len(TEXT) // 2]}).status_code == 200


def test_calibrated_verdict_carries_the_thresholds_provenance(tmp_path, lm):
    det = "likelihood"
    texts = HUMAN_REF + [MACHINE_LIKE]
    scores = [analyze_text(t, lm, detectors=[det]).scores[det] for t in texts]
    cal = fit_calibration(scores, [0, 0, 0, 1], detector=det, model=lm.name, reference="serve-test-fixture",
                          target_fpr=0.34)
    path = save_calibration(cal, tmp_path / "cal.json")
    with TestClient(create_app(runs_dir=tmp_path, model="ngram", calibration=path)) as c:
        for text in (MACHINE_LIKE, HUMAN_REF[0], TEXT):
            body = c.post("/api/detect", json={"text": text}).json()
            th = body["threshold"]
            assert (th["detector"], th["value"], th["reference"], th["n"], th["fitted_at"]) == \
                (det, cal.threshold, "serve-test-fixture", 4, cal.fitted_at)
            expected = "machine" if body["scores"][det] >= cal.threshold else "human"
            assert body["verdict"] == expected
            assert body == analyze_text(text, lm, calibration=path).model_dump(mode="json")   # names the file
    assert analyze_text(MACHINE_LIKE, lm, calibration=cal).verdict == "machine"


def test_a_bad_calibration_file_fails_when_the_app_is_built(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(NeumoError, match="not a neumo calibration file"):
        create_app(runs_dir=tmp_path, model="ngram", calibration=bad)


def test_openapi_documents_the_shared_models(client):
    spec = client.get("/openapi.json").json()
    for path in ("/api/detect", "/api/runs", "/api/runs/{run_id}", "/api/runs/{run_id}/metrics", "/api/studies",
                 "/healthz"):
        assert path in spec["paths"], path
    ok = spec["paths"]["/api/detect"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/DetectionResult")
    assert {"DetectionResult", "TokenEvidence", "SentenceScore", "ThresholdInfo", "ErrorBody"} <= \
        set(spec["components"]["schemas"])
    assert client.get("/docs").status_code == 200
