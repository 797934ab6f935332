"""Hypothesis-driven hostile input at the CLI: random config documents and random `--set` overrides.
Whatever they are, `config validate` answers ok (exit 0) or `error: ...` lines (exit 2), never a traceback."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neumo.cli import main as cli_main

KINDS = ["study: F-mlp-digits", "study: S-sharpening", "kind: memory-run", "kind: memory-sweep", "kind: lab"]
KEYS = ["train", "lr", "steps", "hidden", "seeds", "task", "model", "task_knobs", "model_knobs", "grid", "models",
        "base", "x", "name", "batch_size", "eval_lengths", "n_pairs", "d_model", "n_heads", "studies", "preset",
        "thresholds", "temperatures", "detector", "sinks", "ray", "checkpoint_every", "config", "memory_run"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["lstm", "transformer", "parity", "mqar", "quick",
                                                          "mlflow", "relu", "nan", "1e300"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
                      max_leaves=12)


def _run(argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        cli_main.main(argv)
    _, err = capsys.readouterr()
    return e.value.code, err


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(head=st.sampled_from(KINDS), body=st.dictionaries(st.sampled_from(KEYS), values, max_size=5))
def test_random_config_documents(tmp_path_factory, capsys, head, body):
    p = tmp_path_factory.mktemp("fuzz") / "doc.yaml"
    try:
        text = head + "\n" + (yaml.safe_dump(body) if body else "")
    except yaml.YAMLError:
        return
    p.write_text(text, encoding="utf-8")
    code, err = _run(["config", "validate", str(p)], capsys)
    assert code in (0, 2), err
    assert "Traceback" not in err and (code == 0 or err.startswith("error:")), err


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.one_of(st.sampled_from(["train.lr", "train.eval_every", "train", "thresholds.min_test_acc",
                                       "activation", "train.batch_size"]), st.text(max_size=15)),
       value=st.one_of(st.text(max_size=15), st.sampled_from(["nan", "-1", "[0]", "{a: 1}", "1e400", "[]", "~"])))
def test_random_set_overrides_are_refused_before_any_run(tmp_path_factory, capsys, key, value):
    root = tmp_path_factory.mktemp("runs")
    # steps=1 as the last override: whatever slips through validation trains one step
    code, err = _run(["study", "run", "F-mlp-digits", "--seeds", "1", "--set", f"{key}={value}",
                      "--set", "train.steps=1", "--set", "hidden=[8]", "--runs-dir", str(root), "--json"], capsys)
    assert "Traceback" not in err
    if code == 2:
        assert err.startswith("error:") and not any(root.iterdir()), err
    else:
        assert code == 0, err
