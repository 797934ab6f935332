"""Hostile inputs at the CLI: every user mistake is `error: ...` lines on stderr, exit 2, no traceback,
and no run folder left behind. Table-driven; nothing here trains (every input fails validation first).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neumo.cli import main as cli_main

COMMANDS = [["lab"], ["study", "run", "F-mlp-digits"], ["study", "list"], ["study", "show", "F-mlp-digits"],
            ["runs", "list"], ["config", "validate", "x.yaml"], ["config", "kinds"], ["detect", "score", "-"],
            ["memory", "run", "parity"], ["memory", "tasks"], ["serve"]]

BAD_INT = ["abc", "", "1.5", "nan", "1e3", "--", "0x10", "١", "1,2", " ", "+", "inf", "-inf", "true"]
NUMERIC = [(["study", "run", "F-mlp-digits"], "--seeds"), (["study", "run", "F-mlp-digits"], "--seed"),
           (["study", "run", "F-mlp-digits"], "--checkpoint-every"), (["lab"], "--seeds"), (["lab"], "--jobs"),
           (["lab"], "--seed"), (["detect", "score", "-"], "--max-tokens")]
OUT_OF_RANGE = [(["study", "run", "F-mlp-digits"], "--seeds", v) for v in ("0", "-1", "101", "1000000000")] + \
    [(["study", "run", "F-mlp-digits"], "--checkpoint-every", "-1"), (["lab"], "--seeds", "0"),
     (["lab"], "--seeds", "1000000000"), (["lab"], "--jobs", "0"), (["lab"], "--jobs", "-3")] + \
    [(["memory", "extract", "x"], opt, v) for opt in ("--k", "--bins") for v in ("0", "-2", "100000")] + \
    [(["memory", "sweep", "x.yaml"], "--workers", v) for v in ("0", "-1", "100000")] + \
    [(["spectral", "hessian"], "--k", v) for v in ("0", "-5", "100000")] + \
    [(["spectral", "analyze", "x.safetensors"], "--eps", v) for v in ("0", "1", "-0.5", "nan", "inf")]
# memory run: dotted paths only, knobs typed against the task's and the model's own configs
MEMORY_SET = ["hidden_size=8", "length=6", "model_knobs.hidden_size=0", "model_knobs.hidden_size=-4",
              "model_knobs.hiden_size=8", "task_knobs.lenght=4", "task_knobs.length=-1", "train.lr=1e300",
              "train.batch_size=1000000000", "eval_lengths=[1000000000]", "model=nope", "task=nope",
              "model_knobs.num_layers=0", "train.grad_clip=-1", "train.weight_decay=nan"]
_REPO = Path(__file__).resolve().parents[2]
_PAIRS = str(_REPO / "src/neumo/detect/data/fast-detect-gpt/xsum_gpt-neo-2.7B.raw_data.json.gz")
_TEXT = str(_REPO / "README.md")
# real inputs and the fast model: a bound that failed to refuse would run the command and exit 0
D_EVAL = ["detect", "eval", _PAIRS, "--model", "ngram"]
D_SCORE = ["detect", "score", _TEXT, "--model", "ngram"]
D_EXPLAIN = ["detect", "explain", _TEXT, "--model", "ngram"]
D_CALIBRATE = ["detect", "calibrate", _PAIRS, "--model", "ngram", "--out", "{missing}"]
NUMERIC += [(D_EVAL, "--limit"), (D_EVAL, "--n-boot"), (D_EVAL, "--seed"), (D_EVAL, "--max-tokens"),
            (D_EXPLAIN, "--top"), (D_EXPLAIN, "--max-tokens"), (D_CALIBRATE, "--limit"), (D_CALIBRATE, "--max-tokens")]
OUT_OF_RANGE += [(D_EVAL, "--limit", v) for v in ("0", "-1", "1000000000")] + \
    [(D_EVAL, "--n-boot", v) for v in ("-1", "1000000000")] + [(D_EVAL, "--seed", "-1")] + \
    [(D_EVAL, "--max-tokens", v) for v in ("0", "-5", "1000000000")] + \
    [(D_SCORE, "--max-tokens", v) for v in ("0", "-1", "1000000000")] + \
    [(D_EXPLAIN, "--top", v) for v in ("0", "-1", "1000000000")] + [(D_EXPLAIN, "--max-tokens", "0")] + \
    [(D_CALIBRATE, "--target-fpr", v) for v in ("nan", "0", "1", "-0.1", "inf", "1.5", "-inf")] + \
    [(D_CALIBRATE, "--limit", "0"), (D_CALIBRATE, "--max-tokens", "0")] + \
    [(D_CALIBRATE, "--rule", v) for v in ("mean", "", "MAX", "pooled ", "max,pooled")] + \
    [(cmd, "--calibration", v) for cmd in (D_SCORE, D_EXPLAIN) for v in ("smollm3", "ensemble-", "{missing}")]
# precision, performer (binoculars) and the calibration band: bad values and combinations that cannot work
NUMERIC += [(D_CALIBRATE, "--band-boot")]
OUT_OF_RANGE += [(cmd, "--precision", v) for cmd in (D_SCORE, D_EXPLAIN, D_EVAL, D_CALIBRATE)
                 for v in ("fp64", "", "BF16", "int4")] + \
    [(cmd, "--precision", v) for cmd in (D_SCORE, D_EXPLAIN, D_EVAL, D_CALIBRATE) for v in ("bf16", "int8")] + \
    [(D_CALIBRATE, "--band-boot", v) for v in ("-1", "1000000000")] + \
    [(D_SCORE + ["-d", "binoculars"], "--performer", v) for v in ("gpt9", "", "hf:{missing}")] + \
    [(D_EVAL + ["-d", "binoculars"], "--performer", v) for v in ("gpt9", "hf:{missing}")] + \
    [(D_SCORE, "--performer", "ngram"), (D_EVAL, "--performer", "ngram"), (D_SCORE, "-d", "binoculars"),
     (D_EVAL, "-d", "binoculars"), (D_CALIBRATE, "-d", "binoculars")] + \
    [(["serve"], "--precision", v) for v in ("fp64", "")] + [(["serve", "--model", "ngram"], "--precision", "bf16")] + \
    [(["serve"], "--performer", v) for v in ("gpt9", "hf:/no/such/folder")]
# detect fit (the supervised combiner): two shipped pair files of two domains are a valid base
_PAIRS_W = str(_REPO / "src/neumo/detect/data/fast-detect-gpt/writing_gpt-neo-2.7B.raw_data.json.gz")
D_FIT = ["detect", "fit", _PAIRS, _PAIRS_W, "--model", "ngram", "--limit", "4", "--max-tokens", "64", "--out", "{missing}"]
NUMERIC += [(D_FIT, "--limit"), (D_FIT, "--max-tokens")]
OUT_OF_RANGE += [(D_FIT, "--limit", "0"), (D_FIT, "--max-tokens", "0"), (D_FIT, "--precision", "fp64"),
                 (D_FIT, "--model", "gpt9"), (D_FIT, "--model", "ngram"), (D_FIT, "--group", "a")] + \
    [(D_FIT + ["--model", "tiny"], "--model", "hf:{missing}")] + \
    [(D_CALIBRATE + [_PAIRS], "--model", "gpt9"), (["detect", "calibrate", _PAIRS, "{missing}", "--model", "ngram",
                                                   "--out", "{missing}"], "--limit", "4")]
# ensembles (several --model on detect score): a model twice, one without a calibration (or with one that has
# no human score statistics), a detector or performer choice that an ensemble cannot use, explain on several
OUT_OF_RANGE += [(D_SCORE, "--model", "ngram"), (D_SCORE, "--model", "tiny"), (D_SCORE, "--model", "smollm2"),
                 (D_SCORE + ["--model", "tiny"], "--calibration", "{old_cal}"),
                 (D_SCORE + ["--model", "tiny"], "--detector", "logrank"),
                 (D_SCORE + ["--model", "tiny"], "--performer", "ngram"), (D_EXPLAIN, "--model", "tiny")]
BAD_SET = ["noequals", "=3", "unknown.key=1", "train.lr=nan", "train.lr=-1", "train.lr=inf", "train.steps=abc",
           "train.steps=-3", "train.steps=0", "train=5", "train.lr=[1,2]", "train.steps=1.5", "train..lr=1", "train.lr.x=1"]


def _files(tmp: Path) -> dict[str, Path]:
    f = {}

    def put(name: str, data: bytes) -> None:
        f[name] = tmp / name
        f[name].write_bytes(data)

    put("non_utf8.yaml", b"\xff\xfe\x00study: x")
    put("binary.yaml", bytes(range(256)) * 4)
    put("bomb.yaml", b'a: &a ["x","x"]\nb: &b [*a,*a]\nc: [*b,*b]\nstudy: F-mlp-digits\n')
    put("deep.yaml", b"study: F-mlp-digits\nx: " + b"[" * 300 + b"]" * 300 + b"\n")
    put("deep.json", b'{"study": "F-mlp-digits", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    put("list.yaml", b"- 1\n- 2\n")
    put("scalar.yaml", b"42\n")
    put("invalid.yaml", b"study: [unclosed\n")
    put("invalid.toml", b"study = \n")
    put("invalid.json", b"{nope")
    put("wrong.txt", b"study: F-mlp-digits\n")
    put("nokind.yaml", b"train: {lr: 0.1}\n")
    put("unknown_kind.yaml", b"kind: nothing-like-this\n")
    put("unknown_study.yaml", b"study: S-no-such-study\n")
    put("unknown_key.yaml", b"study: F-mlp-digits\nnot_a_field: 1\n")
    put("bad_value.yaml", b"study: F-mlp-digits\ntrain: {lr: -1}\n")
    put("nan_value.yaml", b"study: F-mlp-digits\ntrain: {lr: .nan}\n")
    put("tag.yaml", b"study: !!python/object/apply:os.system ['true']\n")
    put("empty.yaml", b"")
    put("empty.jsonl", b"")
    put("one_class.jsonl", b'{"text": "A human wrote this.", "label": 0}\n{"text": "And this too.", "label": 0}\n')
    put("no_label.jsonl", b'{"text": "A text without a label."}\n')
    put("old_calibration.json", b'{"detector": "logrank", "threshold": 0.0, "target_fpr": 0.05, "model": "ngram", '
        b'"reference": "r", "n_human": 2, "n_machine": 2, "fitted_at": "2026-01-01"}')
    (tmp / "a_dir.yaml").mkdir()
    f["a_dir.yaml"] = tmp / "a_dir.yaml"
    f["missing.yaml"] = tmp / "missing.yaml"
    return f


FILE_NAMES = ["non_utf8.yaml", "binary.yaml", "bomb.yaml", "deep.yaml", "deep.json", "list.yaml", "scalar.yaml",
              "invalid.yaml", "invalid.toml", "invalid.json", "wrong.txt", "nokind.yaml", "unknown_kind.yaml",
              "unknown_study.yaml", "unknown_key.yaml", "bad_value.yaml", "nan_value.yaml", "tag.yaml",
              "a_dir.yaml", "missing.yaml"]
FILE_CMDS = [["config", "validate"], ["study", "run", "--config"], ["lab", "--config"], ["memory", "sweep"],
             ["memory", "run", "--config"]]

CORRUPT_RUNS = {
    "status_list": {"status.json": b"[1, 2]", "config.yaml": b"study: F-mlp-digits\n"},
    "status_not_json": {"status.json": b"{nope", "config.yaml": b"study: F-mlp-digits\n"},
    "status_non_utf8": {"status.json": b"\xff\xfe", "config.yaml": b"study: F-mlp-digits\n"},
    "pid_string": {"status.json": b'{"state": "running", "pid": "abc"}', "config.yaml": b"study: F-mlp-digits\n"},
    "pid_null": {"status.json": b'{"state": "failed", "pid": null}', "config.yaml": b"study: F-mlp-digits\n"},
    "config_invalid": {"status.json": b'{"state": "failed"}', "config.yaml": b"study: [unclosed\n"},
    "config_list": {"status.json": b'{"state": "failed"}', "config.yaml": b"- 1\n"},
    "no_config": {"status.json": b'{"state": "failed"}'},
    "metrics_garbage": {"status.json": b'{"state": "failed"}', "config.yaml": b"study: F-mlp-digits\n",
                        "metrics.jsonl": b"5\n{nope\n\xff\n"},
}


def _cases():
    for cmd in COMMANDS:
        yield pytest.param(cmd + ["--no-such-option"], None, id="unknown-option:" + "-".join(cmd))
    for cmd, opt in NUMERIC:
        for v in BAD_INT:
            yield pytest.param(cmd + [opt, v], None, id=f"bad-int:{'-'.join(cmd)}{opt}={v!r}")
    for cmd, opt, v in OUT_OF_RANGE:
        yield pytest.param(cmd + [opt, v], None, id=f"range:{'-'.join(cmd)}{opt}={v}")
    for s in BAD_SET:
        yield pytest.param(["study", "run", "F-mlp-digits", "--set", s], None, id=f"set:{s}")
    for s in MEMORY_SET:
        yield pytest.param(["memory", "run", "parity", "--set", s], None, id=f"memory-set:{s}")
    for knobs in ("{d_model: 30, n_heads: 7}", "{d_model: 0}", "{pos: spiral}", "{n_layers: -1}"):
        yield pytest.param(["memory", "run", "parity", "--model", "transformer", "--set", f"model_knobs={knobs}"],
                           None, id=f"memory-transformer:{knobs}")
    for cmd in FILE_CMDS:
        for name in FILE_NAMES:
            yield pytest.param(cmd + ["{file}"], name, id=f"file:{'-'.join(cmd)}:{name}")
    for sid in ("S-nope", "../etc", "", "F-mlp-digits/../x", "x" * 5000):
        yield pytest.param(["study", "run", sid], None, id=f"study-id:{sid[:20]!r}")
        yield pytest.param(["study", "show", sid], None, id=f"study-show:{sid[:20]!r}")
    for rid in ("nope", "../..", "/etc", "x" * 5000, ""):
        yield pytest.param(["runs", "show", rid], None, id=f"run-id:{rid[:20]!r}")
        yield pytest.param(["study", "run", "--resume", rid], None, id=f"resume-id:{rid[:20]!r}")
    for name in CORRUPT_RUNS:
        if not name.startswith("pid_"):  # a bad pid is shown as state 'corrupt' (tested below), not refused
            yield pytest.param(["runs", "show", "{run}"], name, id=f"corrupt-show:{name}")
        yield pytest.param(["study", "run", "--resume", "{run}"], name, id=f"corrupt-resume:{name}")
    for extra in (["--set", "train.lr=0.1"], ["--seeds", "2"], ["--checkpoint-every", "5"], ["--full"]):
        yield pytest.param(["study", "run", "--resume", "nope"] + extra, None, id=f"resume-with:{extra[0]}")
    for path in ("/dev/zero", "{dir}", "{missing}", "{non_utf8}"):
        yield pytest.param(["detect", "score", path, "--model", "tiny"], None, id=f"detect:{path}")
    fit = ["--model", "ngram", "--limit", "4", "--max-tokens", "64", "--out", "{missing}"]
    yield pytest.param(["detect", "fit", _PAIRS] + fit, None, id="fit:one-file-one-group")
    yield pytest.param(D_FIT[:-1] + ["{dir}"], None, id="fit:out-is-a-folder")
    for v in ("-1", "100001", "many"):
        yield pytest.param(D_FIT + ["--n-boot", v], None, id=f"fit:n-boot:{v}")
    yield pytest.param(["detect", "fit", _PAIRS, _PAIRS] + fit, None, id="fit:same-generator-and-domain")
    yield pytest.param(["detect", "fit", _PAIRS, _TEXT] + fit, None, id="fit:name-without-groups")
    yield pytest.param(["detect", "fit", _PAIRS, "{missing}", "--group", "a", "--group", "b"] + fit, None,
                       id="fit:missing-file")
    for name in ("empty.jsonl", "one_class.jsonl", "no_label.jsonl"):
        yield pytest.param(["detect", "fit", _PAIRS, "{file}", "--group", "a", "--group", "b"] + fit, name,
                           id=f"fit:{name}")
    yield pytest.param(["study", "run", "S-long-tail", "--checkpoint-every", "5"], None, id="checkpoint-unsupported")
    yield pytest.param(["study", "run"], None, id="study-run-no-id")
    yield pytest.param(["study", "run", "F-mlp-digits", "--force"], None, id="force-without-resume")
    yield pytest.param(["memory", "run", "parity", "--force"], None, id="memory-force-without-resume")
    yield pytest.param(["memory", "run"], None, id="memory-run-no-task")
    for cmd in (["study", "run", "F-mlp-digits"], ["lab", "--quick"], ["memory", "run", "parity"]):
        for bad in ("wandb", "", "MLFLOW"):
            yield pytest.param(cmd + ["--sink", bad], None, id=f"sink:{cmd[0]}:{bad!r}")
    for cmd in (["study", "run", "F-mlp-digits"], ["lab", "--quick"]):
        yield pytest.param(cmd + ["--ray", ""], None, id=f"ray-empty:{cmd[0]}")
    yield pytest.param(["lab", "--quick", "--ray", "local", "--jobs", "2"], None, id="ray-with-jobs")
    yield pytest.param(["study", "run", "--resume", "nope", "--sink", "mlflow"], None, id="resume-with-sink")
    for extra in (["parity"], ["--set", "train.lr=0.1"], ["--model", "gru"], ["--checkpoint-every", "5"]):
        yield pytest.param(["memory", "run", "--resume", "nope"] + extra, None, id=f"memory-resume-with:{extra[0]}")
    for v in ("-1", "abc", "1000000000000"):
        yield pytest.param(["memory", "run", "parity", "--checkpoint-every", v], None, id=f"memory-ckpt:{v}")


CASES = list(_cases())


def test_the_tier_is_large():
    assert len(CASES) >= 250, len(CASES)


@pytest.mark.parametrize("argv, fixture", CASES)
def test_hostile_input_is_a_clean_user_error(argv, fixture, tmp_path, monkeypatch, capsys):
    root = tmp_path / "runs"
    root.mkdir()
    monkeypatch.setenv("NEUMO_RUNS_DIR", str(root))
    monkeypatch.setenv("NEUMO_MAX_TEXT_BYTES", str(1 << 16))
    monkeypatch.setenv("NEUMO_CRASH_DIR", str(tmp_path / "crashes"))
    files = _files(tmp_path)
    subs = {"{dir}": str(tmp_path), "{missing}": str(tmp_path / "missing.txt"),
            "{non_utf8}": str(files["non_utf8.yaml"]), "{old_cal}": str(files["old_calibration.json"])}
    if fixture in files:
        subs["{file}"] = str(files[fixture])
    if fixture in CORRUPT_RUNS:
        run = root / f"corrupt-{fixture}"
        run.mkdir()
        for name, data in CORRUPT_RUNS[fixture].items():
            (run / name).write_bytes(data)
        subs["{run}"] = str(run)
    argv = [subs.get(a, a) for a in argv]
    before = sorted(p.name for p in root.iterdir())
    with pytest.raises(SystemExit) as e:
        cli_main.main(argv)
    _, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert e.value.code == 2, err
    assert lines and all(ln.startswith("error:") for ln in lines), err
    assert "Traceback" not in err
    assert sorted(p.name for p in root.iterdir()) == before, "a run folder was left behind"
    assert not (tmp_path / "crashes").exists()


def test_a_run_with_a_bad_pid_is_shown_as_corrupt(tmp_path, monkeypatch, capsys):
    run = tmp_path / "r1"
    run.mkdir()
    (run / "status.json").write_text('{"state": "running", "pid": "abc"}')
    (run / "config.yaml").write_text("study: F-mlp-digits\n")
    monkeypatch.setenv("NEUMO_RUNS_DIR", str(tmp_path))
    with pytest.raises(SystemExit) as e:
        cli_main.main(["runs", "show", str(run), "--json"])
    out, err = capsys.readouterr()
    assert e.value.code == 0, err
    assert json.loads(out)["status"]["state"] == "corrupt"
