"""Small, readable models shared by all instruments, registered by name (see :mod:`neumo.nn.registry`)."""

from neumo.nn.registry import build_model, model_class, model_names, register_model

__all__ = ["build_model", "model_class", "model_names", "register_model"]
