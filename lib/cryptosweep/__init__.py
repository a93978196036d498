"""cryptosweep: reproducible, GPU-accelerated hyperparameter sweeps for crypto trading models."""

__version__ = "0.1.0"
