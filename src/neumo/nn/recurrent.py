"""Recurrent sequence models: Elman RNN (tanh), GRU, LSTM, with a token embedding and a linear readout."""

from __future__ import annotations

import torch
from torch import nn

from neumo.nn.base import SequenceModel, check_ids
from neumo.nn.registry import register_model

_CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class RecurrentLM(SequenceModel):
    """ids (B, T) -> embedding (B, T, E) -> recurrent layers (B, T, H) -> readout (B, T, out_dim)."""

    cell: str = "rnn"

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int = 64,
        embed_dim: int | None = None,
        num_layers: int = 1,
        out_dim: int | None = None,
    ):
        super().__init__()
        self.vocab_size, self.hidden_size, self.num_layers = vocab_size, hidden_size, num_layers
        self.out_dim = out_dim or vocab_size
        e = embed_dim or hidden_size
        self.embed = nn.Embedding(vocab_size, e)
        self.rnn = _CELLS[self.cell](e, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, self.out_dim)

    def forward(self, ids: torch.Tensor, return_memory: bool = False):
        check_ids(ids, self.vocab_size)
        x = self.embed(ids)  # (B, T, E)
        h, last = self.rnn(x)  # (B, T, H)
        logits = self.head(h)  # (B, T, out)
        if not return_memory:
            return logits
        mem = {"hidden": h}
        if self.cell == "lstm":
            mem["cell"] = self._cell_states(x)
        return logits, mem

    def _cell_states(self, x: torch.Tensor) -> torch.Tensor:
        """Last layer's cell state at every step (nn.LSTM only returns the final one)."""
        inp, c_all = x, None
        for layer in range(self.num_layers):
            w_ih, w_hh = getattr(self.rnn, f"weight_ih_l{layer}"), getattr(self.rnn, f"weight_hh_l{layer}")
            b = getattr(self.rnn, f"bias_ih_l{layer}") + getattr(self.rnn, f"bias_hh_l{layer}")
            B, T, _ = inp.shape
            h = inp.new_zeros(B, self.hidden_size)
            c = inp.new_zeros(B, self.hidden_size)
            hs, cs = [], []
            for t in range(T):
                gates = inp[:, t] @ w_ih.T + h @ w_hh.T + b
                i, f, g, o = gates.chunk(4, dim=-1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                hs.append(h)
                cs.append(c)
            inp, c_all = torch.stack(hs, 1), torch.stack(cs, 1)
        assert c_all is not None  # num_layers >= 1
        return c_all

    def state_size(self, seq_len: int = 0) -> int:
        per_layer = self.hidden_size * (2 if self.cell == "lstm" else 1)
        return per_layer * self.num_layers

    def memory_spec(self) -> dict[str, list[str]]:
        working = ["hidden", "cell"] if self.cell == "lstm" else ["hidden"]
        return {"working": working, "short_term": [], "long_term": ["parameters"]}


@register_model("rnn")
class ElmanRNN(RecurrentLM):
    cell = "rnn"


@register_model("gru")
class GRULM(RecurrentLM):
    cell = "gru"


@register_model("lstm")
class LSTMLM(RecurrentLM):
    cell = "lstm"
