"""Weight initialisers: each returns a (d_in, d_out) weight matrix for `x @ W`.

The scale matters: with the wrong variance, activations and gradients shrink or grow by a
constant factor in every layer, which over many layers means vanishing or exploding
gradients. All functions draw in float64 and then cast, so the same seed gives the same
weights (up to rounding) in float32 and float64.
"""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np

__all__ = ["xavier_normal", "xavier_uniform", "he_normal", "normal"]


def check_init_args(d_in: int, d_out: int, rng: np.random.Generator, caller: str = "") -> None:
    """Validate the arguments every initialiser takes (and layers.Linear, which passes them on).

    `caller` ("Linear") starts the message, so an error names what the learner called.
    """
    prefix = f"{caller}: " if caller else ""
    for name, d in (("d_in", d_in), ("d_out", d_out)):
        if isinstance(d, bool) or not isinstance(d, Integral) or d < 1:
            raise ValueError(f"{prefix}{name} must be a positive integer, got {d!r}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{prefix}rng must be a np.random.Generator, got {type(rng).__name__}; "
            "create one with rng = np.random.default_rng(0)"
        )


def xavier_normal(d_in: int, d_out: int, rng: np.random.Generator, dtype=np.float64) -> np.ndarray:
    """Glorot/Xavier normal: N(0, 2 / (d_in + d_out)), shape (d_in, d_out); suits tanh and sigmoid."""
    check_init_args(d_in, d_out, rng)
    std = math.sqrt(2.0 / (d_in + d_out))  # keeps the variance of activations and of gradients about equal
    return (rng.standard_normal((d_in, d_out)) * std).astype(dtype, copy=False)


def xavier_uniform(d_in: int, d_out: int, rng: np.random.Generator, dtype=np.float64) -> np.ndarray:
    """Glorot/Xavier uniform: U(-a, a) with a = sqrt(6 / (d_in + d_out)), shape (d_in, d_out)."""
    check_init_args(d_in, d_out, rng)
    limit = math.sqrt(6.0 / (d_in + d_out))  # U(-a, a) has variance a^2 / 3 = 2 / (d_in + d_out)
    return rng.uniform(-limit, limit, size=(d_in, d_out)).astype(dtype, copy=False)


def he_normal(d_in: int, d_out: int, rng: np.random.Generator, dtype=np.float64) -> np.ndarray:
    """He/Kaiming normal: N(0, 2 / d_in), shape (d_in, d_out); suits ReLU."""
    check_init_args(d_in, d_out, rng)
    std = math.sqrt(2.0 / d_in)  # ReLU zeroes about half the units, the factor 2 makes up for it
    return (rng.standard_normal((d_in, d_out)) * std).astype(dtype, copy=False)


def normal(d_in: int, d_out: int, rng: np.random.Generator, std: float = 0.01, dtype=np.float64) -> np.ndarray:
    """Plain N(0, std^2), shape (d_in, d_out): the 'small random numbers' baseline."""
    check_init_args(d_in, d_out, rng)
    if not std > 0:
        raise ValueError(f"std must be positive, got {std!r}")
    return (rng.standard_normal((d_in, d_out)) * std).astype(dtype, copy=False)
