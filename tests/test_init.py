"""Tests for bpkit.init: shapes, dtypes, and the variance each initialiser promises."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bpkit.init import he_normal, normal, xavier_normal, xavier_uniform

D_IN, D_OUT = 300, 200  # 60,000 draws: the sample std is within about 0.3% of the true one


@pytest.mark.parametrize(
    "init, std",
    [
        (xavier_normal, math.sqrt(2 / (D_IN + D_OUT))),
        (xavier_uniform, math.sqrt(6 / (D_IN + D_OUT)) / math.sqrt(3)),  # U(-a, a) has std a / sqrt(3)
        (he_normal, math.sqrt(2 / D_IN)),
        (normal, 0.01),
    ],
)
def test_shape_mean_and_std(init, std):
    W = init(D_IN, D_OUT, np.random.default_rng(0))
    assert W.shape == (D_IN, D_OUT) and W.dtype == np.float64
    assert W.std() == pytest.approx(std, rel=0.015)
    assert abs(W.mean()) < 5 * std / math.sqrt(D_IN * D_OUT)  # mean 0, within 5 standard errors


def test_xavier_uniform_bounds():
    W = xavier_uniform(D_IN, D_OUT, np.random.default_rng(0))
    limit = math.sqrt(6 / (D_IN + D_OUT))
    assert W.min() >= -limit and W.max() <= limit
    assert W.max() > 0.99 * limit and W.min() < -0.99 * limit  # fills the interval


def test_normal_std_argument():
    assert normal(D_IN, D_OUT, np.random.default_rng(0), std=0.5).std() == pytest.approx(0.5, rel=0.015)
    with pytest.raises(ValueError, match="std must be positive"):
        normal(2, 2, np.random.default_rng(0), std=0.0)


@pytest.mark.parametrize("init", [xavier_normal, xavier_uniform, he_normal, normal])
def test_seeded_and_dtype(init):
    a = init(4, 3, np.random.default_rng(7))
    b = init(4, 3, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)  # same seed, same weights
    c = init(4, 3, np.random.default_rng(7), dtype=np.float32)
    assert c.dtype == np.float32
    np.testing.assert_array_equal(c, a.astype(np.float32))  # the same draws, rounded


@pytest.mark.parametrize("init", [xavier_normal, xavier_uniform, he_normal, normal])
def test_bad_arguments(init):
    with pytest.raises(ValueError, match="d_in must be a positive integer"):
        init(0, 3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="d_out must be a positive integer"):
        init(3, 2.5, np.random.default_rng(0))
    with pytest.raises(TypeError, match="np.random.default_rng"):
        init(3, 2, 42)
