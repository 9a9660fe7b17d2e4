"""Tests for bpkit.data: toy generators, train/test split, shipped digits, IDX parsing, MNIST download.

No test touches the network: MNIST downloads go to file:// URLs of tiny IDX files written here.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from bpkit import data
from bpkit.data import (
    ChecksumMismatchError,
    MNISTUnavailableError,
    load_digits,
    load_mnist,
    make_house_prices,
    make_moons,
    make_spirals,
    make_xor,
    read_idx,
    standardiser,
    train_test_split,
)

GENERATORS = {
    "moons": lambda rng: make_moons(200, 0.1, rng),
    "spirals": lambda rng: make_spirals(300, 3, 0.2, rng),
    "xor": lambda rng: make_xor(200, 0.1, rng),
    "house_prices": lambda rng: make_house_prices(200, rng),
}


@pytest.fixture(autouse=True)
def no_real_mirrors(monkeypatch, tmp_path):
    """Whatever a test forgets to patch, load_mnist must never reach the internet."""
    monkeypatch.setattr(data, "MNIST_MIRRORS", ((tmp_path / "no-such-mirror").as_uri() + "/",))
    monkeypatch.delenv("BPKIT_DATA", raising=False)


# --------------------------------------------------------------------------- generators


@pytest.mark.parametrize("name", GENERATORS)
def test_generator_shapes_and_dtypes(name):
    X, y = GENERATORS[name](np.random.default_rng(0))
    n = 300 if name == "spirals" else 200
    assert X.shape == (n, 2) and X.dtype == np.float64
    assert y.shape == (n,)
    assert y.dtype == (np.float64 if name == "house_prices" else np.int64)
    assert np.all(np.isfinite(X)) and np.all(np.isfinite(y))


@pytest.mark.parametrize("name", GENERATORS)
def test_generator_is_deterministic_given_seed(name):
    X1, y1 = GENERATORS[name](np.random.default_rng(42))
    X2, y2 = GENERATORS[name](np.random.default_rng(42))
    X3, _ = GENERATORS[name](np.random.default_rng(43))
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)


@pytest.mark.parametrize("fn", [make_moons, make_spirals, make_xor, make_house_prices])
def test_generators_require_an_explicit_generator(fn):
    with pytest.raises(TypeError, match="default_rng"):
        fn()
    with pytest.raises(TypeError, match="default_rng"):
        fn(rng=np.random.RandomState(0))  # legacy API: refused, the course uses Generator


@pytest.mark.parametrize("fn", [make_moons, make_spirals, make_xor, make_house_prices])
def test_generators_reject_bad_sizes_and_noise(fn):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="n must be an integer"):
        fn(n=0, rng=rng)
    with pytest.raises(ValueError, match="n must be an integer"):
        fn(n=2.5, rng=rng)
    with pytest.raises(ValueError, match="noise"):
        fn(n=10, noise=-1.0, rng=rng)


def test_moons_without_noise_lie_on_their_arcs():
    X, y = make_moons(101, 0.0, np.random.default_rng(0))
    assert np.bincount(y).tolist() == [50, 51]
    upper, lower = X[y == 0], X[y == 1]
    # Class 0 on the unit circle's upper half; class 1 on the circle of radius 1 around (1, 0.5), lower half.
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0)
    assert np.all(upper[:, 1] >= -1e-12)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1.0, lower[:, 1] - 0.5), 1.0)
    assert np.all(lower[:, 1] <= 0.5 + 1e-12)


def test_moons_are_shuffled():
    _, y = make_moons(200, 0.1, np.random.default_rng(0))
    # Sorted labels would be 100 zeros then 100 ones; a shuffle mixes the first half.
    assert 20 < y[:100].sum() < 80


def test_spirals_class_counts_and_radius():
    X, y = make_spirals(301, 3, 0.0, np.random.default_rng(0))
    assert np.bincount(y).tolist() == [101, 100, 100]
    assert np.all(np.hypot(X[:, 0], X[:, 1]) <= 1.0 + 1e-12)
    with pytest.raises(ValueError, match="n_classes"):
        make_spirals(10, 1, 0.1, np.random.default_rng(0))


def test_xor_labels_follow_the_sign_rule_without_noise():
    X, y = make_xor(500, 0.0, np.random.default_rng(0))
    expected = (X[:, 0] * X[:, 1] < 0).astype(np.int64)
    np.testing.assert_array_equal(y, expected)
    assert np.all(np.abs(X) <= 1.0)
    assert 200 < y.sum() < 300  # about half the quadrants are class 1


def test_house_prices_rule_is_exact_without_noise():
    X, y = make_house_prices(50, np.random.default_rng(0), noise=0.0)
    A = np.column_stack([np.ones(len(X)), X])  # [1, size, bedrooms]
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    np.testing.assert_allclose(coef, [50.0, 2.5, 10.0], atol=1e-8)


def test_house_prices_rule_recoverable_by_least_squares():
    X, y = make_house_prices(5000, np.random.default_rng(1))
    size, bedrooms = X[:, 0], X[:, 1]
    assert size.min() >= 40 and size.max() <= 220
    np.testing.assert_array_equal(bedrooms, np.round(bedrooms))
    assert bedrooms.min() >= 1 and bedrooms.max() <= 6
    assert np.corrcoef(size, bedrooms)[0, 1] > 0.5  # bigger houses have more bedrooms
    A = np.column_stack([np.ones(len(X)), X])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    # Standard errors at n=5000, noise std 15: about 1 (intercept), 0.01 (size), 0.3 (bedrooms).
    assert abs(coef[0] - 50.0) < 5.0
    assert abs(coef[1] - 2.5) < 0.05
    assert abs(coef[2] - 10.0) < 1.5
    residual_std = np.std(y - A @ coef)
    assert 14.0 < residual_std < 16.0  # the noise level, 15


# --------------------------------------------------------------------------- train_test_split


def test_split_sizes_pairing_and_coverage():
    X = np.arange(20.0).reshape(10, 2)
    y = np.arange(10)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, 0.25, np.random.default_rng(0))
    assert (len(X_tr), len(X_te)) == (7, 3)  # ceil(0.25 * 10) = 3 test rows
    np.testing.assert_array_equal(X_tr[:, 0], 2 * y_tr)  # rows of X and y stay paired
    np.testing.assert_array_equal(X_te[:, 0], 2 * y_te)
    assert sorted(np.concatenate([y_tr, y_te]).tolist()) == list(range(10))
    assert y_tr.tolist() != sorted(y_tr.tolist()) or y_te.tolist() != sorted(y_te.tolist())


def test_split_is_deterministic_and_accepts_a_count():
    X, y = make_moons(50, 0.1, np.random.default_rng(0))
    a = train_test_split(X, y, 10, np.random.default_rng(5))
    b = train_test_split(X, y, 10, np.random.default_rng(5))
    assert len(a[1]) == 10 and len(a[0]) == 40
    for left, right in zip(a, b):
        np.testing.assert_array_equal(left, right)


@pytest.mark.parametrize("test_size", [0.0, 1.0, 1.5, -0.1, 0, 10, 11])
def test_split_rejects_sizes_that_leave_a_part_empty(test_size):
    X, y = np.zeros((10, 2)), np.zeros(10)
    with pytest.raises(ValueError, match="test_size"):
        train_test_split(X, y, test_size, np.random.default_rng(0))


def test_split_rejects_mismatched_lengths_and_missing_rng():
    with pytest.raises(ValueError, match="X has 10 rows but y has 9"):
        train_test_split(np.zeros((10, 2)), np.zeros(9), 0.2, np.random.default_rng(0))
    with pytest.raises(TypeError, match="default_rng"):
        train_test_split(np.zeros((10, 2)), np.zeros(10), 0.2)
    with pytest.raises(TypeError, match="test_size"):
        train_test_split(np.zeros((10, 2)), np.zeros(10), "20%", np.random.default_rng(0))


# --------------------------------------------------------------------------- standardiser


def test_standardiser_gives_training_rows_mean_0_and_std_1_and_centres_constant_features():
    X_train = np.array([[1.0, 5.0, 2.0], [3.0, 5.0, 4.0], [5.0, 5.0, 9.0]])  # column 1 never varies
    scale = standardiser(X_train)
    np.testing.assert_array_equal(scale.mean, [3.0, 5.0, 5.0])
    assert scale.std[1] == 1.0  # constant: centred, not divided by 0
    scaled = scale(X_train)
    np.testing.assert_allclose(scaled.mean(axis=0), 0.0, atol=1e-15)
    np.testing.assert_allclose(scaled.std(axis=0), [1.0, 0.0, 1.0])
    assert np.all(np.isfinite(scaled))


def test_standardiser_scales_other_rows_with_the_training_statistics():
    X, _ = load_digits()
    X_train, X_test = X[:1000], X[1000:]
    scale = standardiser(X_train)
    sigma = X_train.std(axis=0)
    sigma[sigma == 0] = 1.0  # the border pixels that are 0 in every training image
    np.testing.assert_array_equal(scale(X_test), (X_test - X_train.mean(axis=0)) / sigma)
    assert not np.allclose(scale(X_test).mean(axis=0), 0.0)  # the test rows' own statistics are not used


@pytest.mark.parametrize(
    "X_train, error, message",
    [
        (np.zeros(4), ValueError, r"X_train must be training rows of shape \(N, D\) with N >= 1, got shape \(4,\)"),
        (np.zeros((0, 3)), ValueError, r"got shape \(0, 3\)"),
        (np.array([["a", "b"]]), TypeError, "X_train must hold numbers"),
    ],
)
def test_standardiser_rejects_what_is_not_a_table_of_numbers(X_train, error, message):
    with pytest.raises(error, match=message):
        standardiser(X_train)


def test_standardiser_rejects_rows_with_another_number_of_features():
    scale = standardiser(np.ones((5, 64)))
    with pytest.raises(
        ValueError, match=r"expects rows of 64 features, shape \(N, 64\), like the training rows; got \(3, 8\)"
    ):
        scale(np.ones((3, 8)))


# --------------------------------------------------------------------------- digits


def test_digits_shapes_dtypes_and_content():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 16.0
    np.testing.assert_array_equal(X, np.round(X))  # pixel counts are integers 0..16
    counts = np.bincount(y)
    assert len(counts) == 10
    assert counts.min() >= 170 and counts.max() <= 190  # about 180 of each digit
    assert y[:3].tolist() == [0, 1, 2]  # the first three rows of the shipped csv


def test_digits_calls_return_independent_copies():
    X1, y1 = load_digits()
    X1[:] = -1.0
    y1[:] = -1
    X2, y2 = load_digits()
    assert X2.min() == 0.0 and y2.min() == 0


def test_digits_images_look_like_their_digits():
    X, y = load_digits()
    # A zero is a ring: the centre pixels of the mean 0 are darker than its left and right edges.
    zero = X[y == 0].mean(axis=0).reshape(8, 8)
    assert zero[3:5, 3:5].mean() < zero[3:5, [1, 6]].mean()
    # A one is a vertical stroke: the middle columns carry more ink than the outer ones.
    one = X[y == 1].mean(axis=0).reshape(8, 8)
    assert one[:, 3:5].mean() > 2 * one[:, [0, 7]].mean()


# --------------------------------------------------------------------------- IDX parser


def idx_bytes(array: np.ndarray, code: int) -> bytes:
    """Encode an array as IDX by hand: 0, 0, type code, rank, big-endian sizes, big-endian values."""
    big_endian = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(big_endian).tobytes()


def test_read_idx_ubyte_from_bytes_path_and_gzip(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = idx_bytes(images, 0x08)
    assert raw[:4] == b"\x00\x00\x08\x03"
    assert len(raw) == 4 + 3 * 4 + 24
    (tmp_path / "a.idx").write_bytes(raw)
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(raw))
    for source in (raw, gzip.compress(raw), tmp_path / "a.idx", str(tmp_path / "a.idx.gz")):
        out = read_idx(source)
        assert out.dtype == np.uint8 and out.shape == (2, 3, 4)
        np.testing.assert_array_equal(out, images)


@pytest.mark.parametrize(
    "code, values",
    [
        (0x09, np.array([-128, 0, 127], dtype=np.int8)),
        (0x0B, np.array([[-300, 2], [3, 32000]], dtype=np.int16)),
        (0x0C, np.array([-70000, 1, 2**31 - 1], dtype=np.int32)),
        (0x0D, np.array([1.5, -2.25], dtype=np.float32)),
        (0x0E, np.array([[np.pi]], dtype=np.float64)),
    ],
)
def test_read_idx_other_types_are_big_endian(code, values):
    out = read_idx(idx_bytes(values, code))
    assert out.shape == values.shape and out.dtype.kind == values.dtype.kind
    np.testing.assert_array_equal(out, values)


def test_read_idx_labels_known_bytes():
    # Labels 7, 2, 1 written out byte by byte: magic 0x00000801, count 3, then the three bytes.
    out = read_idx(b"\x00\x00\x08\x01\x00\x00\x00\x03\x07\x02\x01")
    assert out.tolist() == [7, 2, 1]


@pytest.mark.parametrize(
    "blob, message",
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "two zero bytes"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "type code 0x07"),
        (b"\x00\x00\x08\x02\x00\x00\x00\x01", "truncated IDX header"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x03\x05", "truncated or corrupt"),
        (b"\x00\x00\x08\x00", "rank is 0"),
    ],
)
def test_read_idx_rejects_malformed_files(blob, message):
    with pytest.raises(ValueError, match=message):
        read_idx(blob)


# --------------------------------------------------------------------------- MNIST download


@pytest.fixture
def tiny_mnist(tmp_path):
    """Four tiny gzipped IDX files named like MNIST's, in a folder served as a file:// mirror."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, size=(5, 3, 3), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": np.array([3, 1, 4, 1, 5], dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, size=(2, 3, 3), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": np.array([9, 2], dtype=np.uint8),
    }
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    hashes = {}
    for name, array in arrays.items():
        blob = gzip.compress(idx_bytes(array, 0x08))
        (mirror / name).write_bytes(blob)
        hashes[name] = hashlib.sha256(blob).hexdigest()
    return {"arrays": arrays, "mirror": mirror.as_uri() + "/", "hashes": hashes}


def test_mnist_constants_are_complete():
    names = {
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    }
    assert set(data.MNIST_SHA256) == names
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in data.MNIST_SHA256.values())


def test_default_mnist_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.default_mnist_dir() == tmp_path / "home" / ".cache" / "bpkit" / "mnist"
    monkeypatch.setenv("BPKIT_DATA", str(tmp_path / "shared"))
    assert data.default_mnist_dir() == tmp_path / "shared" / "mnist"


def test_load_mnist_downloads_verifies_and_caches(monkeypatch, tmp_path, tiny_mnist):
    dead = (tmp_path / "dead-mirror").as_uri() + "/"
    # The first mirror is unreachable: load_mnist must fall back to the second.
    monkeypatch.setattr(data, "MNIST_MIRRORS", (dead, tiny_mnist["mirror"]))
    monkeypatch.setattr(data, "MNIST_SHA256", tiny_mnist["hashes"])
    cache = tmp_path / "cache"
    X_train, y_train, X_test, y_test = load_mnist(cache_dir=cache)

    arrays = tiny_mnist["arrays"]
    assert X_train.shape == (5, 9) and X_train.dtype == np.float64
    assert X_test.shape == (2, 9) and y_test.dtype == np.int64
    np.testing.assert_array_equal(X_train, arrays["train-images-idx3-ubyte.gz"].reshape(5, 9))
    np.testing.assert_array_equal(X_test, arrays["t10k-images-idx3-ubyte.gz"].reshape(2, 9))
    assert y_train.tolist() == [3, 1, 4, 1, 5] and y_test.tolist() == [9, 2]
    assert sorted(p.name for p in cache.iterdir()) == sorted(tiny_mnist["hashes"])  # no .part leftovers

    # Second call: every mirror gone, the verified cache is enough.
    monkeypatch.setattr(data, "MNIST_MIRRORS", (dead,))
    again = load_mnist(cache_dir=cache)
    np.testing.assert_array_equal(again[0], X_train)


def test_load_mnist_uses_bpkit_data(monkeypatch, tmp_path, tiny_mnist):
    monkeypatch.setattr(data, "MNIST_MIRRORS", (tiny_mnist["mirror"],))
    monkeypatch.setattr(data, "MNIST_SHA256", tiny_mnist["hashes"])
    monkeypatch.setenv("BPKIT_DATA", str(tmp_path / "shared"))
    load_mnist()
    assert (tmp_path / "shared" / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()


def test_load_mnist_checksum_mismatch_keeps_nothing(monkeypatch, tmp_path, tiny_mnist):
    hashes = dict(tiny_mnist["hashes"])
    wrong = "0" * 64
    good = hashes["train-labels-idx1-ubyte.gz"]
    hashes["train-labels-idx1-ubyte.gz"] = wrong
    monkeypatch.setattr(data, "MNIST_MIRRORS", (tiny_mnist["mirror"],))
    monkeypatch.setattr(data, "MNIST_SHA256", hashes)
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumMismatchError) as info:
        load_mnist(cache_dir=cache)
    message = str(info.value)
    assert "train-labels-idx1-ubyte.gz" in message
    assert wrong in message and good in message  # expected and received hashes
    assert not (cache / "train-labels-idx1-ubyte.gz").exists()
    assert not any(p.name.endswith(".part") for p in cache.iterdir())


def test_load_mnist_refuses_a_bad_cached_file_without_deleting_it(monkeypatch, tmp_path, tiny_mnist):
    monkeypatch.setattr(data, "MNIST_MIRRORS", (tiny_mnist["mirror"],))
    monkeypatch.setattr(data, "MNIST_SHA256", tiny_mnist["hashes"])
    cache = tmp_path / "cache"
    cache.mkdir()
    bad = cache / "train-images-idx3-ubyte.gz"
    bad.write_bytes(b"not mnist")
    with pytest.raises(ChecksumMismatchError, match="delete it") as info:
        load_mnist(cache_dir=cache)
    assert str(bad) in str(info.value)
    assert hashlib.sha256(b"not mnist").hexdigest() in str(info.value)
    assert bad.read_bytes() == b"not mnist"


def test_load_mnist_offline_message_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "MNIST_MIRRORS", ((tmp_path / "nowhere").as_uri() + "/",))
    cache = tmp_path / "cache"
    with pytest.raises(MNISTUnavailableError) as info:
        load_mnist(cache_dir=cache)
    assert isinstance(info.value, OSError)
    message = str(info.value)
    assert str(cache) in message
    assert "load_digits" in message
    for name in data.MNIST_SHA256:
        assert name in message
    assert list(cache.iterdir()) == []


def test_load_mnist_offline_when_urlopen_fails(monkeypatch, tmp_path):
    def refuse(url, timeout=None):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(data.urllib.request, "urlopen", refuse)
    monkeypatch.setattr(data, "MNIST_MIRRORS", ("https://example.invalid/mnist/",))
    with pytest.raises(MNISTUnavailableError, match="name resolution") as info:
        load_mnist(cache_dir=tmp_path / "c")
    assert str(tmp_path / "c") in str(info.value) and "load_digits" in str(info.value)


def test_mnist_and_its_checksum_error_are_os_errors():
    assert issubclass(MNISTUnavailableError, OSError)
    assert issubclass(ChecksumMismatchError, MNISTUnavailableError)
    assert Path(data.default_mnist_dir()).name == "mnist"
