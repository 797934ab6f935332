"""The tracker inside the Hugging Face Trainer and PyTorch Lightning (skipped when not installed)."""

import pytest
import torch
import torch.nn.functional as F

from neumo.spectral.adapters import hf_callback, lightning_callback
from neumo.spectral.ranks import matrix_ranks
from neumo.spectral.tracker import SpectralTracker


def data(n=32):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 5, generator=g), torch.randint(0, 3, (n,), generator=g)


def check_table(tracker, w0, w_final, steps):
    df = tracker.table()
    upd = df[(df.step == steps) & (df.quantity == "update") & (df.module == "lin.weight")]
    acc = df[(df.step == steps) & (df.quantity == "grad_accum") & (df.module == "lin.weight")]
    ref = matrix_ranks((w_final - w0).double())
    for k, v in ref.items():
        assert float(upd[upd.metric == k].value.iloc[0]) == pytest.approx(v, rel=1e-6)
        # plain SGD: the accumulated gradient is -(W_T - W_0) / lr, the same ranks
        assert float(acc[acc.metric == k].value.iloc[0]) == pytest.approx(v, rel=1e-4)
    assert sorted(set(df[df.quantity == "grad"].step)) == list(range(1, steps + 1))


def test_hugging_face_trainer_callback(tmp_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate", reason="the Hugging Face Trainer needs accelerate")

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(5, 3)

        def forward(self, x, labels=None):
            logits = self.lin(x)
            return {"loss": F.cross_entropy(logits, labels), "logits": logits}

    x, y = data()
    ds = [{"x": x[i], "labels": y[i]} for i in range(len(y))]
    model = Tiny()
    w0 = model.lin.weight.detach().clone()
    tracker = SpectralTracker(schedule={"ranks": 1, "inequality": 1, "rich_lag": 2}, batch_size=4)
    args = transformers.TrainingArguments(output_dir=str(tmp_path), max_steps=4, per_device_train_batch_size=4,
                                          learning_rate=0.1, lr_scheduler_type="constant", optim="sgd",
                                          weight_decay=0.0, max_grad_norm=0.0, report_to=[], save_strategy="no",
                                          logging_strategy="no", use_cpu=True, disable_tqdm=True, seed=0)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=ds, callbacks=[hf_callback(tracker)])
    trainer.train()
    check_table(tracker, w0, model.lin.weight.detach(), 4)


def test_lightning_callback():
    L = pytest.importorskip("lightning.pytorch", reason="PyTorch Lightning is not installed")

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(5, 3)

        def training_step(self, batch, batch_idx):
            return F.cross_entropy(self.lin(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    x, y = data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=2, shuffle=False)
    module = Module()
    w0 = module.lin.weight.detach().clone()
    tracker = SpectralTracker(schedule={"ranks": 1, "inequality": 1, "rich_lag": 2})
    trainer = L.Trainer(max_steps=4, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[lightning_callback(tracker)])
    trainer.fit(module, loader)
    check_table(tracker, w0, module.lin.weight.detach(), 4)
    # the bound min(batch=2, 3, 5) = 2 comes from the kept batch (without it the bound would be 3)
    df = tracker.table()
    grad = df[df.quantity == "grad"].pivot(index="step", columns="metric", values="value")
    assert len(grad) == 4
    assert (grad.energy_rank_over_bound == grad.energy_rank / 2).all()
