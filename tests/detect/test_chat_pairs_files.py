"""The chat-model pairs kept in docs/measured/chat-pairs (scripts/make_chat_pairs.py) load as pair files, and
each machine text continues its human text's prompt, as the script promises."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

import pytest

from neumo.detect.pairs import SHIPPED_DIR, load_pairs

ROOT = Path(__file__).resolve().parents[2]
CHAT = ROOT / "docs" / "measured" / "chat-pairs"
spec = importlib.util.spec_from_file_location("make_chat_pairs", ROOT / "scripts" / "make_chat_pairs.py")


def _script():
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_shared_words_is_the_common_leading_words():
    mod = _script()
    assert mod.shared_words("The cat sat on it", "The cat ran") == "The cat"
    assert mod.shared_words("a b", "x b") == ""


@pytest.mark.parametrize("ds", ["xsum", "writing", "squad"])
def test_chat_pairs_align_with_the_shipped_humans(ds):
    human, machine = load_pairs(CHAT / f"{ds}_smollm2-chat.raw_data.json.gz")
    shipped_h, shipped_m = load_pairs(SHIPPED_DIR / f"{ds}_gpt-neo-2.7B.raw_data.json.gz", 100)
    assert len(human) == len(machine) == 100 and human == shipped_h
    index = json.loads(gzip.decompress((CHAT / f"{ds}_smollm2-chat.raw_data.json.gz").read_bytes()))["index"]
    shipped_index = json.loads(gzip.decompress((SHIPPED_DIR / f"{ds}_gpt-neo-2.7B.raw_data.json.gz").read_bytes()))["index"]
    assert index == shipped_index[:100]
    shared_words = _script().shared_words
    for h, m, neo in zip(human, machine, shipped_m):
        prompt = shared_words(h, neo)
        assert prompt and m.startswith(prompt) and len(m) > len(prompt) + 100
    prov = json.loads((CHAT / "PROVENANCE.json").read_text())
    assert prov["files"][f"{ds}_smollm2-chat.raw_data.json.gz"]["pairs"] == 100
