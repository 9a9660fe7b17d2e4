"""Tests for bpkit.train: the minibatch loop, history, divergence, early stopping, progress bar."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display in tests

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from bpkit.data import load_digits, make_house_prices, make_moons, standardiser, train_test_split
from bpkit.layers import Dropout, Linear, ReLU, Sequential, mlp
from bpkit.losses import BCEWithLogitsLoss, MSELoss, SoftmaxCrossEntropy
from bpkit.optim import SGD, Adam
from bpkit.train import EarlyStopping, History, TrainingDiverged, evaluate, fit, predict, train_classifier


class RecordingModel:
    """Wraps a real model and records which rows each forward pass saw and in which mode."""

    def __init__(self, model):
        self.model = model
        self.mode = "train"
        self.batches: list[tuple[str, list[int]]] = []  # (mode, row ids in column 0 of x)

    def forward(self, x):
        self.batches.append((self.mode, x[:, 0].astype(int).tolist()))
        return self.model.forward(x)

    __call__ = forward

    def backward(self, dout):
        return self.model.backward(dout)

    def parameters(self):
        return self.model.parameters()

    def train(self):
        self.mode = "train"
        self.model.train()

    def eval(self):
        self.mode = "eval"
        self.model.eval()


class FrozenOptimizer:
    """An optimizer that never moves the parameters (bpkit's optimizers insist on lr > 0)."""

    lr = 0.0

    def step(self) -> None:
        pass


def row_id_regression(n: int) -> tuple[np.ndarray, np.ndarray]:
    """X column 0 is the row number (so a recorder can tell rows apart), y a linear target."""
    X = np.column_stack([np.arange(n, dtype=np.float64), np.ones(n)])  # (n, 2)
    y = (0.1 * X[:, 0] + 1.0).reshape(n, 1)  # (n, 1)
    return X, y


# --------------------------------------------------------------------------- the loop itself


def test_each_epoch_visits_every_row_once_in_shuffled_batches():
    rng = np.random.default_rng(0)
    X, y = row_id_regression(10)
    model = RecordingModel(Linear(2, 1, rng))
    fit(model, MSELoss(), FrozenOptimizer(), X, y, epochs=3, batch_size=4, rng=np.random.default_rng(1), progress=False)
    train_batches = [rows for mode, rows in model.batches if mode == "train"]
    assert [len(rows) for rows in train_batches] == [4, 4, 2] * 3  # the last batch is smaller
    epochs = [sum(train_batches[3 * e : 3 * e + 3], []) for e in range(3)]
    for order in epochs:
        assert sorted(order) == list(range(10))
    assert epochs[0] != epochs[1] and epochs[0] != list(range(10))  # reshuffled every epoch


def test_shuffling_follows_the_rng_seed():
    X, y = row_id_regression(12)
    orders = []
    for _ in range(2):
        model = RecordingModel(Linear(2, 1, np.random.default_rng(0)))
        fit(
            model,
            MSELoss(),
            FrozenOptimizer(),
            X,
            y,
            epochs=2,
            batch_size=5,
            rng=np.random.default_rng(7),
            progress=False,
        )
        orders.append(model.batches)
    assert orders[0] == orders[1]


def test_validation_runs_in_eval_mode_after_each_epoch():
    X, y = row_id_regression(6)
    model = RecordingModel(Linear(2, 1, np.random.default_rng(0)))
    fit(
        model,
        MSELoss(),
        FrozenOptimizer(),
        X,
        y,
        epochs=2,
        batch_size=6,
        rng=np.random.default_rng(0),
        val=(X[:3], y[:3]),
        progress=False,
    )
    assert [mode for mode, _ in model.batches] == ["train", "eval", "train", "eval"]
    assert model.batches[1][1] == [0, 1, 2]


def test_train_loss_is_weighted_by_batch_size():
    # With lr = 0 the parameters never move, so the batch-size-weighted mean of the batch losses
    # must equal the loss on the whole set, even though the last batch (1 row of 10) is smaller.
    rng = np.random.default_rng(0)
    X, y = row_id_regression(10)
    model = Linear(2, 1, rng)
    history = fit(
        model, MSELoss(), FrozenOptimizer(), X, y, epochs=2, batch_size=3, rng=np.random.default_rng(0), progress=False
    )
    full_loss, accuracy = evaluate(model, MSELoss(), X, y)
    assert accuracy is None  # regression: no accuracy
    np.testing.assert_allclose(history.train_loss, [full_loss, full_loss], rtol=1e-12)
    assert history.train_accuracy == [] and history.val_loss == []


def test_fit_is_deterministic():
    X, y = make_moons(100, 0.2, np.random.default_rng(0))
    runs = []
    for _ in range(2):
        rng = np.random.default_rng(3)
        model = mlp(2, [16, 2], rng)
        history = fit(
            model,
            SoftmaxCrossEntropy(),
            Adam(model.parameters(), lr=0.01),
            X,
            y,
            epochs=5,
            batch_size=16,
            rng=rng,
            val=(X, y),
            progress=False,
        )
        runs.append(history)
    assert runs[0].train_loss == runs[1].train_loss
    assert runs[0].val_accuracy == runs[1].val_accuracy


# --------------------------------------------------------------------------- it learns


def test_mlp_learns_moons_above_95_percent():
    rng = np.random.default_rng(0)
    X, y = make_moons(200, 0.1, rng)
    model = mlp(2, [32, 32, 2], rng)
    history = fit(
        model,
        SoftmaxCrossEntropy(),
        Adam(model.parameters(), lr=0.01),
        X,
        y,
        epochs=60,
        batch_size=32,
        rng=rng,
        progress=False,
    )
    assert history.epochs == 60
    assert history.train_loss[-1] < history.train_loss[0]
    loss, accuracy = evaluate(model, SoftmaxCrossEntropy(), X, y)
    assert accuracy > 0.95, f"training accuracy {accuracy:.3f} on moons"
    assert history.train_accuracy[-1] > 0.95


def test_binary_accuracy_with_bce_logits():
    rng = np.random.default_rng(0)
    X, y = make_moons(200, 0.1, rng)
    target = y.astype(np.float64).reshape(-1, 1)  # (N, 1) 0/1 targets for one logit per row
    model = mlp(2, [32, 1], rng)
    history = fit(
        model,
        BCEWithLogitsLoss(),
        Adam(model.parameters(), lr=0.02),
        X,
        target,
        epochs=60,
        batch_size=32,
        rng=rng,
        val=(X, target),
        progress=False,
    )
    logits = predict(model, X)  # (N, 1)
    expected = np.mean((logits[:, 0] > 0) == (y == 1))  # accuracy re-derived from the logits
    assert history.val_accuracy[-1] == pytest.approx(expected)
    assert expected > 0.95


def test_mlp_reaches_97_percent_on_held_out_digits():
    # 64-128-10 ReLU, Adam at its default lr, 20 epochs. Measured on this split (seed 0) with ten
    # other init/shuffle seeds: 97.5-98.3% (worst: 9 wrong of 360; the bar allows 10). Other random
    # splits are harder: over ten split seeds the same recipe averages 97.0% (95.6-98.3%),
    # so the 97% bar holds for this seeded split, not for every split.
    rng = np.random.default_rng(0)
    X, y = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(X, y, 0.2, rng)
    scale = standardiser(X_train)
    X_train, X_test = scale(X_train), scale(X_test)
    model = mlp(64, [128, 10], rng)
    history = fit(
        model,
        SoftmaxCrossEntropy(),
        Adam(model.parameters(), lr=1e-3),
        X_train,
        y_train,
        epochs=20,
        batch_size=32,
        rng=rng,
        val=(X_test, y_test),
        progress=False,
    )
    _, accuracy = evaluate(model, SoftmaxCrossEntropy(), X_test, y_test)
    assert accuracy == history.val_accuracy[-1]
    assert accuracy >= 0.97, f"held-out digits accuracy {accuracy:.4f}"
    assert len(y_test) == 360  # ceil(0.2 * 1797)


# --------------------------------------------------------------------------- divergence


def test_divergence_names_epoch_batch_and_learning_rate():
    # Raw house sizes are ~100 m^2: one SGD step on the squared error multiplies the prediction
    # error by roughly lr * 2 * size^2 ~ 2000 at lr=0.1, so the loss overflows after a few dozen
    # single-sample steps, i.e. inside the first epoch of 200 steps.
    rng = np.random.default_rng(0)
    X, price = make_house_prices(200, rng)
    model = Linear(2, 1, rng)
    optimizer = SGD(model.parameters(), lr=0.1)
    with pytest.raises(TrainingDiverged) as info:
        fit(model, MSELoss(), optimizer, X, price.reshape(-1, 1), epochs=5, batch_size=1, rng=rng, progress=False)
    error = info.value
    assert isinstance(error, FloatingPointError)
    assert error.epoch == 1 and 1 < error.batch <= 200
    message = str(error)
    assert f"epoch 1, batch {error.batch} of 200" in message
    assert "learning rate was 0.1" in message and "smaller" in message


# --------------------------------------------------------------------------- early stopping


def overfitting_problem():
    """A few noisy moons and a wide MLP with a fast optimizer: validation loss turns up early."""
    rng = np.random.default_rng(0)
    X, y = make_moons(60, 0.35, rng)
    X_train, X_val, y_train, y_val = train_test_split(X, y, 0.5, rng)
    model = mlp(2, [128, 128, 2], rng)
    return model, Adam(model.parameters(), lr=0.02), (X_train, y_train), (X_val, y_val), rng


def test_early_stopping_stops_and_restores_best():
    model, optimizer, (X, y), val, rng = overfitting_problem()
    history = fit(
        model,
        SoftmaxCrossEntropy(),
        optimizer,
        X,
        y,
        epochs=300,
        batch_size=10,
        rng=rng,
        val=val,
        early_stopping=5,
        progress=False,
    )
    assert history.stopped_early and history.restored_best
    assert history.epochs < 300
    best = history.best_epoch
    # Stopped exactly `patience` epochs after the last improvement.
    assert history.epochs == best + 1 + 5
    assert min(history.val_loss[best + 1 :]) >= history.val_loss[best]
    # The parameters now are those of the best epoch: re-evaluating gives its validation loss.
    val_loss, val_accuracy = evaluate(model, SoftmaxCrossEntropy(), *val)
    assert val_loss == pytest.approx(history.val_loss[best], rel=1e-12)
    assert val_accuracy == pytest.approx(history.val_accuracy[best])


def test_early_stopping_without_restore_keeps_last_parameters():
    model, optimizer, (X, y), val, rng = overfitting_problem()
    history = fit(
        model,
        SoftmaxCrossEntropy(),
        optimizer,
        X,
        y,
        epochs=300,
        batch_size=10,
        rng=rng,
        val=val,
        early_stopping=EarlyStopping(patience=3, restore_best=False),
        progress=False,
    )
    assert history.stopped_early and not history.restored_best
    assert history.epochs == history.best_epoch + 1 + 3
    val_loss, _ = evaluate(model, SoftmaxCrossEntropy(), *val)
    assert val_loss == pytest.approx(history.val_loss[-1], rel=1e-12)


def test_early_stopping_needs_validation_data_and_a_sane_patience():
    model, optimizer, (X, y), _, rng = overfitting_problem()
    with pytest.raises(ValueError, match="val="):
        fit(model, SoftmaxCrossEntropy(), optimizer, X, y, 2, 10, rng, early_stopping=3, progress=False)
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)
    with pytest.raises(TypeError, match="early_stopping"):
        fit(model, SoftmaxCrossEntropy(), optimizer, X, y, 2, 10, rng, val=(X, y), early_stopping="yes", progress=False)


# --------------------------------------------------------------------------- input checks


def test_fit_rejects_bad_inputs_with_advice():
    rng = np.random.default_rng(0)
    X, y = make_moons(20, 0.1, rng)
    model = mlp(2, [4, 2], rng)
    args = (model, SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.1))
    with pytest.raises(ValueError, match="X has 20 rows but y has 19"):
        fit(*args, X, y[:19], 1, 4, rng, progress=False)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        fit(*args, X, y, 1, 0, rng, progress=False)
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        fit(*args, X, y, 0, 4, rng, progress=False)
    with pytest.raises(TypeError, match="epochs must be an integer"):
        fit(*args, X, y, 2.5, 4, rng, progress=False)
    with pytest.raises(TypeError, match="default_rng"):
        fit(*args, X, y, 1, 4, 0, progress=False)
    with pytest.raises(ValueError, match="val: X has 20 rows but y has 5"):
        fit(*args, X, y, 1, 4, rng, val=(X, y[:5]), progress=False)
    with pytest.raises(TypeError, match="pair"):
        fit(*args, X, y, 1, 4, rng, val=X, progress=False)


def test_batch_larger_than_dataset_is_one_full_batch():
    X, y = row_id_regression(5)
    model = RecordingModel(Linear(2, 1, np.random.default_rng(0)))
    fit(
        model, MSELoss(), FrozenOptimizer(), X, y, epochs=1, batch_size=64, rng=np.random.default_rng(0), progress=False
    )
    assert [len(rows) for _, rows in model.batches] == [5]


# --------------------------------------------------------------------------- progress, predict, plot


def test_progress_false_prints_nothing(capsys):
    X, y = make_moons(40, 0.1, np.random.default_rng(0))
    model = mlp(2, [8, 2], np.random.default_rng(0))
    fit(
        model,
        SoftmaxCrossEntropy(),
        SGD(model.parameters(), lr=0.1),
        X,
        y,
        3,
        8,
        np.random.default_rng(0),
        val=(X, y),
        progress=False,
    )
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_progress_bar_shows_epochs_and_losses(capsys):
    X, y = make_moons(40, 0.1, np.random.default_rng(0))
    model = mlp(2, [8, 2], np.random.default_rng(0))
    fit(model, SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.1), X, y, 3, 8, np.random.default_rng(0), val=(X, y))
    err = capsys.readouterr().err
    assert "3/3" in err and "val_loss=" in err


def test_predict_is_in_eval_mode_and_batched():
    rng = np.random.default_rng(0)
    model = Sequential(Linear(3, 8, rng), ReLU(), Dropout(0.5, rng), Linear(8, 2, rng))
    X = rng.standard_normal((10, 3))
    first = predict(model, X)
    assert first.shape == (10, 2)
    np.testing.assert_array_equal(first, predict(model, X))  # dropout is off: no randomness


def test_history_plot_and_repr():
    X, y = make_moons(40, 0.1, np.random.default_rng(0))
    model = mlp(2, [8, 2], np.random.default_rng(0))
    history = fit(
        model,
        SoftmaxCrossEntropy(),
        Adam(model.parameters(), lr=0.01),
        X,
        y,
        4,
        8,
        np.random.default_rng(0),
        val=(X, y),
        progress=False,
    )
    fig = history.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [line.get_label() for line in fig.axes[1].get_lines()] == ["train", "validation"]
    assert plt.get_fignums() == []  # closed in pyplot, so notebooks show it once
    assert repr(history).startswith("History(epochs=4, best_epoch=")
    assert f"val_accuracy={history.val_accuracy[-1]:.4f}" in repr(history)

    regression = History(train_loss=[3.0, 2.0, 2.5])
    assert regression.best_epoch == 1 and regression.epochs == 3
    assert len(regression.plot().axes) == 1


# --------------------------------------------------------------------------- lr_schedule, train_classifier


def test_lr_schedule_sets_the_rate_before_each_epoch_like_fitting_one_epoch_at_a_time():
    X, y = make_moons(60, noise=0.2, rng=np.random.default_rng(0))
    schedule = lambda epoch: 0.5 * 0.5**epoch  # noqa: E731
    scheduled = mlp(2, [8, 2], np.random.default_rng(1))
    optimizer = SGD(scheduled.parameters(), lr=1.0)
    history = fit(
        scheduled,
        SoftmaxCrossEntropy(),
        optimizer,
        X,
        y,
        epochs=3,
        batch_size=16,
        rng=np.random.default_rng(2),
        progress=False,
        lr_schedule=schedule,
    )
    assert optimizer.lr == schedule(2)
    by_hand = mlp(2, [8, 2], np.random.default_rng(1))
    by_hand_optimizer, order = SGD(by_hand.parameters(), lr=1.0), np.random.default_rng(2)
    losses = []
    for epoch in range(3):
        by_hand_optimizer.lr = schedule(epoch)
        losses += fit(
            by_hand, SoftmaxCrossEntropy(), by_hand_optimizer, X, y, epochs=1, batch_size=16, rng=order, progress=False
        ).train_loss
    assert history.train_loss == losses
    for p, q in zip(scheduled.parameters(), by_hand.parameters()):
        np.testing.assert_array_equal(p.data, q.data)


def test_lr_schedule_must_be_a_function_and_the_optimizer_must_have_a_rate():
    X, y = make_moons(20, noise=0.2, rng=np.random.default_rng(0))
    model = mlp(2, [4, 2], np.random.default_rng(0))

    class NoRate:
        def step(self):
            pass

    with pytest.raises(TypeError, match="lr_schedule must be a function of the epoch"):
        fit(
            model,
            SoftmaxCrossEntropy(),
            SGD(model.parameters(), lr=0.1),
            X,
            y,
            epochs=1,
            batch_size=8,
            rng=np.random.default_rng(0),
            progress=False,
            lr_schedule=0.1,
        )
    with pytest.raises(TypeError, match="NoRate has no lr attribute"):
        fit(
            model,
            SoftmaxCrossEntropy(),
            NoRate(),
            X,
            y,
            epochs=1,
            batch_size=8,
            rng=np.random.default_rng(0),
            progress=False,
            lr_schedule=lambda epoch: 0.1,
        )


def test_train_classifier_is_fit_with_softmax_cross_entropy_batches_of_32_and_no_bar(capsys):
    X, y = make_moons(100, noise=0.2, rng=np.random.default_rng(0))
    X_val, y_val = make_moons(40, noise=0.2, rng=np.random.default_rng(1))
    ours = mlp(2, [8, 2], np.random.default_rng(3))
    history = train_classifier(
        ours, SGD(ours.parameters(), lr=0.2), X, y, epochs=4, rng=np.random.default_rng(4), val=(X_val, y_val)
    )
    theirs = mlp(2, [8, 2], np.random.default_rng(3))
    expected = fit(
        theirs,
        SoftmaxCrossEntropy(),
        SGD(theirs.parameters(), lr=0.2),
        X,
        y,
        epochs=4,
        batch_size=32,
        rng=np.random.default_rng(4),
        val=(X_val, y_val),
        progress=False,
    )
    assert capsys.readouterr().err == ""  # no progress bar
    assert history.train_loss == expected.train_loss and history.val_accuracy == expected.val_accuracy
    assert len(history.train_accuracy) == 4


def test_train_classifier_passes_schedule_and_early_stopping_on():
    X, y = make_moons(100, noise=0.3, rng=np.random.default_rng(0))
    X_val, y_val = make_moons(40, noise=0.3, rng=np.random.default_rng(1))
    model = mlp(2, [32, 2], np.random.default_rng(0))
    optimizer = Adam(model.parameters(), lr=0.05)
    history = train_classifier(
        model,
        optimizer,
        X,
        y,
        epochs=200,
        rng=np.random.default_rng(0),
        val=(X_val, y_val),
        lr_schedule=lambda epoch: 0.05 / (1 + epoch),
        early_stopping=3,
    )
    assert history.stopped_early and history.epochs < 200
    assert optimizer.lr == pytest.approx(0.05 / history.epochs)  # the rate of the last epoch run


def test_train_classifier_rejects_bad_arguments_with_advice():
    X, y = make_moons(20, noise=0.2, rng=np.random.default_rng(0))
    model = mlp(2, [4, 2], np.random.default_rng(0))
    optimizer = SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        train_classifier(model, optimizer, X, y, epochs=0, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng must be a numpy Generator"):
        train_classifier(model, optimizer, X, y, epochs=1, rng=0)
    with pytest.raises(TypeError, match="rng"):
        train_classifier(model, optimizer, X, y, epochs=1)  # no hidden default seed
    with pytest.raises(ValueError, match="labels must lie in"):
        train_classifier(model, optimizer, X, y + 5, epochs=1, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="X has 20 rows but y has 19"):
        train_classifier(model, optimizer, X, y[:-1], epochs=1, rng=np.random.default_rng(0))
