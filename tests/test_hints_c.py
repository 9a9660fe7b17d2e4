"""Lessons 09-13: answers written as a learner would, each with one slip, get the hint that names that slip.

One test per mistake class registered for the independent tester's answers (helpers' hints, group c).
"""

from __future__ import annotations

import numpy as np
import pytest

from bpkit.checks.lesson13 import _mlp_loss_and_grads, capstone_training_data
from checker_support import failure_message

# -- lesson 09: initialisers ------------------------------------------------------------------


def xavier_precedence(d_in, d_out, rng):
    scale = np.sqrt(2 / d_in + d_out)
    return rng.normal(0, scale, (d_in, d_out))


def xavier_floor_division(d_in, d_out, rng):
    var = 2 // (d_in + d_out)
    return rng.normal(0, np.sqrt(var), (d_in, d_out))


def he_root_of_numerator(d_in, d_out, rng):
    return rng.standard_normal((d_in, d_out)) * (np.sqrt(2) / d_in)


def he_absolute(d_in, d_out, rng):
    W = rng.standard_normal((d_in, d_out)) * np.sqrt(2 / d_in)
    return np.abs(W)


# -- lesson 10: momentum ------------------------------------------------------------------------


def momentum_beta_on_grad(w, grad, v, lr, beta):
    velocity = v + beta * grad
    return w - lr * velocity, velocity


def momentum_lr_twice(w, grad, v, lr, beta):
    velocity = beta * v + lr * grad
    return w - lr * velocity, velocity


def momentum_none(w, grad, v, lr, beta):
    return w - lr * grad, grad * 1.0


def momentum_step_by_old_v_and_grad(w, grad, v, lr, beta):
    velocity = beta * v + grad
    return w - lr * v - lr * grad, velocity


def nesterov_lookahead_without_beta(w, grad_fn, v, lr, beta):
    g = grad_fn(w - lr * v)
    velocity = beta * v + g
    return w - lr * velocity, velocity


def nesterov_step_from_lookahead(w, grad_fn, v, lr, beta):
    ahead = w - lr * beta * v
    velocity = beta * v + grad_fn(ahead)
    return ahead - lr * velocity, velocity


def nesterov_grad_of_v(w, grad_fn, v, lr, beta):
    velocity = beta * v + grad_fn(v)
    return w - lr * velocity, velocity


def nesterov_gradient_lookahead(w, grad_fn, v, lr, beta):
    ahead = w - lr * grad_fn(w)
    velocity = beta * v + grad_fn(ahead)
    return w - lr * velocity, velocity


# -- lesson 11: RMSProp and Adam --------------------------------------------------------------


def rmsprop_abs(w, grad, s, lr, rho=0.9, eps=1e-8):
    s2 = rho * s + (1 - rho) * abs(grad)
    return w - lr * grad / (s2**0.5 + eps), s2


def rmsprop_plus(w, grad, s, lr, rho=0.9, eps=1e-8):
    s2 = rho * s + (1 - rho) * grad * grad
    return w + lr * grad / (np.sqrt(s2) + eps), s2


def rmsprop_adagrad(w, grad, s, lr, rho=0.9, eps=1e-8):
    s2 = s + np.square(grad)
    return w - lr * grad / (np.sqrt(s2) + eps), s2


def rmsprop_factor_inside(w, grad, s, lr, rho=0.9, eps=1e-8):
    s2 = rho * s + np.square((1 - rho) * grad)
    return w - lr * grad / (np.sqrt(s2) + eps), s2


def rmsprop_bias_corrected(w, grad, s, lr, rho=0.9, eps=1e-8):
    s2 = rho * s + (1 - rho) * np.square(grad)
    return w - lr * grad / (np.sqrt(s2 / (1 - rho)) + eps), s2


def _adam(w, grad, m, v, t, lr, beta1, beta2, eps, **slip):
    m2 = (1 - beta1) * m + beta1 * grad if slip.get("m_weights") else beta1 * m + (1 - beta1) * grad
    v2 = beta2 * v + (1 - beta2) * (np.abs(grad) if slip.get("abs") else np.square(grad))
    if slip.get("swap_corrections"):
        mh, vh = m2 / (1 - beta2**t), v2 / (1 - beta1**t)
    elif slip.get("multiply"):
        mh, vh = m2 * (1 - beta1**t), v2 * (1 - beta2**t)
    elif slip.get("times_t"):
        mh, vh = m2 / (1 - beta1 * t), np.abs(v2 / (1 - beta2 * t))
    else:
        mh, vh = m2 / (1 - beta1**t), v2 / (1 - beta2**t)
    top = grad if slip.get("raw_grad") else mh
    w2 = w - lr * top / (np.sqrt(vh) + eps)
    return (w2, v2, m2) if slip.get("swap_returns") else (w2, m2, v2)


def _adam_with(**slip):
    def adam_step(w, grad, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        return _adam(w, grad, m, v, t, lr, beta1, beta2, eps, **slip)

    return adam_step


# -- lesson 12: regularisation ------------------------------------------------------------------


def l2_floor_division(weights, lam):
    total = 0.0
    for W in weights:
        total += (W * W).sum()
    return float(lam // 2 * total)


def l2_square_of_sum(weights, lam):
    return float(sum(lam / 2 * W.sum() ** 2 for W in weights))


def l2_list(weights, lam):
    return [0.5 * lam * float((W**2).sum()) for W in weights]


def l2_mean_over_layers(weights, lam):
    return float(np.mean([0.5 * lam * (W**2).sum() for W in weights]))


def l2_square_the_list(weights, lam):
    return 0.5 * lam * float(np.sum(np.array(weights) ** 2))


def dropout_one_over_p(x, p, rng, train=True):
    if not train:
        return x, np.ones_like(x)
    keep = rng.random(x.shape) >= p
    mask = keep * (1.0 / p)
    return x * mask, mask


def dropout_pair_swapped(x, p, rng, train=True):
    if not train:
        return np.ones_like(x), x
    mask = (rng.random(x.shape) >= p) / (1 - p)
    return mask, mask * x


def early_wait_against_previous(val_losses, patience):
    best_epoch, count = 0, 0
    for epoch in range(1, len(val_losses)):
        if val_losses[epoch] < val_losses[best_epoch]:
            best_epoch = epoch
        count = count + 1 if val_losses[epoch] >= val_losses[epoch - 1] else 0
        if count == patience:
            break
    return best_epoch


def _early_stop(val_losses, patience):
    best, best_epoch, count = None, 0, 0
    for epoch, loss in enumerate(val_losses):
        if best is None or loss < best:
            best, best_epoch, count = loss, epoch, 0
        else:
            count += 1
            if count == patience:
                break
    return best_epoch, best


def early_from_one(val_losses, patience):
    return _early_stop(val_losses, patience)[0] + 1


def early_loss_value(val_losses, patience):
    return _early_stop(val_losses, patience)[1]


def early_argmax(val_losses, patience):
    count = 0
    for epoch in range(1, len(val_losses)):
        if val_losses[epoch] < min(val_losses[:epoch]):
            count = 0
        else:
            count += 1
            if count == patience:
                return int(np.argmax(val_losses[: epoch + 1]))
    return int(np.argmax(val_losses))


def early_first_window(val_losses, patience):
    window = list(val_losses)[: patience + 1]
    return window.index(min(window))


CASES = [
    ("xavier_init", xavier_precedence, "operator precedence"),
    ("xavier_init", xavier_floor_division, "integer division"),
    ("he_init", he_root_of_numerator, "np.sqrt(2 / d_in), not np.sqrt(2) / d_in"),
    ("he_init", he_absolute, "without np.abs"),
    ("momentum_step", momentum_beta_on_grad, "beta multiplies the OLD velocity"),
    ("momentum_step", momentum_lr_twice, "the learning rate is applied twice"),
    ("momentum_step", momentum_none, "the momentum is missing"),
    ("momentum_step", momentum_step_by_old_v_and_grad, "v_new is right but the step is not"),
    ("nesterov_step", nesterov_lookahead_without_beta, "beta is missing from the look-ahead"),
    ("nesterov_step", nesterov_step_from_lookahead, "step from w, not from the look-ahead point"),
    ("nesterov_step", nesterov_grad_of_v, "grad_fn takes WEIGHTS"),
    ("nesterov_step", nesterov_gradient_lookahead, "not by a gradient step"),
    ("rmsprop_step", rmsprop_abs, "not its absolute value"),
    ("rmsprop_step", rmsprop_plus, "sign error in the update"),
    ("rmsprop_step", rmsprop_adagrad, "not the running sum"),
    ("rmsprop_step", rmsprop_factor_inside, "not ((1 - rho) * grad)**2"),
    ("rmsprop_step", rmsprop_bias_corrected, "RMSProp has no bias correction"),
    ("adam_step", _adam_with(swap_corrections=True), "beta1 and beta2 are swapped in the bias corrections"),
    ("adam_step", _adam_with(abs=True), "v averages the SQUARED gradient, not its absolute value"),
    ("adam_step", _adam_with(multiply=True), "the bias correction DIVIDES"),
    ("adam_step", _adam_with(raw_grad=True), "not the raw gradient"),
    ("adam_step", _adam_with(times_t=True), "not 1 - beta1 * t"),
    ("adam_step", _adam_with(m_weights=True), "beta1 and 1 - beta1 are swapped"),
    ("adam_step", _adam_with(swap_returns=True), "m_new and v_new are swapped"),
    ("l2_penalty", l2_floor_division, "floor division"),
    ("l2_penalty", l2_square_of_sum, "not the square of the sum"),
    ("l2_penalty", l2_list, "return ONE number"),
    ("l2_penalty", l2_mean_over_layers, "do not average them: no division by len(weights)"),
    ("l2_penalty", l2_square_the_list, "weights is a LIST of matrices of different shapes"),
    ("l2_penalty_grad", lambda W, lam: 0.5 * lam * float(np.sum(W * W)), "that is the penalty (one number)"),
    ("l2_penalty_grad", lambda W, lam: lam * np.square(W), "differentiate, do not square"),
    ("l2_penalty_grad", lambda W, lam: lam * W.sum(), "not the number lam * np.sum(W)"),
    ("l2_penalty_grad", lambda W, lam: W - lam * W, "what weight decay leaves of W"),
    ("dropout_forward", dropout_one_over_p, "the right units are kept"),
    ("dropout_forward", dropout_pair_swapped, "the pair is swapped"),
    ("dropout_backward", lambda dout, mask: np.where(mask == 0, dout, 0.0), "the mask is inverted"),
    ("dropout_backward", lambda dout, mask: np.matmul(dout, mask.T), "not with the matrix product @"),
    ("early_stopping_epoch", early_wait_against_previous, "the wait restarts only at a new BEST loss"),
    ("early_stopping_epoch", early_from_one, "epochs are counted from 0"),
    ("early_stopping_epoch", early_loss_value, "not its loss value"),
    ("early_stopping_epoch", early_argmax, "np.argmin, not np.argmax"),
    ("early_stopping_epoch", early_first_window, "the first patience + 1 epochs are not enough"),
]


@pytest.mark.parametrize(
    "exercise_id, answer, named", CASES, ids=[f"{e}-{getattr(a, '__name__', 'lambda')}" for e, a, _ in CASES]
)
def test_a_learners_slip_is_named(exercise_id, answer, named):
    message = failure_message(exercise_id, answer)
    assert "hint:     " in message
    hint = message.split("hint:     ", 1)[1]
    assert named in hint, message


# -- lesson 13: the capstone ----------------------------------------------------------------------


def _mlp(slip):
    def mlp_loss_and_grads(X, y, params):
        n = X.shape[0]
        inputs, pre = [], []
        h = X
        for k, (W, b) in enumerate(params):
            inputs.append(h)
            z = h @ W + b
            pre.append(z)
            h = z if k == len(params) - 1 else np.maximum(z, 0)
        z = h - h.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        p = np.exp(log_p)
        loss = float(-log_p[np.arange(n), y].mean())
        onehot = np.zeros_like(p)
        onehot[np.arange(n), y] = 1
        g = (onehot - p) / n if slip == "sign" else (p - onehot) / n
        grads = []
        for k in reversed(range(len(params))):
            W = params[k][0]
            if slip == "mask output" or k < len(params) - 1:
                g = g * (pre[k] > 0)
            grads.insert(0, (inputs[k].T @ g, g.sum(axis=0)))
            g = g @ (W if slip == "W" else W.T)
        return loss, grads

    return mlp_loss_and_grads


@pytest.mark.parametrize(
    "slip, named",
    [
        ("mask output", "the backward pass has no ReLU mask there"),
        ("sign", "sign error in dlogits"),
        ("W", "The gradient goes down to the layer below as dout @ W.T"),
    ],
)
def test_an_mlp_slip_is_named(slip, named):
    assert named in failure_message("mlp_loss_and_grads", _mlp(slip))


def _trainer(slip):
    def train_mlp(X, y, sizes, epochs, lr, batch_size, rng):
        order = rng.permutation(len(X)) if slip == "shuffle first" and epochs else None
        params = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            params.append([rng.normal(size=(a, b)) * np.sqrt(2 / a), np.zeros(b)])
        moments = [[np.zeros_like(p) for p in layer] for layer in params]
        squares = [[np.zeros_like(p) for p in layer] for layer in params]
        step = 0
        for epoch in range(epochs):
            if not (slip == "shuffle first" and epoch == 0):
                order = rng.permutation(len(X))
            for start in range(0, len(X), batch_size):
                rows = order[start : start + batch_size]
                _, grads = _mlp_loss_and_grads(X[rows], y[rows], [tuple(layer) for layer in params])
                if slip != "t after":
                    step += 1
                for i, layer in enumerate(params):
                    for j in range(2):
                        if slip == "no biases" and j == 1:
                            continue
                        g = grads[i][j]
                        moments[i][j] = 0.9 * moments[i][j] + 0.1 * g
                        second = abs(g) if slip == "abs" else g * g
                        squares[i][j] = 0.999 * squares[i][j] + 0.001 * second
                        with np.errstate(divide="ignore", invalid="ignore"):
                            m_hat = moments[i][j] / (1 - 0.9**step)
                            v_hat = squares[i][j] / (1 - 0.999**step)
                            layer[j] = layer[j] - lr * m_hat / (np.sqrt(v_hat) + 1e-8)
                if slip == "t after":
                    step += 1
        return [tuple(layer) for layer in params]

    return train_mlp


@pytest.mark.parametrize(
    "slip, named",
    [
        ("t after", "t is still 0 at the first update"),
        ("no biases", "the biases were never updated"),
        ("abs", "v averages the SQUARED gradient"),
        ("shuffle first", "draw every W before the first rng.permutation(N)"),
    ],
)
def test_a_training_slip_is_named(slip, named):
    assert named in failure_message("train_mlp", _trainer(slip))


def test_the_learners_own_trainer_without_the_slip_passes(capsys):
    from bpkit import checks

    checks.train_mlp(_trainer(None))
    assert "passed" in capsys.readouterr().out


def test_a_classifier_dividing_by_a_zero_std_is_told_why_every_label_is_the_same():
    X_train, y_train = capstone_training_data()
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)  # a few pixels are blank in every image: std 0
    with np.errstate(divide="ignore", invalid="ignore"):
        Z = (X_train - mean) / std
        centroids = np.array([Z[y_train == d].mean(axis=0) for d in range(10)])

    def predict(X):
        with np.errstate(divide="ignore", invalid="ignore"):
            scores = ((X - mean) / std) @ centroids.T - 0.5 * (centroids**2).sum(axis=1)
        return scores.argmax(axis=1)

    message = failure_message("predict", predict)
    assert "every image got the same label" in message
    assert "std 0" in message and "np.where(std > 0, std, 1)" in message
