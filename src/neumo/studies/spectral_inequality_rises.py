"""S-inequality-rises: neuron strengths become unequal during training, and strong neurons grow more.

Setup (pinned): digits in [0, 1], MLP 64-256-256-10 ReLU, cross-entropy, Adam lr 1e-3, batch 64; the
hidden layer ``net.2.weight`` (256 x 256). Strength of a neuron: the norm of its incoming weights (a row,
``neurons_out``) and of its outgoing weights (a column, ``neurons_in``). Nulls at initialisation (uniform
init): the Gini of |w_ij| is about 1/3, the Gini of row/column norms about 0.015 (norms of 256 entries
concentrate). The rich-get-richer correlation is the Spearman correlation between a neuron's strength at
step t and its growth to t + ``lag``, averaged over windows after the first. Known not to hold in the
first window (the correlation is near zero or negative while the initial transient shrinks weights), and
weaker for small tanh networks on centred inputs, where strengths stay nearly equal.
"""

from __future__ import annotations

import torch

from neumo.config import StrictModel
from neumo.data.digits import minibatches
from neumo.spectral.tracker import SpectralTracker
from neumo.studies.base import Study, StudyContext, Verdict, check, judge
from neumo.studies.registry import register_study
from neumo.studies.spectral_common import cross_entropy, digits, digits_mlp
from neumo.train import Trainer


class InequalityRisesConfig(StrictModel):
    steps: int = 2000
    lag: int = 100
    layer: str = "net.2.weight"
    min_gini_ratio: float = 3.0       # Gini of neuron strengths, final / initial
    min_entries_gini_rise: float = 0.03
    min_rich_get_richer: float = 0.2


@register_study
class InequalityRises(Study):
    id = "S-inequality-rises"
    instrument = "spectral"
    claim = ("The Gini coefficient of neuron strengths rises during training well above its value at "
             "initialisation, and strong neurons grow more (positive rich-get-richer correlation).")
    citation = "Neural Matthew Effect essay (Merton 1968 'Matthew effect'); Gini (1912)"
    Config = InequalityRisesConfig
    presets = {"quick": {"steps": 600}, "full": {}}

    def run(self, cfg: InequalityRisesConfig, ctx: StudyContext) -> Verdict:
        x, y, _ = digits(ctx.seed)
        model = digits_mlp(ctx.seed, [256, 256])
        tr = SpectralTracker(modules=cfg.layer, schedule={"energy": 0, "ranks": 0, "inequality": cfg.lag,
                                                          "rich_lag": cfg.lag})
        Trainer(model, torch.optim.Adam(model.parameters(), lr=1e-3), cross_entropy,
                minibatches(x, y, 64, ctx.seed), cfg.steps, callbacks=[tr]).fit()
        df = tr.table()
        ctx.run.write_table("spectral", df)

        def series(q, m):
            s = df[(df.quantity == q) & (df.metric == m)].sort_values("step")
            return s.step.tolist(), s.value.tolist()

        checks, measured, fig_series = [], {}, {}
        for side in ("out", "in"):
            steps, g = series(f"neurons_{side}", "gini")
            _, rich = series(f"neurons_{side}", "rich_get_richer")
            later = rich[1:]
            checks += [check(f"gini_{side}_final_over_init", g[-1] / g[0], ">=", cfg.min_gini_ratio),
                       check(f"rich_get_richer_{side}", sum(later) / len(later), ">=", cfg.min_rich_get_richer)]
            measured.update({f"gini_{side}_init": g[0], f"gini_{side}_final": g[-1]})
            fig_series[f"Gini of neuron strengths ({side})"] = (steps, g)
        steps, ge = series("entries", "gini")
        checks.append(check("entries_gini_rise", ge[-1] - ge[0], ">=", cfg.min_entries_gini_rise))
        measured.update({"gini_entries_init": ge[0], "gini_entries_final": ge[-1]})
        fig_series["Gini of |w_ij|"] = (steps, ge)
        from neumo.report.figures import line_plot

        fig, _ = line_plot(fig_series, xlabel="step", ylabel="Gini", title=f"inequality in {cfg.layer}",
                           hlines={"uniform |w| null 1/3": 1 / 3})
        ctx.save_figure("gini", fig)
        v = judge(self.id, checks, measured=measured)
        v.summary = (f"Gini of neuron strengths: rows {v.measured['gini_out_init']:.3f} -> {v.measured['gini_out_final']:.3f}, "
                     f"columns {v.measured['gini_in_init']:.3f} -> {v.measured['gini_in_final']:.3f}; |w_ij| "
                     f"{v.measured['gini_entries_init']:.3f} -> {v.measured['gini_entries_final']:.3f}; rich-get-richer "
                     f"{v.measured['rich_get_richer_out']:.2f} (rows), {v.measured['rich_get_richer_in']:.2f} (columns)")
        return v
