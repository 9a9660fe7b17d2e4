"""Tests for bpkit.metrics: accuracy and confusion matrix."""

from __future__ import annotations

import numpy as np
import pytest

from bpkit.metrics import accuracy, confusion_matrix


def test_accuracy_from_logits_and_from_labels():
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 5.0], [1.0, 0.0, 0.0]])  # argmax 0, 1, 2, 0
    y = np.array([0, 1, 1, 0])
    assert accuracy(logits, y) == 0.75
    assert accuracy(np.array([0, 1, 2, 0]), y) == 0.75
    assert accuracy(np.array([0.0, 1.0, 1.0, 0.0]), y) == 1.0  # whole-number floats are labels


def test_accuracy_errors():
    with pytest.raises(ValueError, match=r"one column has no argmax"):
        accuracy(np.zeros((4, 1)), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="pred has 3 samples but y has 4"):
        accuracy(np.zeros((3, 2)), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="no samples"):
        accuracy(np.zeros(0, dtype=int), np.zeros(0, dtype=int))


def test_confusion_matrix_rows_are_true_classes():
    y_true = np.array([0, 0, 1, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 2])
    cm = confusion_matrix(y_true, y_pred)
    expected = np.array(
        [
            [1, 1, 0],  # true 0: once right, once called 1
            [0, 2, 1],  # true 1: twice right, once called 2
            [0, 0, 1],  # true 2: right
        ]
    )
    np.testing.assert_array_equal(cm, expected)
    assert cm.dtype.kind == "i"
    assert cm.sum() == len(y_true) and np.trace(cm) == 4


def test_confusion_matrix_n_classes_and_logits():
    cm = confusion_matrix(np.array([0, 1]), np.array([[3.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]), n_classes=4)
    assert cm.shape == (4, 4)
    assert cm[0, 0] == 1 and cm[1, 3] == 1 and cm.sum() == 2
    with pytest.raises(ValueError, match="n_classes=2 but a label 3 occurs"):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), n_classes=2)
    with pytest.raises(ValueError, match=r"y_true has shape \(2,\) but y_pred has \(3,\)"):
        confusion_matrix(np.array([0, 1]), np.array([0, 1, 1]))
