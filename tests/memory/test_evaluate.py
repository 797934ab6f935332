import numpy as np
import torch

from neumo.memory.evaluate import evaluate, rollout, scores
from neumo.memory.tasks import IGNORE, make_task


def test_scores_pinned():
    t = torch.tensor([[IGNORE, 1, 0, 1], [0, IGNORE, 1, IGNORE]])
    p = torch.tensor([[5, 1, 1, 1], [0, 0, 0, 0]])
    s = scores(p, t)
    assert s["acc"] == 3 / 5                     # 1,0,1 vs 1,1,1 -> 2 hits; 0,1 vs 0,0 -> 1 hit
    assert s["final_acc"] == 0.5                  # last targets: 1 (hit), 1 (miss)
    assert s["seq_acc"] == 0.0


class ScratchpadOracle(torch.nn.Module):
    """Predicts s_i = s_{i-1} xor x_i reading the *fed* state token; ``flip_first`` errs at the first state."""

    def __init__(self, flip_first: bool = False):
        super().__init__()
        self.flip_first = flip_first

    def forward(self, ids):
        B, T = ids.shape
        out = torch.zeros(B, T, 2)
        for t in range(0, T, 2):
            prev = ids[:, t - 1] - 2 if t > 0 else torch.zeros(B, dtype=torch.long)
            s = prev ^ ids[:, t]
            if self.flip_first and t == 0:
                s = 1 - s
            out[torch.arange(B), t, s] = 1.0
        return out


def test_rollout_feeds_back_own_predictions():
    b = make_task("parity", length=12, scratchpad=True).sample(32, np.random.default_rng(0))
    assert evaluate(ScratchpadOracle(), b)["seq_acc"] == 1.0
    bad = ScratchpadOracle(flip_first=True)
    # teacher forcing hides the error (only the first state is wrong) ...
    tf = evaluate(bad, b, feed_back=False)
    assert tf["acc"] == 11 / 12 and tf["final_acc"] == 1.0
    # ... feeding back its own first state propagates it to every later state
    fb = evaluate(bad, b)
    assert fb["acc"] == 0.0 and fb["final_acc"] == 0.0
    pred = rollout(bad, b)
    assert torch.equal(pred[:, 0::2], 1 - b.targets[:, 0::2])
