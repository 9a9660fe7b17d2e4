"""The checkers of lessons 10-13 accept the reference, reject every typical mistake with its own hint,
and turn other wrong answers (None, wrong shape, in-place changes, exceptions) into clear failures."""

from __future__ import annotations

import numpy as np
import pytest

from bpkit import checks
from bpkit.checks import CheckFailure
from bpkit.checks.lesson13 import _split, capstone_training_data
from bpkit.data import load_digits
from checker_support import failure_message


def test_not_a_function():
    with pytest.raises(CheckFailure, match="expected a function"):
        checks.momentum_step(None)


# -- hand-written wrong answers that are not in the mistake lists ------------------------------


def test_momentum_mutating_w_is_caught():
    def in_place(w, grad, v, lr, beta):
        v_new = beta * v + grad
        w -= lr * v_new
        return w, v_new

    assert "changed its input (argument 1) in place" in failure_message("momentum_step", in_place)


def test_momentum_single_output_is_a_shape_problem():
    message = failure_message("momentum_step", lambda w, grad, v, lr, beta: w - lr * (beta * v + grad))
    assert "expected a tuple of 2 items" in message


def test_nesterov_calling_grad_fn_twice_at_the_wrong_points_fails():
    def double(w, grad_fn, v, lr, beta):
        v_new = beta * v + 0.5 * (grad_fn(w) + grad_fn(w - lr * beta * v))
        return w - lr * v_new, v_new

    assert "nesterov_step failed" in failure_message("nesterov_step", double)


def test_rmsprop_wrong_shape_is_named():
    message = failure_message("rmsprop_step", lambda w, grad, s, lr, rho=0.9, eps=1e-8: (w.ravel()[:1], s))
    assert "returned shape" in message


def test_adam_missing_keyword_arguments_is_reported():
    def no_kwargs(w, grad, m, v, t, lr):
        return w, m, v

    message = failure_message("adam_step", no_kwargs)
    assert "adam_step failed" in message


def test_l2_penalty_returns_array_not_number():
    message = failure_message("l2_penalty", lambda weights, lam: [lam / 2 * W**2 for W in weights])
    assert "expected a single number" in message


def test_dropout_same_mask_for_every_unit_fails_keep_fraction():
    def all_or_nothing(x, p, rng, train=True):
        if not train:
            return x.copy(), np.ones_like(x)
        keep = rng.random() >= p  # one draw for the whole array
        mask = np.full(x.shape, keep / (1 - p))
        return x * mask, mask

    message = failure_message("dropout_forward", all_or_nothing)
    assert (
        "expected about 1 - p" in message
        or "dropped units although p=0" in message
        or "every unit was kept or dropped together" in message
    )


def test_dropout_forward_returning_only_out_fails_clearly():
    message = failure_message("dropout_forward", lambda x, p, rng, train=True: x)
    assert "expected a pair (out, mask)" in message


def test_dropout_forward_mutating_x_is_caught():
    def in_place(x, p, rng, train=True):
        mask = (rng.random(x.shape) >= p) / (1 - p) if train else np.ones_like(x)
        x *= mask
        return x, mask

    assert "in place" in failure_message("dropout_forward", in_place)


def test_dropout_forward_wrong_mask_shape():
    def row_mask(x, p, rng, train=True):
        mask = (rng.random(x.shape[1]) >= p) / (1 - p)  # (D,): one mask for all rows
        return x * mask, mask

    assert "has shape" in failure_message("dropout_forward", row_mask)


def test_dropout_backward_mutating_dout_is_caught():
    def in_place(dout, mask):
        dout *= mask
        return dout

    assert "in place" in failure_message("dropout_backward", in_place)


def test_early_stopping_returning_loss_value_fails():
    message = failure_message("early_stopping_epoch", lambda val_losses, patience: min(val_losses))
    assert "early_stopping_epoch failed" in message


def test_early_stopping_accepts_numpy_array_input(capsys):
    from bpkit.checks.lesson12 import _early_stopping_epoch

    assert _early_stopping_epoch(np.array([1.0, 0.5, 0.6, 0.7]), 2) == 1
    checks.early_stopping_epoch(lambda v, p: _early_stopping_epoch(np.asarray(v), p))
    assert "passed" in capsys.readouterr().out


# -- the capstone split and its checker --------------------------------------------------------


def test_capstone_split_is_disjoint_fixed_and_complete():
    X_train, y_train = capstone_training_data()
    _, _, X_held, y_held = _split()
    assert X_train.shape == (1438, 64) and y_train.shape == (1438,)
    assert X_held.shape == (359, 64) and y_held.shape == (359,)
    assert X_train.min() >= 0 and X_train.max() <= 16  # raw pixel scale
    # every loaded digit is in exactly one part: compare as sorted rows with their labels
    from bpkit.data import load_digits

    X, y = load_digits()
    both = np.vstack([np.column_stack([X_train, y_train]), np.column_stack([X_held, y_held])])
    assert np.array_equal(np.sort(both, axis=0), np.sort(np.column_stack([X, y]), axis=0))
    again, _ = capstone_training_data()
    assert np.array_equal(again, X_train)
    again[0, 0] = -1  # a copy: changing it leaves the split alone
    assert capstone_training_data()[0][0, 0] == X_train[0, 0]


def test_capstone_cases_are_the_heldout_images_disguised():
    cases = checks.predict.cases()
    _, _, X_held, y_held = _split()
    X_all, _ = load_digits()
    seen = cases[0].args[0]
    assert seen.shape == X_held.shape and np.abs(seen - X_held).max() == 1  # one grey level at most
    assert np.all((seen != X_held).any(axis=1))  # every image is changed ...
    assert np.array_equal(seen[X_held == 0], X_held[X_held == 0])  # ... but never where it is blank
    assert not any((X_all == x).all(axis=1).any() for x in seen)  # not a row of the shipped data
    assert np.array_equal(cases[0].labels, y_held)
    assert [c.args[0].shape for c in cases[1:]] == [(1, 64), (1, 64)]


def test_capstone_images_change_with_the_grading_secret():
    from bpkit.checks._core import secret_seed

    with secret_seed(11):
        first = checks.predict.cases()[0].args[0]
    with secret_seed(12):
        second = checks.predict.cases()[0].args[0]
    assert not np.array_equal(first, second)


def test_capstone_looking_images_up_in_the_shipped_data_fails():
    X_all, y_all = load_digits()

    def lookup(X):  # finds each image in load_digits() and returns its label; anything else is a 0
        hits = [(X_all == x).all(axis=1) for x in X]
        return np.array([int(y_all[h][0]) if h.any() else 0 for h in hits])

    assert "held-out accuracy" in failure_message("predict", lookup)


def test_capstone_just_below_the_bar_fails_with_the_accuracy():
    from bpkit.checks.lesson13 import _reference_predict

    _, _, X_held, y_held = _split()

    def mostly_right(X):
        labels = _reference_predict(X)
        if len(X) == len(X_held):
            wrong = np.flatnonzero(labels == y_held)[:20]  # 20 extra errors: about 93% right
            labels = labels.copy()
            labels[wrong] = (labels[wrong] + 1) % 10
        return labels

    message = failure_message("predict", mostly_right)
    assert "held-out accuracy" in message and "needs 95%" in message


def test_capstone_constant_answer_fails():
    message = failure_message("predict", lambda X: np.zeros(len(X), dtype=int))
    assert "held-out accuracy" in message


def test_capstone_mlp_reference_matches_finite_differences():
    from bpkit.checks.lesson13 import _mlp_cases, _mlp_loss_and_grads

    for case in _mlp_cases()[:5]:  # the kink and overflow cases are not smooth enough for this
        X, y, params = case.args
        _, grads = _mlp_loss_and_grads(X, y, params)
        for (W, b), (dW, db) in zip(params, grads):
            for arr, grad in ((W, dW), (b, db)):
                numeric = np.zeros_like(arr)
                for idx in np.ndindex(arr.shape):
                    old = arr[idx]
                    arr[idx] = old + 1e-6
                    up = _mlp_loss_and_grads(X, y, params)[0]
                    arr[idx] = old - 1e-6
                    down = _mlp_loss_and_grads(X, y, params)[0]
                    arr[idx] = old
                    numeric[idx] = (up - down) / 2e-6
                assert np.allclose(numeric, grad, atol=1e-7), case.label


def test_capstone_mlp_returning_only_the_loss_fails():
    from bpkit.checks.lesson13 import _mlp_loss_and_grads

    message = failure_message("mlp_loss_and_grads", lambda X, y, params: _mlp_loss_and_grads(X, y, params)[0])
    assert "expected a tuple of 2 items" in message


def test_capstone_mlp_mutating_params_is_caught():
    from bpkit.checks.lesson13 import _mlp_loss_and_grads

    def in_place(X, y, params):
        loss, grads = _mlp_loss_and_grads(X, y, params)
        for (W, _), (dW, _) in zip(params, grads):
            W -= 0.1 * dW  # an update does not belong here
        return loss, grads

    assert "in place" in failure_message("mlp_loss_and_grads", in_place)


def test_train_mlp_returning_a_dict_fails_clearly():
    message = failure_message("train_mlp", lambda X, y, sizes, epochs, lr, batch_size, rng: {"W1": np.zeros((64, 32))})
    assert "expected a list of" in message and "(W, b) pairs" in message


def test_train_mlp_nan_parameters_are_named():
    from bpkit.checks.lesson13 import _train_mlp

    def exploded(X, y, sizes, epochs, lr, batch_size, rng):
        params = _train_mlp(X, y, sizes, 1, lr, batch_size, rng)
        params[0][0][0, 0] = np.nan
        return params

    assert "NaN" in failure_message("train_mlp", exploded)


# -- issue 13: the capstone's hints name the mistake ----------------------------------------------


def test_capstone_just_under_the_bar_prints_counts_that_do_not_contradict():
    from bpkit.checks.lesson13 import _reference_predict

    _, _, X_held, y_held = _split()
    n = len(X_held)

    def predict(X):
        labels = _reference_predict(X).copy()
        if len(X) == n:
            right = np.flatnonzero(labels == y_held)
            keep = int(np.ceil(0.95 * n)) - 1  # one short of the bar: 341 of 359 is 94.99%
            labels[right[keep:]] = (labels[right[keep:]] + 1) % 10
        return labels

    message = failure_message("predict", predict)
    needed = int(np.ceil(0.95 * n))
    assert f"({needed - 1} of {n} right)" in message and f"at least {needed} of {n}" in message
    assert "95.0%" not in message  # the rounding that read as "95.0%, needs 95%"


def test_mlp_loss_and_grads_names_dW_of_the_layer_that_is_wrong():
    from bpkit.checks.lesson13 import _mlp_loss_and_grads

    def mlp_loss_and_grads(X, y, params):
        loss, grads = _mlp_loss_and_grads(X, y, params)
        (dW1, db1), *rest = grads
        return loss, [(2 * dW1, db1), *rest]

    message = failure_message("mlp_loss_and_grads", mlp_loss_and_grads)
    assert "dW1: wrong values" in message and "item 1 of the returned tuple" not in message


def learner_mlp_loss_and_grads(X, y, params, reverse=False, stop=-1):
    """A learner's own forward/backward (not the checker's), with an optional loop mistake."""
    activations, zs = [X], []
    for i, (W, b) in enumerate(params):
        zs.append(activations[-1] @ W + b)
        activations.append(zs[-1] if i == len(params) - 1 else np.maximum(zs[-1], 0))
    logits = activations[-1]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(len(y)), y].mean()
    delta = np.exp(log_p)
    delta[np.arange(len(y)), y] -= 1
    delta /= len(y)
    grads = []
    for i in range(len(params) - 1, stop, -1):
        if i < len(params) - 1:
            delta = delta * (zs[i] > 0)
        grads.append((activations[i].T @ delta, delta.sum(axis=0)))
        delta = delta @ params[i][0].T
    return loss, grads if reverse else grads[::-1]


def test_mlp_loss_and_grads_a_learners_right_answer_passes(capsys):
    checks.mlp_loss_and_grads(learner_mlp_loss_and_grads)
    assert "✔ mlp_loss_and_grads passed" in capsys.readouterr().out


def test_mlp_loss_and_grads_gradients_in_reverse_order_get_their_hint():
    message = failure_message("mlp_loss_and_grads", lambda X, y, p: learner_mlp_loss_and_grads(X, y, p, reverse=True))
    assert "return them in the order of params" in message


def test_mlp_loss_and_grads_backward_loop_off_by_one_gets_its_hint():
    message = failure_message("mlp_loss_and_grads", lambda X, y, p: learner_mlp_loss_and_grads(X, y, p, stop=0))
    assert "stops one layer early (off by one)" in message


def learner_train_mlp(
    X,
    y,
    sizes,
    epochs,
    lr,
    batch_size,
    rng,
    *,
    last_batch=True,
    correct_bias=True,
    t_per_epoch=False,
    gain=2.0,
    beta2=0.999,
    choice=False,
    moments_per_epoch=False,
    shuffle_kept=False,
    loss_and_grads=None,
):
    """A learner's own training loop (not the checker's variant builder), with optional typical mistakes."""
    params = [
        (rng.normal(0.0, np.sqrt(gain / d_in), size=(d_in, d_out)), np.zeros(d_out))
        for d_in, d_out in zip(sizes[:-1], sizes[1:])
    ]
    t = 0
    kept = np.arange(len(X))
    for epoch in range(epochs):
        if epoch == 0 or moments_per_epoch:
            moments = [[(np.zeros_like(W), np.zeros_like(W)), (np.zeros_like(b), np.zeros_like(b))] for W, b in params]
        idx = kept if shuffle_kept else np.arange(len(X))  # kept: shuffles the last epoch's order again
        if choice:  # other draws than rng.permutation(len(X))
            idx = rng.choice(len(X), size=len(X), replace=False)
        else:
            rng.shuffle(idx)  # the same draws as rng.permutation(len(X))
        end = len(X) if last_batch else len(X) - len(X) % batch_size
        for start in range(0, end, batch_size):
            batch = idx[start : start + batch_size]
            _, grads = (loss_and_grads or learner_mlp_loss_and_grads)(X[batch], y[batch], params)
            t = epoch + 1 if t_per_epoch else t + 1
            new_params = []
            for layer, ((W, b), (dW, db)) in enumerate(zip(params, grads)):
                pair = []
                for j, (p, g) in enumerate(((W, dW), (b, db))):
                    m, v = moments[layer][j]
                    m = 0.9 * m + 0.1 * g
                    v = beta2 * v + (1 - beta2) * g * g
                    moments[layer][j] = (m, v)
                    m_hat = m / (1 - 0.9**t) if correct_bias else m
                    v_hat = v / (1 - beta2**t) if correct_bias else v
                    pair.append(p - lr * m_hat / (np.sqrt(v_hat) + 1e-8))
                new_params.append(tuple(pair))
            params = new_params
    return params


def test_train_mlp_a_learners_right_answer_in_its_own_style_passes(capsys):
    checks.train_mlp(learner_train_mlp)
    assert "✔ train_mlp passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "options, hint",
    [
        (dict(last_batch=False), "the last, smaller minibatch was skipped"),
        (dict(correct_bias=False), "bias correction is missing"),
        (dict(t_per_epoch=True), "t counts minibatch UPDATES from 1"),
    ],
    ids=["drops-last-batch", "no-bias-correction", "t-per-epoch"],
)
def test_train_mlp_wrong_loops_and_adam_variants_fail_with_their_hint(options, hint):
    message = failure_message("train_mlp", lambda *args: learner_train_mlp(*args, **options))
    assert hint in message


@pytest.mark.parametrize(
    "options, step",
    [
        (dict(gain=1.0), "step 1, the initialisation, is wrong"),
        (dict(beta2=0.99), "the initialisation is right but three full-batch steps are not"),
        (dict(moments_per_epoch=True), "the initialisation is right but three full-batch steps are not"),
        (dict(choice=True), "full-batch steps are right but one epoch of several minibatches is not"),
        (dict(shuffle_kept=True), "full-batch steps and one epoch of minibatches are right but several epochs are not"),
    ],
    ids=["init-scale", "adam-beta2", "moments-reset-each-epoch", "shuffle-by-choice", "reshuffles-last-order"],
)
def test_train_mlp_names_the_step_that_is_wrong_not_the_whole_recipe(options, step):
    """Mistakes no registered one reproduces: the hint names the first step (case) that goes wrong."""
    message = failure_message("train_mlp", lambda *args: learner_train_mlp(*args, **options))
    assert f"hint:     {step}" in message, message
    assert all(f"hint:     {m.hint}" not in message for m in checks.train_mlp.mistakes)


def test_train_mlp_a_wrong_mlp_loss_and_grads_is_named_as_the_gradients():
    """The right loop over a backward pass that forgets the ReLU mask: the hint points at mlp_loss_and_grads."""
    from bpkit.checks.lesson13 import _mlp_variant

    message = failure_message(
        "train_mlp", lambda *args: learner_train_mlp(*args, loss_and_grads=_mlp_variant(relu_mask=False))
    )
    assert "step 2, the backward pass in mlp_loss_and_grads" in message and "checks.mlp_loss_and_grads" in message


def test_dropout_mask_from_the_global_random_state_fails():
    def dropout_forward(x, p, rng, train=True):
        if not train:
            return x, np.ones_like(x)
        mask = (np.random.rand(*x.shape) >= p) / (1 - p)  # np.random, not the rng it was given
        return x * mask, mask

    message = failure_message("dropout_forward", dropout_forward)
    assert "same rng state returned different masks" in message and "not from np.random" in message


def test_early_stopping_without_resetting_the_wait_fails():
    def early_stopping_epoch(val_losses, patience):
        best, best_epoch, bad = float("inf"), 0, 0
        for epoch, loss in enumerate(val_losses):
            if loss < best:
                best, best_epoch = loss, epoch  # the count of bad epochs is never reset
            else:
                bad += 1
                if bad >= patience:
                    break
        return best_epoch

    message = failure_message("early_stopping_epoch", early_stopping_epoch)
    assert "the wait restarts at each best" in message and "back to 0 at every new minimum" in message


def test_predict_that_squeezes_one_image_to_a_bare_label_fails_on_shape():
    """np.squeeze gives a 0-d array for one image: the text asks for shape (1,). The harness once sent a
    0-d array back as shape (1,) (np.ascontiguousarray makes it 1-D), so this answer passed."""
    from bpkit.checks.lesson13 import _reference_predict

    message = failure_message("predict", lambda X: np.squeeze(_reference_predict(X)))
    assert "returned shape (), expected (1,)" in message


def test_a_zero_dimensional_array_keeps_its_shape_through_the_harness():
    import json

    from bpkit.checks import _harness

    for value in (np.array(3), np.array(2.5), np.zeros((0, 3)), np.arange(6.0).reshape(2, 3).T):
        back = _harness.decode(json.loads(json.dumps(_harness.encode(value))))
        assert back.shape == value.shape and back.dtype == value.dtype and np.array_equal(back, value)
