"""S-fsm-extraction: the automaton read out of a trained LSTM's hidden states is the true machine.

For parity (2 states), Z_3 counting (3 states) and a random minimal 4-state DFA over 2 symbols: train an
LSTM on running labels, collect hidden states on fresh strings, cluster them (k-means, and PCA + grid),
build the majority transition table, minimise, and check equivalence with the true machine on every
string (product-automaton search), plus agreement on held-out strings 4x longer than the training ones.
The effective rank (participation ratio) of the centred hidden states is reported alongside.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from neumo.config import StrictModel
from neumo.memory.probes import compare, extract, hidden_effective_rank, model_states
from neumo.memory.tasks import task_rng
from neumo.memory.train import MemoryRunConfig, train_on_task
from neumo.studies.base import Study, StudyContext, Verdict, check, judge
from neumo.studies.registry import register_study
from neumo.train import TrainConfig

_MACHINES = {"parity": ("parity", {}), "z3": ("modular", {"modulus": 3}),
             "random4": ("dfa", {"n_states": 4, "n_symbols": 2})}


class FSMExtractionConfig(StrictModel):
    machines: list[str] = ["parity", "z3", "random4"]
    hidden_size: int = 32
    train: TrainConfig = TrainConfig(steps=1500, batch_size=64, lr=1e-2, eval_every=50)
    train_max_len: int = 16
    n_strings: int = 512
    k: int = 8
    grid_bins: int = 4
    min_equivalent: int = 3            # machines whose extracted automaton must be equivalent
    min_state_map_acc: float = 0.99


@register_study
class FSMExtraction(Study):
    id = "S-fsm-extraction"
    instrument = "memory"
    claim = ("The automaton extracted from a trained LSTM's hidden states (clustering + transition table + "
             "minimisation) is equivalent to the true machine for parity, Z_3 and a random 4-state DFA.")
    citation = "Omlin & Giles (1996) Neural Networks; Weiss, Goldberg & Yahav (2018) ICML"
    Config = FSMExtractionConfig
    presets = {"quick": {"train": {"steps": 600}, "n_strings": 192}, "full": {}}

    def run(self, cfg: FSMExtractionConfig, ctx: StudyContext) -> Verdict:
        rows = []
        for name in cfg.machines:
            task, knobs = _MACHINES[name]
            if task == "dfa":
                knobs = {**knobs, "dfa_seed": ctx.seed}
            res = train_on_task(MemoryRunConfig(
                task=task, task_knobs=knobs, model="lstm", model_knobs={"hidden_size": cfg.hidden_size},
                train=cfg.train, train_lengths=list(range(2, cfg.train_max_len + 1)), target_acc=1.0,
                eval_lengths=[4 * cfg.train_max_len], seed=ctx.seed), progress=ctx.progress)
            dfa = res.task.machine()
            b = res.task.sample(cfg.n_strings, task_rng(ctx.seed, "probe", name), cfg.train_max_len)
            h, pred = model_states(res.model, b.inputs)
            held = task_rng(ctx.seed, "probe", name, "held").integers(0, dfa.n_symbols,
                                                                     size=(256, 4 * cfg.train_max_len))
            ranks = hidden_effective_rank(h)     # how many directions the LSTM uses for its states
            for method in ("kmeans", "grid"):
                ex = extract(h, b.inputs.numpy(), pred, dfa.n_symbols, method=method, k=cfg.k,
                             bins=cfg.grid_bins, n_components=2, seed=ctx.seed)
                c = compare(ex, dfa, b.meta["state"].numpy(), held)
                rows.append({"machine": name, "method": method, "equivalent": c.equivalent,
                             "states_extracted": c.n_states_extracted, "states_true": c.n_states_true,
                             "state_map_acc": c.state_map_acc, "heldout_agreement": c.heldout_agreement,
                             "transition_consistency": ex.transition_consistency,
                             "model_acc_4x": res.eval[4 * cfg.train_max_len]["acc"],
                             "hidden_participation_ratio": ranks["participation_ratio"],
                             "hidden_entropy_rank": ranks["entropy_rank"],
                             "counterexample": "" if c.counterexample is None else str(c.counterexample)})
        ctx.run.write_table("extraction", pd.DataFrame(rows))
        km = [r for r in rows if r["method"] == "kmeans"]
        n_eq = sum(r["equivalent"] for r in km)
        worst = min(r["state_map_acc"] for r in km)
        ctx.save_figure("extracted_states", _figure(rows))
        v = judge(self.id, [check("machines_equivalent_kmeans", n_eq, ">=", cfg.min_equivalent),
                            check("min_state_map_acc_kmeans", worst, ">=", cfg.min_state_map_acc)],
                  summary="; ".join(f"{r['machine']}/{r['method']}: {r['states_extracted']} vs "
                                    f"{r['states_true']} states, equivalent={r['equivalent']}, "
                                    f"map acc {r['state_map_acc']:.3f}" for r in rows),
                  measured={"machines_equivalent_grid": sum(r["equivalent"] for r in rows if r["method"] == "grid"),
                            "hidden_participation_ratio": {r["machine"]: r["hidden_participation_ratio"] for r in km}})
        v.tables["extraction"] = rows
        return v


def _figure(rows):
    from neumo.report.figures import bar_plot

    vals = {f"{r['machine']}/{r['method']}": r["state_map_acc"] for r in rows}
    fig, _ = bar_plot(vals, ylabel="state-mapping accuracy", title="extracted vs true machine states")
    return fig


__all__ = ["FSMExtraction", "FSMExtractionConfig"]
