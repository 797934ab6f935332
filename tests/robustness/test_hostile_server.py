"""Hostile requests at the server: every one is a 4xx with the JSON error shape, never a 5xx, never a byte of
a file outside the runs dir (an outside secret is planted and searched for in every answer).

Table-driven (paths x run-file tricks, query values, detect bodies, methods), hypothesis-driven (random
paths and query strings), and one raw socket for what an HTTP client library will not send
(Content-Length together with chunked encoding).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neumo.runs import Run
from neumo.server import Limits, create_app
from neumo.server.scorer import Scorer

SECRET = "TOP-SECRET-7f3a9c"


class _Model:
    """Whitespace tokens, a fixed result: the server's seams are under test, not the LM."""

    def load(self):
        return self

    @staticmethod
    def count(_lm, text: str) -> int:
        return len(text.split())

    @staticmethod
    def analyze(text, _lm, detectors):
        from neumo.detect.schema import DetectionResult

        return DetectionResult(model="fake", n_tokens=len(text.split()), scores={d: 0.0 for d in detectors or ["x"]},
                               verdict="undecided")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    outside = tmp / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (outside / "status.json").write_text(json.dumps({"state": "complete", "note": SECRET}))
    (outside / "metrics.jsonl").write_text(json.dumps({"step": 1, "secret": SECRET}) + "\n")
    (outside / "config.yaml").write_text(f"secret: {SECRET}\n")
    root = tmp / "runs"
    good = Run.create("good", {"lr": 0.1}, root=root)
    good.log(1, {"loss": 1.0})
    good.finish({})
    (good.dir / "artifacts" / "a.txt").write_text("artifact")
    os.symlink(outside / "secret.txt", good.dir / "artifacts" / "link.txt")
    linked = Run.create("linked", {"lr": 0.1}, root=root)
    linked.finish({})
    for name in ("config.yaml", "metrics.jsonl", "status.json"):
        (linked.dir / name).unlink()
        os.symlink(outside / name, linked.dir / name)
    corrupt = Run.create("corrupt", {}, root=root)
    (corrupt.dir / "status.json").write_text("[1, 2]")
    os.symlink(outside, root / "run-outside-link")
    limits = Limits(max_body_bytes=2000, max_tokens=50)
    m = _Model()
    app = create_app(runs_dir=root, limits=limits,
                     scorer=Scorer("fake", limits, loader=m.load, analyzer=m.analyze, counter=m.count))
    return {"app": app, "client": TestClient(app, raise_server_exceptions=False), "good": good.id,
            "linked": linked.id, "corrupt": corrupt.id}


def _assert_refused(r, allow=(400, 401, 403, 404, 405, 409, 411, 413, 414, 415, 422, 429)):
    assert r.status_code in allow, (r.status_code, r.text[:300])
    assert SECRET not in r.text
    body = r.json()
    assert set(body) >= {"error", "message"} and isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in body["message"]


TRICKS = ["..", "%2e%2e", "..%2f..%2f..%2foutside", "%2e%2e%2f%2e%2e%2foutside%2fsecret.txt", "run-outside-link",
          ".", "%00", "a%00b", "x" * 5000, "..\\..\\outside", "%5c..%5c..", "%252e%252e", "~", "%7e",
          "ë" * 50, "run id", "-", "--help", "$(id)", "*", "?", "%3f", "\u202e", "CON", "a/../../outside",
          "%c0%ae%c0%ae", "run-outside-link%2fsecret.txt"]
RUN_ROUTES = ["/api/runs/{}", "/api/runs/{}/metrics", "/api/runs/{}/plot.svg", "/runs/{}", "/runs/{}/report.html"]


def _get_cases():
    for t in TRICKS:
        for route in RUN_ROUTES:
            yield route.format(t)
        yield f"/runs/{{good}}/artifacts/{t}"
        yield f"/static/{t}"
    yield "/runs/{good}/artifacts/link.txt"            # a symlink inside a run to an outside file
    yield "/runs/{good}/artifacts/..%2fconfig.yaml"
    yield "/runs/{good}/artifacts/%2e%2e%2f%2e%2e%2foutside%2fsecret.txt"
    yield "/runs/{linked}/artifacts/a.txt"
    yield "/runs/{corrupt}/report.html"
    for q in ("limit=-1", "limit=0", "limit=1000000000000", "limit=abc", "offset=-5", "offset=1e400",
              "limit=nan", "offset=%00", "limit=" + "9" * 400):
        yield f"/api/runs/{{good}}/metrics?{q}"
    for q in ("key=" + "k" * 5000, "key=%00", "width=-1", "width=100000000"):
        yield f"/api/runs/{{good}}/plot.svg?{q}"
    yield "/nothing-here"
    yield "/api/runs/" + "/".join(["a"] * 300)


@pytest.mark.parametrize("path", list(_get_cases()))
def test_hostile_get_is_a_json_4xx(world, path):
    url = path.format(good=world["good"], linked=world["linked"], corrupt=world["corrupt"])
    r = world["client"].get(url)
    if r.status_code == 200:
        # a 200 is only a public page the client's path normalisation landed on ('/runs/..' -> '/', '/api/runs/?'
        # -> the listing, '/runs/GOOD/artifacts/..' -> the good run's page) or the good run's own route with an odd but valid query
        path = r.url.path.rstrip("/") or "/"
        good = world["good"]
        assert path in ("/", "/runs", "/api/runs", "/studies", f"/runs/{good}", f"/api/runs/{good}") or \
            (path.startswith((f"/api/runs/{good}", f"/runs/{good}")) and r.url.query), (url, path)
        assert SECRET not in r.text
        return
    _assert_refused(r)


BODIES = [b"", b"not json", b"[]", b"null", b"42", b'"text"', b"{", b'{"text": 123}', b'{"text": null}',
          b'{"text": ""}', b'{"text": "   "}', b'{"text": "hi", "detectors": "likelihood"}',
          b'{"text": "hi", "detectors": ["nope"]}', b'{"text": "hi", "detectors": [1, 2]}',
          b'{"text": "hi", "extra": 1}', b'{"text": "hi", "detectors": []}', b'{"text": NaN}',
          b'{"text": "' + b"w " * 100 + b'"}',                                     # over max_tokens
          b'{"text": "' + b"x" * 5000 + b'"}',                                      # over max_body_bytes
          b"[" * 5000 + b"]" * 5000, b'{"text": {"text": "hi"}}', b"\xff\xfe\x00", b'{"text": "\\ud800"}',
          json.dumps({"text": "hi", "detectors": ["likelihood"] * 1000}).encode()]


@pytest.mark.parametrize("body", BODIES, ids=[f"body{i}" for i in range(len(BODIES))])
@pytest.mark.parametrize("ctype", ["application/json", "text/plain"])
def test_hostile_detect_body_is_a_json_4xx(world, body, ctype):
    _assert_refused(world["client"].post("/api/detect", content=body, headers={"content-type": ctype}))


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
@pytest.mark.parametrize("path", ["/api/runs", "/api/detect", "/api/runs/{good}", "/healthz", "/runs"])
def test_wrong_methods_are_a_json_405(world, method, path):
    r = getattr(world["client"], method)(path.format(good=world["good"]))
    _assert_refused(r, allow=(404, 405))


def test_listing_survives_corrupt_and_symlinked_runs(world):
    r = world["client"].get("/api/runs")
    assert r.status_code == 200 and SECRET not in r.text
    by_id = {x["id"]: x for x in r.json()}
    assert by_id[world["good"]]["state"] == "complete"
    assert by_id[world["corrupt"]]["state"] == "corrupt" and by_id[world["linked"]]["state"] == "corrupt"
    assert "run-outside-link" not in by_id


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(segment=st.text(min_size=1, max_size=40), query=st.text(max_size=40),
       route=st.sampled_from(RUN_ROUTES + ["/runs/{}/artifacts/x", "/static/{}"]))
def test_random_paths_never_5xx_or_leak(world, segment, query, route):
    from urllib.parse import quote

    url = route.format(quote(segment, safe="")) + ("?" + quote(query, safe="=&") if query else "")
    r = world["client"].get(url)
    assert r.status_code < 500, (url, r.text[:200])
    assert SECRET not in r.text


def test_content_length_with_chunked_is_refused_on_the_wire(world, live_server_factory):
    with live_server_factory(world["app"]) as srv:
        raw = (b"POST /api/detect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
               b'e\r\n{"text": "hi"}\r\n0\r\n\r\n')
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(raw)
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
        status = int(answer.split(b" ", 2)[1])
        assert 400 <= status < 500, answer[:300]


@pytest.fixture
def live_server_factory():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "server" / "serve_live.py"
    spec = importlib.util.spec_from_file_location("serve_live_for_robustness", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.LiveServer
