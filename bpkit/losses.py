"""Loss functions: `forward(pred, target) -> float` (a mean), `backward() -> dpred = dL/dpred`.

`backward` returns an array shaped and typed like `pred` (float32 stays float32) and reads
what the last `forward` cached. All three are computed so that logits of magnitude 1e3 give
finite values and no overflow warnings.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MSELoss", "BCEWithLogitsLoss", "SoftmaxCrossEntropy"]


def _as_float_array(pred: np.ndarray, who: str) -> np.ndarray:
    """pred as a floating-point array (integers are promoted to float64)."""
    pred = np.asarray(pred)
    if pred.dtype.kind not in "fiub":
        raise TypeError(f"{who}: pred must hold numbers, got dtype {pred.dtype}")
    if pred.dtype.kind != "f":
        pred = pred.astype(np.float64)
    if pred.size == 0:
        raise ValueError(f"{who}: pred is empty; pass at least one sample")
    return pred


def _matching_target(pred: np.ndarray, target: np.ndarray, who: str) -> np.ndarray:
    """target with pred's shape and dtype; a (N,) target is accepted for a (N, 1) pred."""
    target = np.asarray(target)
    if target.dtype.kind not in "fiub":
        raise TypeError(f"{who}: target must hold numbers, got dtype {target.dtype}")
    if target.shape != pred.shape:
        if pred.ndim == 2 and pred.shape[1] == 1 and target.shape == (pred.shape[0],):
            target = target.reshape(-1, 1)  # one output column and a flat target: same thing
        else:
            raise ValueError(
                f"{who}: target must have the shape of pred {pred.shape}, got {target.shape}; "
                "reshape it (e.g. y.reshape(-1, 1)) so they line up element by element"
            )
    return target.astype(pred.dtype, copy=False)  # keep float32 predictions in float32


class MSELoss:
    """Mean squared error over all elements: L = mean((pred - target)^2); pred, target any equal shape."""

    def __init__(self) -> None:
        self._diff: np.ndarray | None = None

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        """Mean of the squared differences."""
        pred = _as_float_array(pred, "MSELoss")
        target = _matching_target(pred, target, "MSELoss")
        self._diff = pred - target
        return float(np.mean(self._diff * self._diff))

    def backward(self) -> np.ndarray:
        """dL/dpred = 2 (pred - target) / number of elements."""
        if self._diff is None:
            raise RuntimeError("MSELoss.backward() called before forward(pred, target)")
        return self._diff * (2.0 / self._diff.size)

    def __call__(self, pred: np.ndarray, target: np.ndarray) -> float:
        return self.forward(pred, target)

    def __repr__(self) -> str:
        return "MSELoss()"


class BCEWithLogitsLoss:
    """Binary cross-entropy on logits z (sigmoid inside), mean over all elements; targets in [0, 1].

    L = mean(-(y log s + (1 - y) log(1 - s))) with s = sigmoid(z), rewritten as
    mean(max(z, 0) - z y + log(1 + e^-|z|)), which never exponentiates a large number.
    """

    def __init__(self) -> None:
        self._z: np.ndarray | None = None
        self._y: np.ndarray | None = None

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        """Mean binary cross-entropy of logits pred against targets in [0, 1]."""
        z = _as_float_array(pred, "BCEWithLogitsLoss")
        y = _matching_target(z, target, "BCEWithLogitsLoss")
        if np.any(y < 0) or np.any(y > 1):
            raise ValueError("BCEWithLogitsLoss: targets must lie in [0, 1] (labels 0 and 1 or probabilities)")
        self._z, self._y = z, y
        # log(1 + e^-|z|) is between 0 and log 2: no overflow, and log1p keeps precision near 0.
        losses = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
        return float(np.mean(losses))

    def backward(self) -> np.ndarray:
        """dL/dz = (sigmoid(z) - y) / number of elements."""
        if self._z is None:
            raise RuntimeError("BCEWithLogitsLoss.backward() called before forward(pred, target)")
        z, y = self._z, self._y
        e = np.exp(-np.abs(z))  # in (0, 1]
        s = np.where(z >= 0, 1.0, e) / (1.0 + e)  # stable sigmoid(z)
        return (s - y) * (1.0 / z.size)

    def __call__(self, pred: np.ndarray, target: np.ndarray) -> float:
        return self.forward(pred, target)

    def __repr__(self) -> str:
        return "BCEWithLogitsLoss()"


class SoftmaxCrossEntropy:
    """Softmax followed by cross-entropy, mean over the batch: logits (N, C), integer labels (N,).

    L = mean_i(-log softmax(z_i)[y_i]) = mean_i(logsumexp(z_i) - z_i[y_i]). Subtracting each
    row's maximum before exponentiating (log-sum-exp trick) keeps every e^... <= 1.
    """

    def __init__(self) -> None:
        self._probs: np.ndarray | None = None
        self._y: np.ndarray | None = None
        self._rows: np.ndarray | None = None  # np.arange(N), to pick each row's label column

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        """Mean negative log-probability of the correct class."""
        z = _as_float_array(pred, "SoftmaxCrossEntropy")
        if z.ndim != 2:
            raise ValueError(
                f"SoftmaxCrossEntropy expects logits of shape (N, C), got {z.shape}; one row of class scores per sample"
            )
        y = self._labels(target, z.shape)
        n = z.shape[0]
        rows = np.arange(n)
        shifted = z - z.max(axis=1, keepdims=True)  # (N, C), every entry <= 0
        correct = shifted[rows, y]  # (N,) shifted logit of the right class
        exp = np.exp(shifted, out=shifted)  # speed: in place, shifted is not needed any more; in (0, 1]
        sum_exp = exp.sum(axis=1)  # (N,), >= 1 (the max entry contributes e^0 = 1)
        # -log softmax(z)[y] = log(sum_j e^(z_j - m)) - (z_y - m), averaged over the batch
        loss = (np.log(sum_exp) - correct).sum() / n  # speed: sum / n has less overhead than np.mean
        exp /= sum_exp[:, None]  # speed: turn exp into softmax probabilities in place
        self._probs, self._y, self._rows = exp, y, rows
        return float(loss)

    def backward(self) -> np.ndarray:
        """dL/dz = (softmax(z) - onehot(y)) / N, shape (N, C)."""
        if self._probs is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward() called before forward(logits, labels)")
        n = self._probs.shape[0]
        # (softmax - onehot) / N, written as softmax / N - onehot / N
        dz = self._probs * (1.0 / n)  # speed: a new array, so probs need no defensive copy
        dz[self._rows, self._y] -= 1.0 / n  # minus onehot(y) / N
        return dz

    @staticmethod
    def _labels(target: np.ndarray, logits_shape: tuple[int, int]) -> np.ndarray:
        """Integer class labels (N,) with values in [0, C)."""
        n, c = logits_shape
        y = np.asarray(target)
        if y.shape != (n,):
            hint = " (one-hot labels? use y.argmax(axis=1))" if y.shape == (n, c) else ""
            raise ValueError(
                f"SoftmaxCrossEntropy expects integer labels of shape (N,) = ({n},) for logits of "
                f"shape {logits_shape}, got {y.shape}{hint}"
            )
        if y.dtype.kind == "f":
            if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
                raise ValueError("SoftmaxCrossEntropy: labels must be whole numbers (class indices)")
            y = y.astype(np.intp)
        elif y.dtype.kind not in "iub":
            raise TypeError(f"SoftmaxCrossEntropy: labels must be integers, got dtype {y.dtype}")
        if n and (y.min() < 0 or y.max() >= c):
            raise ValueError(
                f"SoftmaxCrossEntropy: labels must lie in [0, {c - 1}] for {c} classes, "
                f"got values from {y.min()} to {y.max()}"
            )
        return y

    def __call__(self, pred: np.ndarray, target: np.ndarray) -> float:
        return self.forward(pred, target)

    def __repr__(self) -> str:
        return "SoftmaxCrossEntropy()"
