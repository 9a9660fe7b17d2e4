"""The training loop: minibatch gradient descent with history, progress bar, divergence check and early stopping.

One step of `fit`, for each minibatch (X_b, y_b):

    1. out = model.forward(X_b)          # forward pass
    2. L = loss.forward(out, y_b)        # scalar loss, mean over the batch
    3. dout = loss.backward()            # dL/dout
    4. model.backward(dout)              # backprop: fills every parameter's .grad
    5. optimizer.step()                  # update the parameters from their .grad
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from bpkit.losses import BCEWithLogitsLoss, SoftmaxCrossEntropy
from bpkit.metrics import accuracy

__all__ = ["EarlyStopping", "History", "TrainingDiverged", "fit", "evaluate", "predict", "train_classifier"]

# Rows per forward pass in evaluate/predict: bounds memory on big sets (MNIST) without changing results.
_EVAL_CHUNK = 4096


class TrainingDiverged(FloatingPointError):
    """The training loss became NaN or infinite: the steps were too large (or the inputs unscaled)."""

    def __init__(self, epoch: int, batch: int, n_batches: int, loss_value: float, lr: float | None):
        self.epoch = epoch  # 1-based, as printed
        self.batch = batch  # 1-based within the epoch
        self.loss_value = loss_value
        self.lr = lr
        lr_text = (
            f"The optimizer's learning rate was {lr:g}; try a smaller one (e.g. {lr / 10:g})"
            if lr
            else ("Try a smaller learning rate")
        )
        super().__init__(
            f"Training diverged: the loss became {loss_value} at epoch {epoch}, batch {batch} of {n_batches}. "
            f"{lr_text}, and check that the inputs are standardised (mean 0, std 1)."
        )


@dataclass
class EarlyStopping:
    """Stop when the validation loss has not improved for `patience` epochs in a row."""

    patience: int  # epochs without a new lowest val loss that we tolerate before stopping
    restore_best: bool = True  # put back the parameters of the best epoch when training ends

    def __post_init__(self) -> None:
        if isinstance(self.patience, bool) or not isinstance(self.patience, (int, np.integer)) or self.patience < 1:
            raise ValueError(f"EarlyStopping: patience must be an integer >= 1, got {self.patience!r}")


@dataclass
class History:
    """What happened during `fit`, one entry per epoch run (lists are indexed from 0)."""

    train_loss: list[float] = field(default_factory=list)  # mean over the epoch's batches, weighted by size
    val_loss: list[float] = field(default_factory=list)  # empty when fit had no val set
    train_accuracy: list[float] = field(default_factory=list)  # empty unless classification
    val_accuracy: list[float] = field(default_factory=list)
    stopped_early: bool = False
    restored_best: bool = False  # parameters were reset to those of best_epoch

    @property
    def epochs(self) -> int:
        """Number of epochs actually run."""
        return len(self.train_loss)

    @property
    def best_epoch(self) -> int | None:
        """Index (0-based) of the epoch with the lowest validation loss (training loss without val)."""
        losses = self.val_loss if self.val_loss else self.train_loss
        return int(np.argmin(losses)) if losses else None

    def __repr__(self) -> str:
        parts = [f"epochs={self.epochs}", f"best_epoch={self.best_epoch}"]
        for name in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
            values = getattr(self, name)
            if values:
                parts.append(f"{name}={values[-1]:.4f}")
        if self.stopped_early:
            parts.append("stopped_early=True")
        return f"History({', '.join(parts)})"

    def plot(self, title: str | None = None):
        """Loss curves (left) and, for classification, accuracy curves (right); returns the Figure.

        The figure is closed in pyplot, so a notebook shows it once when it is the value of the
        last line of a cell (or call `fig.savefig(path)`).
        """
        import matplotlib.pyplot as plt

        has_accuracy = bool(self.train_accuracy or self.val_accuracy)
        ncols = 2 if has_accuracy else 1
        fig, axes = plt.subplots(1, ncols, figsize=(4.5 * ncols, 3.2), squeeze=False)
        epochs = np.arange(1, self.epochs + 1)  # 1-based on the x axis, as people count epochs
        ax = axes[0, 0]
        ax.plot(epochs, self.train_loss, label="train")
        if self.val_loss:
            ax.plot(epochs, self.val_loss, label="validation")
        if self.best_epoch is not None and self.val_loss:
            ax.axvline(self.best_epoch + 1, color="grey", linestyle=":", label="best epoch")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_title("loss")
        ax.legend()
        if has_accuracy:
            ax = axes[0, 1]
            if self.train_accuracy:
                ax.plot(epochs, self.train_accuracy, label="train")
            if self.val_accuracy:
                ax.plot(epochs, self.val_accuracy, label="validation")
            ax.set_xlabel("epoch")
            ax.set_ylabel("accuracy")
            ax.set_title("accuracy")
            ax.legend()
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        plt.close(fig)  # keep pyplot from showing it a second time in notebooks
        return fig


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------


def _as_inputs(X: Any, name: str) -> np.ndarray:
    """X as a float array with one row per sample."""
    X = np.asarray(X)
    if X.ndim == 0:
        raise ValueError(f"{name} must be an array with one row per sample, got a scalar")
    if X.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold numbers, got dtype {X.dtype}")
    if X.dtype.kind != "f":
        X = X.astype(np.float64)  # raw integer pixels etc.: the layers work in floating point
    return X


def _check_pair(X: Any, y: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets of equal length."""
    X = _as_inputs(X, f"{name} X")
    y = np.asarray(y)
    if y.ndim == 0:
        raise ValueError(f"{name} y must be an array with one target per row of X, got a scalar")
    if len(X) != len(y):
        raise ValueError(
            f"{name}: X has {len(X)} rows but y has {len(y)} targets; pass one target per row of X "
            "(did you split X and y differently?)"
        )
    if len(X) == 0:
        raise ValueError(f"{name}: X and y are empty; pass at least one sample")
    return X, y


def _positive_int(value: Any, name: str, advice: str) -> int:
    """An integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__}); {advice}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}; {advice}")
    return int(value)


def _early_stopping(value: Any) -> EarlyStopping | None:
    """Accept None, an int patience, or an EarlyStopping."""
    if value is None or isinstance(value, EarlyStopping):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return EarlyStopping(patience=int(value))
    raise TypeError(f"early_stopping must be None, a patience like 5, or EarlyStopping(patience=5), got {value!r}")


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


def _accuracy(out: np.ndarray, y: np.ndarray, loss: Any) -> float | None:
    """Fraction correct, or None when the task is not classification.

    Binary (BCEWithLogitsLoss): the model outputs a logit and predicts 1 where it is > 0.
    Multi-class: integer labels and one output column per class, predicted class = argmax.
    """
    if isinstance(loss, BCEWithLogitsLoss):
        predicted = (out > 0).reshape(len(out), -1)  # logit > 0  <=>  probability > 0.5
        target = (np.asarray(y) > 0.5).reshape(len(out), -1)
        if predicted.shape != target.shape:
            return None
        return accuracy(predicted.ravel(), target.ravel())  # every output is its own yes/no label
    is_int_labels = y.ndim == 1 and y.dtype.kind in "iu"
    if is_int_labels and out.ndim == 2 and out.shape[1] > 1:
        return accuracy(out, y)  # predicted class = highest score
    return None


def _is_classification(y: np.ndarray, loss: Any) -> bool:
    """Whether accuracy makes sense for these targets and this loss."""
    if isinstance(loss, BCEWithLogitsLoss):
        return True
    return y.ndim == 1 and y.dtype.kind in "iu"


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def predict(model: Any, X: np.ndarray) -> np.ndarray:
    """Model outputs (N, D_out) in eval mode (dropout off), e.g. logits; `.argmax(axis=1)` gives classes.

    Leaves the model in eval mode; `fit` switches it back to train mode itself.
    """
    X = _as_inputs(X, "X")
    model.eval()
    chunks = [model.forward(X[start : start + _EVAL_CHUNK]) for start in range(0, len(X), _EVAL_CHUNK)]
    return np.concatenate(chunks, axis=0)  # (N, D_out)


def evaluate(model: Any, loss: Any, X: np.ndarray, y: np.ndarray) -> tuple[float, float | None]:
    """(mean loss, accuracy or None) of the model on (X, y) in eval mode; parameters are not changed."""
    X, y = _check_pair(X, y, "evaluate")
    model.eval()
    total_loss = 0.0
    outputs = []
    for start in range(0, len(X), _EVAL_CHUNK):
        out = model.forward(X[start : start + _EVAL_CHUNK])
        # The loss is a mean over its rows, so weighting each chunk by its size gives the overall mean.
        total_loss += float(loss.forward(out, y[start : start + _EVAL_CHUNK])) * len(out)
        outputs.append(out)
    out = np.concatenate(outputs, axis=0)
    return total_loss / len(X), _accuracy(out, y, loss)


def fit(
    model: Any,
    loss: Any,
    optimizer: Any,
    X: np.ndarray,
    y: np.ndarray,
    epochs: int,
    batch_size: int,
    rng: np.random.Generator,
    val: tuple[np.ndarray, np.ndarray] | None = None,
    progress: bool = True,
    early_stopping: int | EarlyStopping | None = None,
    lr_schedule: Callable[[int], float] | None = None,
) -> History:
    """Train `model` by minibatch gradient descent and return its History.

    Each epoch shuffles the rows with `rng` and walks through them in batches of `batch_size`
    (the last batch may be smaller). Training loss/accuracy are averaged over the epoch's batches
    (while the weights were still changing); validation is measured after the epoch in eval mode.
    `early_stopping` (patience or EarlyStopping) watches the validation loss. `lr_schedule(epoch)`,
    with epochs counted from 0, sets `optimizer.lr` before each epoch. Raises TrainingDiverged
    when the loss becomes NaN or infinite.
    """
    # 1. Check the inputs before doing any work.
    X, y = _check_pair(X, y, "fit")
    epochs = _positive_int(epochs, "epochs", "pass how many passes over the data to make, e.g. epochs=20")
    batch_size = _positive_int(batch_size, "batch_size", "pass how many samples per step, e.g. batch_size=32")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy Generator, got {type(rng).__name__}; pass rng=np.random.default_rng(<seed>) "
            "so the shuffling is reproducible"
        )
    if val is not None:
        if not isinstance(val, (tuple, list)) or len(val) != 2:
            raise TypeError("val must be a pair (X_val, y_val), or None")
        X_val, y_val = _check_pair(val[0], val[1], "val")
        if X_val.shape[1:] != X.shape[1:]:
            raise ValueError(
                f"val X rows have shape {X_val.shape[1:]} but training X rows have shape {X.shape[1:]}; "
                "preprocess both the same way"
            )
    stopper = _early_stopping(early_stopping)
    if stopper is not None and val is None:
        raise ValueError("early_stopping watches the validation loss: pass val=(X_val, y_val) as well")
    if lr_schedule is not None:
        if not callable(lr_schedule):
            raise TypeError(
                f"lr_schedule must be a function of the epoch (from 0) giving the learning rate, e.g. "
                f"lambda epoch: 0.01 * 0.9**epoch; got {type(lr_schedule).__name__}"
            )
        if not hasattr(optimizer, "lr"):
            raise TypeError(f"lr_schedule sets optimizer.lr, but {type(optimizer).__name__} has no lr attribute")

    history = History()
    classification = _is_classification(y, loss)
    n = len(X)
    n_batches = math.ceil(n / batch_size)
    params = model.parameters()
    best_val = math.inf
    best_params: list[np.ndarray] | None = None
    epochs_without_improvement = 0

    bar = tqdm(range(epochs), desc="fit", unit="epoch", disable=not progress, leave=True)
    try:
        for epoch in bar:
            # 2. One pass over the shuffled training data.
            if lr_schedule is not None:
                optimizer.lr = lr_schedule(epoch)
            model.train()
            order = rng.permutation(n)
            loss_sum = 0.0
            correct = 0.0
            for b in range(n_batches):
                idx = order[b * batch_size : (b + 1) * batch_size]
                X_b, y_b = X[idx], y[idx]  # (B, D_in), (B, ...)
                # Overflow along the way is reported by the finiteness check below, in plain words.
                with np.errstate(over="ignore", invalid="ignore"):
                    out = model.forward(X_b)
                    batch_loss = float(loss.forward(out, y_b))
                    if not math.isfinite(batch_loss):
                        raise TrainingDiverged(epoch + 1, b + 1, n_batches, batch_loss, getattr(optimizer, "lr", None))
                    dout = loss.backward()  # dL/dout, (B, D_out)
                    model.backward(dout)  # fills every parameter's .grad
                    optimizer.step()
                loss_sum += batch_loss * len(idx)  # weight by batch size: the last batch may be smaller
                if classification:
                    batch_accuracy = _accuracy(out, y_b, loss)
                    if batch_accuracy is None:
                        classification = False  # e.g. integer targets with a single regression output
                    else:
                        correct += batch_accuracy * len(idx)
            history.train_loss.append(loss_sum / n)
            if classification:
                history.train_accuracy.append(correct / n)

            # 3. Validation in eval mode (dropout off).
            postfix = {"loss": f"{history.train_loss[-1]:.4f}"}
            if val is not None:
                val_loss, val_accuracy = evaluate(model, loss, X_val, y_val)
                history.val_loss.append(val_loss)
                postfix["val_loss"] = f"{val_loss:.4f}"
                if val_accuracy is not None:
                    history.val_accuracy.append(val_accuracy)
                    postfix["val_acc"] = f"{val_accuracy:.3f}"
            elif history.train_accuracy:
                postfix["acc"] = f"{history.train_accuracy[-1]:.3f}"
            bar.set_postfix(postfix, refresh=False)

            # 4. Early stopping on the validation loss.
            if stopper is not None:
                if val_loss < best_val:
                    best_val = val_loss
                    epochs_without_improvement = 0
                    if stopper.restore_best:
                        best_params = [p.data.copy() for p in params]
                else:
                    epochs_without_improvement += 1
                    if epochs_without_improvement >= stopper.patience:
                        history.stopped_early = True
                        break
    finally:
        bar.close()

    restore = stopper is not None and stopper.restore_best and best_params is not None
    if restore and history.best_epoch != history.epochs - 1:
        for p, saved in zip(params, best_params):
            p.data[...] = saved  # in place: the optimizer keeps references to these arrays
        history.restored_best = True
    model.eval()  # ready for predict/evaluate; fit switches back to train mode itself
    return history


def train_classifier(
    model: Any,
    optimizer: Any,
    X: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    rng: np.random.Generator,
    val: tuple[np.ndarray, np.ndarray] | None = None,
    batch_size: int = 32,
    lr_schedule: Callable[[int], float] | None = None,
    early_stopping: int | EarlyStopping | None = None,
) -> History:
    """Train a classifier of integer labels y (N,) with softmax cross-entropy, quietly; returns its History.

    This is `fit` with the settings every digits lesson uses (SoftmaxCrossEntropy, batches of 32,
    no progress bar); the lesson chooses the model, the optimizer, the data and `rng`, which
    shuffles the batches.
    """
    return fit(
        model,
        SoftmaxCrossEntropy(),
        optimizer,
        X,
        y,
        epochs=epochs,
        batch_size=batch_size,
        rng=rng,
        val=val,
        progress=False,
        early_stopping=early_stopping,
        lr_schedule=lr_schedule,
    )
