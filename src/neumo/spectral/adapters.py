"""Run a :class:`SpectralTracker` inside PyTorch Lightning or the Hugging Face ``Trainer``.

Both adapters are thin: they map the framework's hooks onto the tracker core (``start``,
``observe_gradients`` before the optimizer step, ``observe_step`` after it). The frameworks are imported
only when an adapter is built. Neither framework hands batches to every hook: Lightning's batch is kept
from ``on_train_batch_start``; under Hugging Face pass ``batch_size=`` to the tracker for the gradient
rank bound. Steps are optimizer steps counted from 1, as in :mod:`neumo.train`.
"""

from __future__ import annotations

from neumo.errors import MissingDependencyError
from neumo.spectral.tracker import SpectralTracker


def lightning_callback(tracker: SpectralTracker, run=None):
    """A ``lightning.pytorch.Callback`` driving ``tracker``; the table goes to ``run`` at fit end."""
    try:
        from lightning.pytorch import Callback
    except ImportError:
        raise MissingDependencyError("the Lightning adapter needs lightning: pip install lightning") from None

    class SpectralLightningCallback(Callback):
        def __init__(self):
            self.tracker, self.run, self._batch = tracker, run, None

        def on_fit_start(self, trainer, pl_module):
            self.tracker.start(pl_module)

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self._batch = batch

        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            self.tracker.observe_gradients(pl_module, trainer.global_step + 1, self._batch)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.tracker.observe_step(pl_module, trainer.global_step)

        def on_fit_end(self, trainer, pl_module):
            self.tracker.write(self.run)

    return SpectralLightningCallback()


def hf_callback(tracker: SpectralTracker, run=None):
    """A ``transformers.TrainerCallback`` driving ``tracker``; the table goes to ``run`` at train end."""
    try:
        from transformers import TrainerCallback
    except ImportError:
        raise MissingDependencyError("the Hugging Face adapter needs transformers: pip install transformers") from None

    class SpectralHFCallback(TrainerCallback):
        def __init__(self):
            self.tracker, self.run = tracker, run

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self.tracker.start(model)

        def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
            self.tracker.observe_gradients(model, state.global_step + 1)

        def on_step_end(self, args, state, control, model=None, **kwargs):
            self.tracker.observe_step(model, state.global_step)

        def on_train_end(self, args, state, control, **kwargs):
            self.tracker.write(self.run)

    return SpectralHFCallback()


__all__ = ["lightning_callback", "hf_callback"]
