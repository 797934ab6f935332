"""The training loop shared by every instrument, its callback protocol and checkpoints."""

from neumo.train.callbacks import HOOKS, Callback, StepState
from neumo.train.loop import Trainer
from neumo.train.optim import TrainConfig, make_optimizer

__all__ = ["HOOKS", "Callback", "StepState", "Trainer", "TrainConfig", "make_optimizer"]
