"""neumo: a lab bench for the implicit biases of neural networks."""

__version__ = "0.1.0"
