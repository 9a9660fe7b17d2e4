"""Gradient checking: compare a hand-written backward pass with finite differences.

The numerical gradient nudges one entry at a time by +-eps and watches the loss move:
slow (two forward passes per entry) but almost impossible to get wrong, which makes it the
referee for every backward pass in this course.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bpkit.layers import Parameter, ReLU

__all__ = ["numerical_gradient", "relative_error", "format_error", "check_layer", "check_model", "LayerCheck"]


def _scalar(value: Any) -> float:
    """The single number f returned (a float or a one-element array)."""
    arr = np.asarray(value)
    if arr.size != 1:
        raise ValueError(f"f must return a single number (the loss), got an array of shape {arr.shape}")
    return float(arr.reshape(()))


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences df/dx_i ~ (f(x + eps e_i) - f(x - eps e_i)) / 2 eps, an array shaped like x.

    x must be a float64 array: it is changed in place one entry at a time (so f may also
    read it through a closure, e.g. a layer's W.data) and every entry is put back, even if
    f raises. Cost: 2 * x.size calls of f.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a NumPy float64 array, got {type(x).__name__}; use np.array(x, dtype=float)")
    if x.dtype != np.float64:
        raise TypeError(
            f"x must be float64, got {x.dtype}: float32 rounding (about 1e-7 relative) swamps "
            "eps-sized steps; convert with x.astype(np.float64)"
        )
    if not x.flags.writeable:
        raise ValueError("x is read-only; numerical_gradient perturbs it in place, pass a writable copy")
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps!r}")
    grad = np.zeros(x.shape, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        old = float(x[idx])
        x_plus, x_minus = old + eps, old - eps
        try:
            x[idx] = x_plus
            f_plus = _scalar(f(x))
            x[idx] = x_minus
            f_minus = _scalar(f(x))
        finally:
            x[idx] = old  # restore exactly, whatever f did
        # Divide by the step actually taken: x_plus - x_minus is 2 eps up to rounding.
        grad[idx] = (f_plus - f_minus) / (x_plus - x_minus)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max over entries of |a - b| / max(|a| + |b|, 1e-12): 0 when equal, about 1 when unrelated."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"relative_error compares arrays of equal shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-12)))


def format_error(error: float, bound: float = 1e-6) -> str:
    """An error for printing: "< 1e-6" when below bound, else its value to one digit ("8e-02").

    Below the bound the error is rounding, whose digits change from one CPU, BLAS or NumPy
    version to the next; the bound is what the lesson means and prints the same everywhere.
    """
    if error < bound:
        return "< " + f"{bound:.0e}".replace("e-0", "e-").replace("e+0", "e+")
    return f"{error:.0e}"


# ---- helpers shared by check_layer and check_model -------------------------------------------


def _sublayers(layer: Any) -> list[Any]:
    """The layer and, for containers like Sequential, every layer inside it (depth first)."""
    found, stack = [], [layer]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(reversed(getattr(current, "layers", [])))
    return found


def _generators(layer: Any) -> list[np.random.Generator]:
    """Random generators the layer (or a layer inside it) draws from, e.g. Dropout's rng."""
    gens: list[np.random.Generator] = []
    for sub in _sublayers(layer):
        for value in vars(sub).values():
            if isinstance(value, np.random.Generator) and all(value is not g for g in gens):
                gens.append(value)
    return gens


@contextmanager
def _input_grads_on(layer: Any) -> Iterator[None]:
    """Every layer computes its dx meanwhile (a checker wants every gradient), then as before.

    `mlp` builds its first Linear with input_grad=False; the flag lives on such leaf layers
    (a Sequential's input_grad is its first layer's), so only instance attributes are switched.
    """
    flagged = [sub for sub in _sublayers(layer) if "input_grad" in vars(sub)]
    saved = [sub.input_grad for sub in flagged]
    for sub in flagged:
        sub.input_grad = True
    try:
        yield
    finally:
        for sub, value in zip(flagged, saved):
            sub.input_grad = value


def _snapshot(gens: list[np.random.Generator]) -> list[dict]:
    return [g.bit_generator.state for g in gens]


def _restore(gens: list[np.random.Generator], states: list[dict]) -> None:
    # Putting the generators back before every forward pass gives Dropout the same mask
    # each time, so the function being differentiated is deterministic.
    for g, state in zip(gens, states):
        g.bit_generator.state = state


def _require_float64(params: list[Parameter], who: str) -> None:
    for p in params:
        if p.data.dtype != np.float64:
            raise TypeError(
                f"{who} needs float64 parameters, got {p.data.dtype} for {p.name or 'a parameter'}: "
                "build the layers with dtype=np.float64 (float32 rounding swamps eps-sized steps)"
            )


class _KinkWatch:
    """Notices when a finite-difference step moves a ReLU input across 0 (its kink)."""

    def __init__(self, layer: Any) -> None:
        self.relus = [sub for sub in _sublayers(layer) if isinstance(sub, ReLU)]
        self.base: dict[int, np.ndarray] = {}
        self.crossings = 0

    def record_base(self) -> None:
        """Remember which ReLU inputs are > 0 at the unperturbed point."""
        self.base = {id(relu): relu.mask.copy() for relu in self.relus if relu.mask is not None}

    def check(self, layers: list[Any] | None = None) -> None:
        """After a perturbed forward pass of `layers` (default: all), count a crossing if any sign flipped."""
        relus = (
            self.relus if layers is None else [r for layer in layers for r in _sublayers(layer) if isinstance(r, ReLU)]
        )
        for relu in relus:
            base = self.base.get(id(relu))
            if (
                base is not None
                and relu.mask is not None
                and base.shape == relu.mask.shape
                and np.any(relu.mask != base)
            ):
                self.crossings += 1
                return

    def warn(self, eps: float) -> None:
        """Emit one warning if any evaluation crossed a kink."""
        if self.crossings:
            warnings.warn(
                f"{self.crossings} finite-difference evaluations moved a ReLU input across 0: an input "
                f"or pre-activation lies within about eps={eps:g} of the kink, where ReLU has no "
                "derivative, so the numerical gradient there is unreliable. Use inputs away from 0 "
                "(e.g. draw x again).",
                stacklevel=3,
            )


# ---- one layer ------------------------------------------------------------------------------


@dataclass
class LayerCheck:
    """Max relative errors of one layer's backward against finite differences."""

    dx: float  # for the gradient returned to the layer below
    params: dict[str, float] = field(default_factory=dict)  # per parameter, e.g. {"W": ..., "b": ...}

    @property
    def max_error(self) -> float:
        """The worst of all the errors."""
        return max([self.dx, *self.params.values()])

    def __str__(self) -> str:
        parts = [f"dx {self.dx:.1e}"] + [f"{name} {err:.1e}" for name, err in self.params.items()]
        return "max relative error: " + ", ".join(parts)


def _named_parameters(layer: Any) -> list[tuple[str, Parameter]]:
    """(name, parameter) pairs; inside a Sequential the name is prefixed by the layer index."""
    if hasattr(layer, "layers"):
        return [(f"{i}.{name}", p) for i, sub in enumerate(layer.layers) for name, p in _named_parameters(sub)]
    return [(p.name or f"param{j}", p) for j, p in enumerate(layer.parameters())]


def check_layer(layer: Any, x: np.ndarray, rng: np.random.Generator, eps: float = 1e-6) -> LayerCheck:
    """Check layer.backward for input x (N, ...) against numerical gradients of dx and every parameter.

    The scalar being differentiated is sum(forward(x) * G) with G a random upstream gradient
    of the output's shape, so backward(G) should return its exact gradient. G is random and
    uneven on purpose: with G = all ones (or all zeros) many wrong backward passes still
    agree, e.g. one that forgets to multiply by dout, sums over the wrong axis, or mixes up
    rows, because every entry of dout is then the same.

    Layers that draw random numbers (Dropout) get their generator put back before each
    forward pass, so they use the same mask every time. Warns when a step crosses a ReLU
    kink. Leaves x and the parameters unchanged; the parameters' .grad end up holding the
    analytic gradient for G.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a np.random.Generator, e.g. np.random.default_rng(0)")
    named = _named_parameters(layer)
    _require_float64([p for _, p in named], "check_layer")
    with _input_grads_on(layer):
        x = np.array(x, dtype=np.float64)  # a private copy: perturbed in place below
        gens = _generators(layer)
        states = _snapshot(gens)
        kinks = _KinkWatch(layer)

        def forward(x_in: np.ndarray) -> np.ndarray:
            _restore(gens, states)
            return layer.forward(x_in)

        # 1. Analytic gradients for a random upstream gradient G.
        out = forward(x)
        G = rng.standard_normal(np.shape(out))  # (same shape as out)
        dx = np.array(layer.backward(G), dtype=np.float64)
        grads = {name: p.grad.copy() for name, p in named}
        kinks.record_base()

        # 2. The same gradients by finite differences of sum(forward(x) * G).
        def objective(x_in: np.ndarray) -> float:
            value = float(np.sum(forward(x_in) * G))
            kinks.check()
            return value

        result = LayerCheck(dx=relative_error(dx, numerical_gradient(objective, x, eps)))
        for name, p in named:
            numeric = numerical_gradient(lambda _: objective(x), p.data, eps)
            result.params[name] = relative_error(grads[name], numeric)

        # 3. Leave the layer as after one clean forward/backward of x.
        forward(x)
        layer.backward(G)
        kinks.warn(eps)
        return result


# ---- a whole model --------------------------------------------------------------------------


def check_model(
    model: Any, loss: Any, X: np.ndarray, y: np.ndarray, eps: float = 1e-6, tol: float = 1e-6
) -> list[dict]:
    """Check every gradient of model + loss on (X, y), print a table, return its rows (list of dicts).

    One row per parameter and one for the input gradient dx of every layer, in forward order:
    name (e.g. "layers[2].W"), layer, shape, max_rel_error, ok (error <= tol), first_bad.

    Each row is compared with a numerical gradient computed from that layer upwards only, so
    a wrong backward shows up at its own layer. Backprop computes gradients from the loss
    down, and a wrong one spoils every gradient computed after it (the rows above it in the
    table). The row marked `first_bad` is the first wrong one in backprop order: the bug is
    in that layer's backward.

    Reading the numbers: a wrong formula gives errors of 1e-2 or more. With eps=1e-6,
    rounding alone can push an entry that is nearly 0 (say 1e-5) to errors around 1e-6..1e-5;
    the printed summary says so when every failure is that small.
    """
    layers = list(model.layers) if hasattr(model, "layers") else [model]
    prefix = "layers" if hasattr(model, "layers") else "model"
    _require_float64(model.parameters(), "check_model")
    with _input_grads_on(model):
        X = np.array(X, dtype=np.float64)
        gens = _generators(model)
        kinks = _KinkWatch(model)

        def clean_pass() -> tuple[list[np.ndarray], list[list[dict]], list[np.ndarray], list[dict]]:
            """Forward and backward layer by layer, keeping what each layer saw and produced."""
            inputs, states = [], []
            a = X
            for layer in layers:
                inputs.append(np.array(a, dtype=np.float64))  # a private copy, perturbed below
                states.append(_snapshot(gens))  # random state before this layer (Dropout masks)
                a = layer.forward(a)
            loss.forward(a, y)
            dout = loss.backward()
            dxs: list[np.ndarray] = [np.empty(0)] * len(layers)
            grads: list[dict[str, np.ndarray]] = [{}] * len(layers)
            for i in range(len(layers) - 1, -1, -1):
                dout = layers[i].backward(dout)
                dxs[i] = np.array(dout, dtype=np.float64)
                grads[i] = {name: p.grad.copy() for name, p in _named_parameters(layers[i])}
            return inputs, states, dxs, grads

        # 1. Analytic gradients: one forward and one backward pass.
        start_states = _snapshot(gens)
        inputs, states, dxs, grads = clean_pass()
        kinks.record_base()

        def loss_from(i: int) -> float:
            """The loss as a function of layer i's input inputs[i] (the layers before i are not rerun)."""
            _restore(gens, states[i])
            a = inputs[i]
            for layer in layers[i:]:
                a = layer.forward(a)
            value = float(loss.forward(a, y))
            kinks.check(layers[i:])
            return value

        # 2. Numerical gradients, one row per parameter and per layer input, in forward order.
        rows = []
        for i, layer in enumerate(layers):
            tag = f"{prefix}[{i}]" if prefix == "layers" else prefix
            entries = [(f"{tag}.{name}", grads[i][name], p.data) for name, p in _named_parameters(layer)]
            entries.append((f"{tag}.dx", dxs[i], inputs[i]))
            for name, analytic, target in entries:
                numeric = numerical_gradient(lambda _: loss_from(i), target, eps)  # noqa: B023 - called in this iteration
                error = relative_error(analytic, numeric)
                rows.append(
                    {
                        "name": name,
                        "layer": repr(layer),
                        "shape": tuple(target.shape),
                        "max_rel_error": error,
                        "ok": bool(error <= tol),
                        "first_bad": False,
                    }
                )
        for row in reversed(rows):  # backprop order: from the loss down
            if not row["ok"]:
                row["first_bad"] = True
                break

        # 3. Leave the model as after one clean forward/backward of X; print the table.
        _restore(gens, start_states)
        clean_pass()
        kinks.warn(eps)
        _print_table(rows, tol)
        return rows


def _print_table(rows: list[dict], tol: float) -> None:
    """One line per row; the first wrong gradient in backprop order is marked."""
    name_w = max(len("name"), *(len(r["name"]) for r in rows))
    layer_w = max(len("layer"), *(len(r["layer"]) for r in rows))
    shape_w = max(len("shape"), *(len(str(r["shape"])) for r in rows))
    print(f"{'name':<{name_w}}  {'layer':<{layer_w}}  {'shape':<{shape_w}}  max rel error  ok")
    for r in rows:
        mark = ""
        if r["first_bad"]:
            mark = "  <- first wrong gradient in backprop order: the bug is in this layer's backward"
        ok = "yes" if r["ok"] else "NO"
        print(
            f"{r['name']:<{name_w}}  {r['layer']:<{layer_w}}  {str(r['shape']):<{shape_w}}  "
            f"{r['max_rel_error']:<13.1e}  {ok}{mark}"
        )
    bad = [r for r in rows if not r["ok"]]
    print(f"{len(rows) - len(bad)} of {len(rows)} gradients agree within tol={tol:g}")
    if bad and max(r["max_rel_error"] for r in bad) < 1e-4:
        # A wrong formula is off by a factor or a sign: errors of 1e-2 and more. Errors just
        # above tol come from rounding on gradient entries close to 0, where 1e-16 / eps is
        # no longer small compared with the entry.
        print(
            "(all the errors are below 1e-4: most likely rounding on tiny gradient entries, "
            "not a bug; compare with eps=1e-5)"
        )
