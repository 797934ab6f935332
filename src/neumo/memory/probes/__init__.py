"""Probes of a trained model's memory: automaton extraction, decoding over delay, attention dilution,
effective rank of hidden states."""

from neumo.memory.probes.attention import attention_entropy, entropy_by_length, mean_entropy, uniform_entropy
from neumo.memory.probes.decoding import decode_over_delay
from neumo.memory.probes.extraction import (
    Comparison,
    Extraction,
    cluster_grid,
    cluster_kmeans,
    compare,
    extract,
    model_states,
)
from neumo.memory.probes.rank import hidden_effective_rank

__all__ = [
    "Comparison",
    "Extraction",
    "attention_entropy",
    "cluster_grid",
    "cluster_kmeans",
    "compare",
    "decode_over_delay",
    "entropy_by_length",
    "extract",
    "hidden_effective_rank",
    "mean_entropy",
    "model_states",
    "uniform_entropy",
]
