import pytest

from neumo.catalog import validate_file
from neumo.config import StrictModel, apply_overrides, load_file, shipped_configs, validate
from neumo.errors import ConfigError, NeumoError


class Inner(StrictModel):
    lr: float = 0.1


class Outer(StrictModel):
    steps: int = 10
    train: Inner = Inner()


def test_unknown_key_is_an_error_with_its_path():
    with pytest.raises(ConfigError) as e:
        validate(Outer, {"train": {"lrr": 0.2}, "stepz": 3})
    paths = {p for p, _ in e.value.errors}
    assert paths == {"train.lrr", "stepz"}  # every error at once
    assert all("unknown key" in m for _, m in e.value.errors)


def test_overrides_are_dotted_and_typed():
    d = apply_overrides({"train": {"lr": 0.1}}, ["train.lr=0.01", "steps=5", "tags=[a, b]", "flag=true"])
    assert d == {"train": {"lr": 0.01}, "steps": 5, "tags": ["a", "b"], "flag": True}
    assert validate(Outer, {"train": {"lr": 0.01}, "steps": 5}).train.lr == 0.01


def test_bad_override_says_how_to_fix():
    with pytest.raises(NeumoError, match="key.path=value"):
        apply_overrides({}, ["nonsense"])


def test_yaml_and_toml_load(tmp_path):
    (tmp_path / "a.yaml").write_text("study: F-mlp-digits\ntrain:\n  steps: 5\n")
    (tmp_path / "a.toml").write_text('study = "F-mlp-digits"\n[train]\nsteps = 5\n')
    assert load_file(tmp_path / "a.yaml") == load_file(tmp_path / "a.toml")
    kind, cfg = validate_file(tmp_path / "a.toml")
    assert kind == "study:F-mlp-digits" and cfg.train.steps == 5


def test_misspelled_key_in_file_is_named(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("study: F-mlp-digits\ntrain:\n  stepz: 5\nhiden: [3]\n")
    with pytest.raises(ConfigError) as e:
        validate_file(p)
    assert {"train.stepz", "hiden"} <= {p for p, _ in e.value.errors}


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(NeumoError, match="does not exist"):
        load_file(tmp_path / "nope.yaml")
    (tmp_path / "x.yaml").write_text("a: [1,\n")
    with pytest.raises(NeumoError, match="not valid YAML"):
        load_file(tmp_path / "x.yaml")
    (tmp_path / "x.txt").write_text("a: 1")
    with pytest.raises(NeumoError, match="must end in"):
        load_file(tmp_path / "x.txt")


def test_every_shipped_config_validates():
    files = shipped_configs()
    assert files, "the package ships at least one config"
    for f in files:
        validate_file(f)  # raises with every error if one does not validate
