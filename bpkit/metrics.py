"""Classification metrics: accuracy and the confusion matrix."""

from __future__ import annotations

import numpy as np

__all__ = ["accuracy", "confusion_matrix"]


def _as_labels(pred: np.ndarray, who: str) -> np.ndarray:
    """Integer labels (N,) from labels (N,) or from scores/logits (N, C) via argmax."""
    pred = np.asarray(pred)
    if pred.ndim == 2:
        if pred.shape[1] == 1:
            raise ValueError(
                f"{who}: pred has shape {pred.shape}, one column has no argmax; for binary logits "
                "pass labels instead, e.g. (pred[:, 0] > 0).astype(int)"
            )
        return pred.argmax(axis=1)  # (N,)
    if pred.ndim != 1:
        raise ValueError(f"{who}: pred must be labels (N,) or logits (N, C), got shape {pred.shape}")
    return _whole_numbers(pred, who, "pred")


def _whole_numbers(y: np.ndarray, who: str, name: str) -> np.ndarray:
    """y (N,) as integers; floats are accepted when they hold whole numbers."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{who}: {name} must be a 1-D array of labels (N,), got shape {y.shape}")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError(f"{who}: {name} must hold class labels (whole numbers)")
        return y.astype(np.intp)
    if y.dtype.kind not in "iub":
        raise TypeError(f"{who}: {name} must hold integer labels, got dtype {y.dtype}")
    return y


def accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    """Fraction of samples whose predicted class equals y; pred is logits (N, C) or labels (N,)."""
    labels = _as_labels(pred, "accuracy")
    y = _whole_numbers(y, "accuracy", "y")
    if labels.shape != y.shape:
        raise ValueError(f"accuracy: pred has {labels.shape[0]} samples but y has {y.shape[0]}; expected equal")
    if y.size == 0:
        raise ValueError("accuracy: no samples")
    return float(np.mean(labels == y))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """Counts (C, C): entry [i, j] = number of samples of true class i predicted as class j.

    y_pred may be labels (N,) or logits (N, C). C is n_classes, or else 1 + the largest
    label seen. The diagonal holds the correct predictions.
    """
    y_true = _whole_numbers(y_true, "confusion_matrix", "y_true")
    y_pred = _as_labels(y_pred, "confusion_matrix")
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"confusion_matrix: y_true has shape {y_true.shape} but y_pred has {y_pred.shape}; expected equal"
        )
    if y_true.size and min(y_true.min(), y_pred.min()) < 0:
        raise ValueError("confusion_matrix: labels must be >= 0")
    seen = int(max(y_true.max(), y_pred.max())) + 1 if y_true.size else 0
    if n_classes is None:
        n_classes = seen
    elif n_classes < seen:
        raise ValueError(f"confusion_matrix: n_classes={n_classes} but a label {seen - 1} occurs")
    # Each (true, pred) pair becomes one index true * C + pred of a flattened C x C table.
    counts = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes).astype(np.int64)
