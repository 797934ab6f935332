"""The one reader of pair files is bounded and refuses malformed files with a NeumoError (no traceback)."""

import gzip
import json

import pytest

import neumo.detect.pairs as pairs
from neumo.detect.evaluate import load_labelled
from neumo.errors import NeumoError


def _write(path, obj):
    path.write_text(json.dumps(obj))
    return path


@pytest.mark.parametrize("obj,needle", [
    ({"original": 3, "sampled": []}, "'original' and 'sampled' lists"),
    ({"original": "abc", "sampled": "abd"}, "'original' and 'sampled' lists"),   # not split into characters
    ({"original": ["a", 5], "sampled": ["b", "c"]}, "must be a string"),
    ({"original": ["a"], "sampled": ["b", "c"]}, "pairs must align"),
    ([1, 2], "'original' and 'sampled' lists"),
])
def test_malformed_pair_files_are_user_errors(tmp_path, obj, needle):
    with pytest.raises(NeumoError, match=needle):
        pairs.load_pairs(_write(tmp_path / "x.json", obj))


def test_pair_files_are_bounded_and_gzip_is_streamed(tmp_path, monkeypatch):
    obj = {"original": ["h" * 50] * 4, "sampled": ["m" * 50] * 4}
    gz = tmp_path / "x.raw_data.json.gz"
    gz.write_bytes(gzip.compress(json.dumps(obj).encode()))
    assert pairs.load_pairs(gz, limit=2) == (["h" * 50] * 2, ["m" * 50] * 2)
    monkeypatch.setattr(pairs, "MAX_PAIR_FILE_BYTES", 100)
    with pytest.raises(NeumoError, match="MAX_PAIR_FILE_BYTES"):
        pairs.load_pairs(gz)
    (tmp_path / "bad.json.gz").write_bytes(b"not gzip")
    with pytest.raises(NeumoError, match="not a \\(gzip-compressed\\) UTF-8 JSON"):
        pairs.load_pairs(tmp_path / "bad.json.gz")


def test_labelled_json_goes_through_the_same_reader(tmp_path):
    p = _write(tmp_path / "x.json", {"original": ["a", "b"], "sampled": ["c", "d"]})
    assert load_labelled(p) == (["a", "b", "c", "d"], [0, 0, 1, 1])
    with pytest.raises(NeumoError, match="must be a string"):
        load_labelled(_write(tmp_path / "y.json", {"original": [1], "sampled": ["c"]}))
