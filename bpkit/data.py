"""Datasets for the course: seeded toy problems, the shipped 8x8 digits, and MNIST (downloaded once).

Every generator takes `rng: np.random.Generator` explicitly and returns `(X, y)` with X float64
of shape (n, 2); classification labels are int64, house prices float64.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = [
    "make_moons",
    "make_spirals",
    "make_xor",
    "make_house_prices",
    "train_test_split",
    "Standardiser",
    "standardiser",
    "load_digits",
    "load_mnist",
    "read_idx",
    "default_mnist_dir",
    "MNISTUnavailableError",
    "ChecksumMismatchError",
]


def _check_rng(rng: object, fn: str) -> np.random.Generator:
    """Refuse a missing or legacy rng: every random draw in the course is seeded explicitly."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{fn} needs rng=np.random.default_rng(<seed>) (a numpy Generator), got {type(rng).__name__}: "
            "pass one explicitly so the data is reproducible"
        )
    return rng


def _check_n(n: object, fn: str, minimum: int = 1) -> int:
    """Accept an integer sample count of at least `minimum`."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < minimum:
        raise ValueError(f"{fn}: n must be an integer >= {minimum}, got {n!r}")
    return int(n)


def _check_noise(noise: object, fn: str) -> float:
    """Accept a finite, non-negative noise level."""
    if not isinstance(noise, (int, float, np.floating, np.integer)) or not np.isfinite(noise) or noise < 0:
        raise ValueError(f"{fn}: noise must be a finite number >= 0, got {noise!r}")
    return float(noise)


# ---------------------------------------------------------------------------------------------
# Toy problems
# ---------------------------------------------------------------------------------------------


def make_moons(
    n: int = 200, noise: float = 0.1, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles: X (n, 2) float64, y (n,) int64 in {0, 1}, rows shuffled.

    Class 0 is the upper arc (cos t, sin t), class 1 the lower arc (1 - cos t, 0.5 - sin t),
    t evenly spaced in [0, pi]; Gaussian noise of std `noise` is added to both coordinates.
    """
    n = _check_n(n, "make_moons", minimum=2)
    noise = _check_noise(noise, "make_moons")
    rng = _check_rng(rng, "make_moons")
    n_upper = n // 2
    n_lower = n - n_upper
    t_upper = np.linspace(0.0, np.pi, n_upper)  # (n_upper,)
    t_lower = np.linspace(0.0, np.pi, n_lower)  # (n_lower,)
    upper = np.column_stack([np.cos(t_upper), np.sin(t_upper)])  # (n_upper, 2)
    lower = np.column_stack([1.0 - np.cos(t_lower), 0.5 - np.sin(t_lower)])  # (n_lower, 2)
    X = np.vstack([upper, lower]) + noise * rng.standard_normal((n, 2))  # (n, 2)
    y = np.concatenate([np.zeros(n_upper, dtype=np.int64), np.ones(n_lower, dtype=np.int64)])
    # Shuffle so that a plain slice (or an unshuffled minibatch) is not all one class.
    order = rng.permutation(n)
    return X[order], y[order]


def make_spirals(
    n: int = 300, n_classes: int = 3, noise: float = 0.2, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """`n_classes` interleaved spiral arms: X (n, 2) float64, y (n,) int64 in 0..n_classes-1, rows shuffled.

    Arm k has radius r evenly spaced in [0, 1] and angle theta = 4k + 4r (+ Gaussian noise of std
    `noise` on the angle), the point being r (sin theta, cos theta); arms get n // n_classes points
    each, the first n % n_classes arms one more. Not linearly separable: a classic task for an MLP.
    """
    n_classes = _check_n(n_classes, "make_spirals (n_classes)", minimum=2)
    n = _check_n(n, "make_spirals", minimum=n_classes)
    noise = _check_noise(noise, "make_spirals")
    rng = _check_rng(rng, "make_spirals")
    X_parts, y_parts = [], []
    for k in range(n_classes):
        m = n // n_classes + (1 if k < n % n_classes else 0)
        r = np.linspace(0.0, 1.0, m)  # (m,)
        theta = 4.0 * k + 4.0 * r + noise * rng.standard_normal(m)  # (m,)
        X_parts.append(np.column_stack([r * np.sin(theta), r * np.cos(theta)]))  # (m, 2)
        y_parts.append(np.full(m, k, dtype=np.int64))
    X = np.vstack(X_parts)  # (n, 2)
    y = np.concatenate(y_parts)  # (n,)
    order = rng.permutation(n)
    return X[order], y[order]


def make_xor(n: int = 200, noise: float = 0.1, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The XOR problem: X (n, 2) float64, y (n,) int64, label 1 where the two coordinates differ in sign.

    Points are drawn uniformly from [-1, 1]^2 and labelled by sign(x0) != sign(x1) (quadrants 2 and 4
    are class 1); then Gaussian noise of std `noise` is added to X, so a few points near the axes
    land on the "wrong" side. No single line separates the classes; one hidden layer does.
    """
    n = _check_n(n, "make_xor")
    noise = _check_noise(noise, "make_xor")
    rng = _check_rng(rng, "make_xor")
    clean = rng.uniform(-1.0, 1.0, size=(n, 2))  # (n, 2)
    y = ((clean[:, 0] > 0) != (clean[:, 1] > 0)).astype(np.int64)  # (n,)
    X = clean + noise * rng.standard_normal((n, 2))  # (n, 2)
    return X, y


def make_house_prices(
    n: int = 200, rng: np.random.Generator | None = None, noise: float = 15.0
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic houses for regression: X (n, 2) = [size in m^2, bedrooms], y (n,) price in thousands.

    The generating rule, which a linear regression on the raw features should recover:

        size     ~ Uniform(40, 220) m^2
        bedrooms = clip(round(size / 40 + Normal(0, 0.7)), 1, 6)   # integer-valued float,
                                                                   # correlated with size
        price    = 50 + 2.5 * size + 10 * bedrooms + Normal(0, noise)   # thousands

    With noise=0 the rule holds exactly. Features are on very different scales (size ~100s,
    bedrooms ~1-6): standardise them before gradient descent.
    """
    n = _check_n(n, "make_house_prices")
    noise = _check_noise(noise, "make_house_prices")
    rng = _check_rng(rng, "make_house_prices")
    size = rng.uniform(40.0, 220.0, size=n)  # (n,)
    bedrooms = np.clip(np.round(size / 40.0 + rng.normal(0.0, 0.7, size=n)), 1.0, 6.0)  # (n,)
    price = 50.0 + 2.5 * size + 10.0 * bedrooms + noise * rng.standard_normal(n)  # (n,)
    X = np.column_stack([size, bedrooms])  # (n, 2)
    return X, price


def train_test_split(
    X: np.ndarray, y: np.ndarray, test_size: float | int = 0.2, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle rows with `rng` and split: returns (X_train, X_test, y_train, y_test).

    `test_size` is a fraction in (0, 1) (the test set gets ceil(test_size * n) rows) or an
    integer row count; both parts must end up non-empty. Rows of X and y stay paired.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    rng = _check_rng(rng, "train_test_split")
    if X.ndim == 0 or y.ndim == 0:
        raise ValueError("train_test_split: X and y must be arrays with one row per sample, not scalars")
    n = len(X)
    if len(y) != n:
        raise ValueError(f"train_test_split: X has {n} rows but y has {len(y)}; pass one label per row of X")
    if isinstance(test_size, bool):
        raise TypeError("train_test_split: test_size must be a fraction like 0.2 or a row count like 50")
    if isinstance(test_size, (int, np.integer)):
        n_test = int(test_size)
    elif isinstance(test_size, (float, np.floating)):
        if not 0.0 < test_size < 1.0:
            raise ValueError(
                f"train_test_split: test_size={test_size!r} as a fraction must lie strictly between 0 and 1 "
                "(e.g. 0.2); pass an int for a row count"
            )
        n_test = int(np.ceil(test_size * n))
    else:
        raise TypeError(
            f"train_test_split: test_size must be a fraction like 0.2 or a row count like 50, "
            f"got {type(test_size).__name__}"
        )
    if not 1 <= n_test <= n - 1:
        raise ValueError(
            f"train_test_split: with {n} samples and test_size={test_size!r} the test set would have "
            f"{n_test} rows and the training set {n - n_test}; both need at least one row"
        )
    order = rng.permutation(n)
    test_idx, train_idx = order[:n_test], order[n_test:]
    return X[train_idx], X[test_idx], y[train_idx], y[test_idx]


@dataclass(frozen=True, eq=False)  # eq would compare arrays elementwise
class Standardiser:
    """Per-feature scaling with fixed statistics: `scale(X)` is (X - mean) / std."""

    mean: np.ndarray  # (D,) of the training rows
    std: np.ndarray  # (D,) of the training rows, 1 where a feature is constant (it is centred, not divided by 0)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """(X - mean) / std for X (N, D): features with mean 0 and std 1 on the training rows."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.mean.shape[0]:
            raise ValueError(
                f"Standardiser: expects rows of {self.mean.shape[0]} features, shape (N, {self.mean.shape[0]}), "
                f"like the training rows; got {X.shape}"
            )
        return (X - self.mean) / self.std


def standardiser(X_train: np.ndarray) -> Standardiser:
    """The Standardiser with the per-feature mean and std of X_train (N, D): apply it to every split.

    Only the training rows set the statistics, so validation and test data are scaled the way
    the model saw its training data and nothing about them leaks into training.
    """
    X_train = np.asarray(X_train)
    if X_train.ndim != 2 or len(X_train) == 0:
        raise ValueError(
            f"standardiser: X_train must be training rows of shape (N, D) with N >= 1, got shape {X_train.shape}"
        )
    if X_train.dtype.kind not in "fiu":
        raise TypeError(f"standardiser: X_train must hold numbers, got dtype {X_train.dtype}")
    std = X_train.std(axis=0)  # (D,)
    return Standardiser(X_train.mean(axis=0), np.where(std > 0, std, 1.0))


# ---------------------------------------------------------------------------------------------
# The 8x8 digits, shipped with the package (see datasets/DIGITS_LICENSE.txt)
# ---------------------------------------------------------------------------------------------

_DIGITS_CACHE: tuple[np.ndarray, np.ndarray] | None = None


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The UCI 8x8 handwritten digits: X (1797, 64) float64 pixels 0..16 (row-major 8x8), y (1797,) int64 0..9.

    Read from the file shipped inside bpkit, so it works offline. Parsed once per process; each
    call returns fresh copies, so changing them cannot affect the next call.
    """
    global _DIGITS_CACHE
    if _DIGITS_CACHE is None:
        source = resources.files("bpkit").joinpath("datasets", "digits.csv.gz")
        with source.open("rb") as raw, gzip.open(raw, "rt") as text:
            table = np.loadtxt(text, delimiter=",", dtype=np.float64)  # (1797, 65)
        X = np.ascontiguousarray(table[:, :64])  # (1797, 64)
        y = table[:, 64].astype(np.int64)  # (1797,)
        _DIGITS_CACHE = (X, y)
    X, y = _DIGITS_CACHE
    return X.copy(), y.copy()


# ---------------------------------------------------------------------------------------------
# MNIST: downloaded on first use, verified, cached on disk
# ---------------------------------------------------------------------------------------------

# SHA-256 of the four original MNIST archives (byte sizes 9,912,422 / 28,881 / 1,648,877 / 4,542).
# Not computed here (this machine is offline): the values were cross-checked by code search against
# several independent public projects that pin the same four digests, including Hugging Face
# datasets' MNIST metadata (which lists them with the byte sizes above) and download scripts for the
# storage.googleapis.com/cvdf-datasets and ossci-datasets mirrors. torchvision pins the MD5s
# f68b3c2d..., d53e105e..., 9fb629c4..., ec29112d... of the same files.
# Tests monkeypatch this table and MNIST_MIRRORS to exercise downloads from local file:// URLs.
MNIST_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

# Tried in order; each file name is appended to the base URL. The yann.lecun.com original now
# refuses automated downloads, so the two mirrors used by TensorFlow and torchvision come first.
MNIST_MIRRORS: tuple[str, ...] = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)

_DOWNLOAD_TIMEOUT_S = 60.0


class MNISTUnavailableError(OSError):
    """MNIST is not in the cache and could not be downloaded (offline, blocked, or mirror down)."""


class ChecksumMismatchError(MNISTUnavailableError):
    """A downloaded or cached MNIST file does not have the expected SHA-256."""


def default_mnist_dir() -> Path:
    """Where MNIST is cached: $BPKIT_DATA/mnist if BPKIT_DATA is set, else ~/.cache/bpkit/mnist."""
    root = os.environ.get("BPKIT_DATA")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "bpkit"
    return base / "mnist"


def _sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download_verified(name: str, expected: str, target: Path) -> None:
    """Fetch `name` from the first mirror that serves it with the right SHA-256; write `target` atomically."""
    failures: list[str] = []
    mismatches: list[str] = []
    for base in MNIST_MIRRORS:
        url = base.rstrip("/") + "/" + name
        # Write to a temporary file in the same folder, then rename: a crash or a bad download
        # never leaves a half-written file under the real name.
        fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=target.parent)
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
                for block in iter(lambda: response.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
            got = digest.hexdigest()
            if got != expected:
                mismatches.append(f"{url}: expected sha256 {expected}, got {got}")
                continue
            os.replace(tmp, target)
            return
        except (OSError, http.client.HTTPException, ValueError) as exc:
            # OSError includes URLError (DNS, refused, HTTP errors) and timeouts; HTTPException a cut
            # connection; ValueError a malformed mirror URL.
            reason = getattr(exc, "reason", exc)
            failures.append(f"{url}: {reason}")
        finally:
            if tmp.exists():
                tmp.unlink()
    if mismatches:
        raise ChecksumMismatchError(
            f"Downloaded {name} but its checksum is wrong, so it was deleted and not cached.\n  "
            + "\n  ".join(mismatches)
            + (("\nOther mirrors failed:\n  " + "\n  ".join(failures)) if failures else "")
            + f"\nTry again later (the download may have been cut short), or put a good copy of {name} "
            f"into {target.parent}."
        )
    source = MNIST_MIRRORS[0] if MNIST_MIRRORS else "an MNIST mirror"
    raise MNISTUnavailableError(
        f"Could not download MNIST file {name} (no network, or the mirrors are down):\n  "
        + "\n  ".join(failures)
        + f"\nTo use MNIST offline, download these four files (e.g. from {source}) on a machine with "
        f"internet access and put them, with these exact names, into {target.parent}:\n  "
        + "\n  ".join(MNIST_SHA256)
        + "\n(set BPKIT_DATA or pass cache_dir= to use another folder). Meanwhile "
        "bpkit.data.load_digits() works offline: 1797 8x8 digits shipped with bpkit."
    )


def _fetch_mnist_file(name: str, cache_dir: Path) -> Path:
    """Path to a verified copy of `name` in `cache_dir`, downloading it on first use."""
    expected = MNIST_SHA256[name]
    target = cache_dir / name
    if target.exists():
        got = _sha256_file(target)
        if got != expected:
            # A file the user put there by hand: say so, but do not delete their file.
            raise ChecksumMismatchError(
                f"The cached file {target} has sha256 {got}, expected {expected}. It is damaged or not the "
                f"original MNIST {name}: delete it and call load_mnist() again to re-download it."
            )
        return target
    _download_verified(name, expected, target)
    return target


def read_idx(source: str | os.PathLike | bytes) -> np.ndarray:
    """Parse an IDX file (the MNIST format), gzipped or raw, from a path or from bytes.

    Layout: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions d, then d big-endian uint32 sizes,
    then the values in C order, big-endian. Returns an array of that shape (native byte order).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        where = "the given bytes"
    else:
        where = os.fspath(source)
        with open(where, "rb") as fh:
            data = fh.read()
    if data[:2] == b"\x1f\x8b":  # gzip magic number
        data = gzip.decompress(data)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{where} is not an IDX file: it must start with two zero bytes, a type code and a rank")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    code, ndim = data[2], data[3]
    if code not in dtypes:
        raise ValueError(f"{where}: unknown IDX type code 0x{code:02X} (expected one of 08, 09, 0B, 0C, 0D, 0E)")
    if ndim == 0:
        raise ValueError(f"{where}: IDX rank is 0; an IDX file needs at least one dimension")
    header_end = 4 + 4 * ndim
    if len(data) < header_end:
        raise ValueError(f"{where}: truncated IDX header ({len(data)} bytes, rank {ndim} needs {header_end})")
    shape = tuple(int(v) for v in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(dtypes[code])
    expected_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    body = len(data) - header_end
    if body != expected_bytes:
        raise ValueError(
            f"{where}: IDX header promises shape {shape} of {dtype.name} ({expected_bytes} bytes) "
            f"but {body} bytes follow; the file is truncated or corrupt"
        )
    values = np.frombuffer(data, dtype=dtype, offset=header_end).reshape(shape)
    return values.astype(dtype.newbyteorder("="))  # native byte order, writeable copy


def load_mnist(
    cache_dir: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST as (X_train (60000, 784), y_train (60000,), X_test (10000, 784), y_test (10000,)).

    X is float64 with raw pixel values 0..255 (28x28 images flattened row-major), y int64 0..9.
    The four original IDX archives are downloaded once (about 11 MB) into `cache_dir` (default:
    `default_mnist_dir()`, i.e. $BPKIT_DATA/mnist or ~/.cache/bpkit/mnist), checked against
    known SHA-256 sums, and read from there afterwards. Raises MNISTUnavailableError (an OSError)
    saying where to put the files when offline.
    """
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_mnist_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MNISTUnavailableError(
            f"Cannot create the MNIST cache folder {folder}: {exc}. Pass cache_dir= (or set BPKIT_DATA) "
            "to a writable folder. bpkit.data.load_digits() works without any download."
        ) from exc
    paths = {name: _fetch_mnist_file(name, folder) for name in MNIST_SHA256}
    arrays = []
    for prefix in ("train", "t10k"):
        images = read_idx(paths[f"{prefix}-images-idx3-ubyte.gz"])  # (N, 28, 28)
        labels = read_idx(paths[f"{prefix}-labels-idx1-ubyte.gz"])  # (N,)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"MNIST {prefix} files in {folder} do not fit together: images {images.shape}, labels "
                f"{labels.shape}; delete them and call load_mnist() again"
            )
        arrays.append(images.reshape(len(images), -1).astype(np.float64))  # (N, 784)
        arrays.append(labels.astype(np.int64))  # (N,)
    X_train, y_train, X_test, y_test = arrays
    return X_train, y_train, X_test, y_test
