"""A training-health dashboard: what one batch does inside a bpkit Sequential model.

    from bpkit.diagnostics import dashboard; dashboard(model, X, y, loss)

runs one forward and backward pass on the batch (X, y) and reports, layer by layer:
- the distribution of activations and of the gradients arriving at each layer's output;
- saturated units: sigmoid outputs with |a - 0.5| > 0.49, tanh outputs with |a| > 0.99 (their
  local slope is below 0.01 and 0.02: almost no gradient gets through);
- dead ReLUs: units that output 0 for every example in the batch (they pass no gradient at all);
- the update-to-data ratio of each parameter, lr * ||dL/dp|| / ||p||: the relative size of one
  plain SGD step (around 1e-3 is the usual healthy range; far below, the layer barely learns).

`training_stats` returns the numbers; `format_table` makes the printed table; `dashboard` prints
the table and returns the figure (shown when it is the last expression of a notebook cell).
The pass runs in the model's current mode (call model.eval() first to see it without dropout). The
model is left as it was found: parameter gradients and dropout random states are restored.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from bpkit.layers import Dropout, Layer, Linear, ReLU, Sequential, Sigmoid, Tanh

__all__ = [
    "SIGMOID_SATURATION",
    "TANH_SATURATION",
    "training_stats",
    "format_table",
    "dashboard",
]

SIGMOID_SATURATION = 0.49  # |a - 0.5| above this: sigmoid slope a(1 - a) < 0.01
TANH_SATURATION = 0.99  # |a| above this: tanh slope 1 - a^2 < 0.02
SATURATED_TOO_MANY = 0.25  # verdict "saturated" when more than this fraction of outputs saturate
DEAD_TOO_MANY = 0.25  # verdict "dead" when more than this fraction of ReLU units are dead
VANISHING_RELATIVE = 1e-3  # verdict "vanishing": ||dW|| below this times the largest ||dW|| in the model
VANISHING_RATIO = 1e-6  # ... or an update/data ratio below this
EXPLODING_RATIO = 1e-1  # verdict "exploding": one step would change W by more than 10%

_KINDS = {Linear: "linear", ReLU: "relu", Sigmoid: "sigmoid", Tanh: "tanh", Dropout: "dropout"}


def _flatten(layers: list[Layer]) -> list[Layer]:
    """Layers in execution order, with nested Sequentials opened up."""
    flat: list[Layer] = []
    for layer in layers:
        flat.extend(_flatten(layer.layers) if isinstance(layer, Sequential) else [layer])
    return flat


def _kind(layer: Layer) -> str:
    """Short lower-case name of the layer type."""
    for cls, name in _KINDS.items():
        if isinstance(layer, cls):
            return name
    return type(layer).__name__.lower()


def _norm(a: np.ndarray) -> float:
    """Euclidean (Frobenius) norm as a float."""
    return float(np.sqrt(np.sum(np.square(a, dtype=np.float64))))


def _check_inputs(model: Any, X: Any, lr: Any, optimizer: Any) -> tuple[list[Layer], np.ndarray, float]:
    """Validate the arguments shared by training_stats and dashboard."""
    if not hasattr(model, "layers"):
        raise TypeError(
            f"training_stats needs a bpkit.layers.Sequential model (with .layers), got {type(model).__name__}; "
            "wrap a single layer as Sequential(layer)"
        )
    layers = _flatten(list(model.layers))
    if not layers:
        raise ValueError("training_stats: the model has no layers")
    X = np.asarray(X)
    if X.ndim != 2 or len(X) == 0:
        raise ValueError(f"training_stats: X must be a batch of shape (N, D) with N >= 1, got shape {X.shape}")
    if optimizer is not None:
        if not hasattr(optimizer, "lr"):
            raise TypeError(f"training_stats: optimizer {optimizer!r} has no .lr; pass lr=... instead")
        lr = optimizer.lr
    if isinstance(lr, bool) or not isinstance(lr, Real) or not np.isfinite(lr) or lr <= 0:
        raise ValueError(f"training_stats: lr must be a finite number > 0, got {lr!r}")
    return layers, X, float(lr)


def training_stats(
    model: Sequential, X: np.ndarray, y: np.ndarray, loss: Any, lr: float = 1e-2, optimizer: Any = None
) -> dict:
    """Run one forward/backward pass on (X, y) and return per-layer and per-parameter health numbers.

    X (N, D_in); y whatever `loss.forward(pred, y)` takes; lr, or `optimizer.lr` when an optimizer is
    given, sets the update/data ratio. Returns {"loss": float, "lr": float, "layers": [row, ...],
    "params": [row, ...]}. A layer row has "index", "name" (repr), "kind", "act" (its output array,
    (N, D_out)), "dout" (dL/d output, same shape), "act_mean", "act_std", "saturated" (fraction of
    outputs saturated, sigmoid/tanh; else None), "dead" (fraction of ReLU units zero on every
    example; else None), "grad_norm" (||dL/dW|| for Linear, ||dL/d output|| otherwise),
    "update_ratio" (lr ||dL/dW|| / ||W|| for Linear; else None) and "verdict" (ok / saturated /
    dead / vanishing / exploding / nan). A param row has "layer", "name" ("layer 2 W": layers with
    parameters counted from 1, input side first), "shape", "data_norm",
    "grad_norm", "update_ratio" (inf when the parameter is all zeros, e.g. a fresh bias).
    """
    layers, X, lr = _check_inputs(model, X, lr, optimizer)
    params = [p for layer in layers for p in layer.parameters()]
    saved_grads = [p.grad.copy() for p in params]
    saved_rngs = [
        (layer.rng, layer.rng.bit_generator.state)
        for layer in layers
        if isinstance(getattr(layer, "rng", None), np.random.Generator)
    ]
    try:
        # 1. Forward layer by layer, keeping every output.
        acts = []
        a = X
        with np.errstate(over="ignore", invalid="ignore"):
            for layer in layers:
                a = layer.forward(a)
                acts.append(a)
            loss_value = float(loss.forward(a, y))
            # 2. Backward in reverse, keeping the gradient that arrives at every output.
            douts: list[np.ndarray] = [np.empty(0)] * len(layers)
            dout = loss.backward()
            for i in range(len(layers) - 1, -1, -1):
                douts[i] = dout
                dout = layers[i].backward(dout)
            param_grads = [p.grad.copy() for p in params]
    finally:
        for p, g in zip(params, saved_grads):
            if p.grad.shape == g.shape:
                np.copyto(p.grad, g)
            else:
                p.grad = g
        for rng, state in saved_rngs:
            rng.bit_generator.state = state

    grad_of = {id(p): g for p, g in zip(params, param_grads)}
    param_rows = []
    with_params = [index for index, layer in enumerate(layers) if layer.parameters()]
    for index, layer in enumerate(layers):
        for p in layer.parameters():
            data_norm, grad_norm = _norm(p.data), _norm(grad_of[id(p)])
            param_rows.append(
                {
                    "layer": index,
                    # counted as the lessons count: layer 1 is the first layer with weights, on the input side
                    "name": f"layer {with_params.index(index) + 1} {p.name or 'param'}",
                    "shape": tuple(p.data.shape),
                    "data_norm": data_norm,
                    "grad_norm": grad_norm,
                    "update_ratio": lr * grad_norm / data_norm if data_norm > 0 else float("inf"),
                }
            )

    rows = []
    for index, (layer, a, d) in enumerate(zip(layers, acts, douts)):
        kind = _kind(layer)
        a64 = np.asarray(a, dtype=np.float64)
        row: dict[str, Any] = {
            "index": index,
            "name": repr(layer),
            "kind": kind,
            "act": a,
            "dout": d,
            "act_mean": float(a64.mean()),
            "act_std": float(a64.std()),
            "saturated": None,
            "dead": None,
            "update_ratio": None,
        }
        if kind == "sigmoid":
            row["saturated"] = float(np.mean(np.abs(a64 - 0.5) > SIGMOID_SATURATION))
        elif kind == "tanh":
            row["saturated"] = float(np.mean(np.abs(a64) > TANH_SATURATION))
        elif kind == "relu":
            units = a64.reshape(len(a64), -1)  # (N, units)
            row["dead"] = float(np.mean(np.all(units == 0.0, axis=0)))
        if isinstance(layer, Linear):
            row["grad_norm"] = _norm(grad_of[id(layer.W)])
            w_norm = _norm(layer.W.data)
            row["update_ratio"] = lr * row["grad_norm"] / w_norm if w_norm > 0 else float("inf")
        else:
            row["grad_norm"] = _norm(d)
        rows.append(row)

    largest = max((r["grad_norm"] for r in rows if r["kind"] == "linear" and np.isfinite(r["grad_norm"])), default=0.0)
    for row in rows:
        row["verdict"] = _verdict(row, largest)
    return {"loss": loss_value, "lr": lr, "layers": rows, "params": param_rows}


def _verdict(row: dict, largest_linear_grad: float) -> str:
    """One word for a layer row, from the thresholds at the top of this module."""
    numbers = [row["act_mean"], row["act_std"], row["grad_norm"]]
    if not all(np.isfinite(v) for v in numbers):
        return "nan"
    if row["saturated"] is not None and row["saturated"] > SATURATED_TOO_MANY:
        return "saturated"
    if row["dead"] is not None and row["dead"] > DEAD_TOO_MANY:
        return "dead"
    ratio = row["update_ratio"]
    if ratio is not None:
        if ratio > EXPLODING_RATIO:
            return "exploding"
        if ratio < VANISHING_RATIO or row["grad_norm"] < VANISHING_RELATIVE * largest_linear_grad:
            return "vanishing"
    return "ok"


def _fmt(value: float | None, spec: str) -> str:
    """Format a number, or '-' for a statistic that does not apply to the layer."""
    return "-" if value is None else format(value, spec)


def _signed(value: float, decimals: int = 3) -> str:
    """Fixed-point text without a '-0.000': a mean that rounds to zero prints the same on every machine."""
    rounded = round(value, decimals) + 0.0  # + 0.0 turns -0.0 into 0.0
    return f"{rounded:.{decimals}f}"


def format_table(stats: dict) -> str:
    """The per-layer table of `training_stats` as fixed-width text (rounded, so it prints the same every run)."""
    names = [f"{row['index']} {row['name']}" for row in stats["layers"]]
    width = max([22, *(len(name) for name in names)])  # whole names: Linear(64, 64, input_grad=False) is 36
    header = (
        f"{'layer':<{width}} {'kind':<8} {'act mean':>9} {'act std':>9} {'sat/dead':>8} "
        f"{'grad norm':>10} {'update/data':>11}  verdict"
    )
    lines = [header, "-" * len(header)]
    for name, row in zip(names, stats["layers"]):
        frac = row["saturated"] if row["saturated"] is not None else row["dead"]
        lines.append(
            f"{name:<{width}} {row['kind'][:8]:<8} {_signed(row['act_mean']):>9} {row['act_std']:>9.3f} "
            f"{_fmt(frac, '.1%'):>8} {row['grad_norm']:>10.2e} {_fmt(row['update_ratio'], '.1e'):>11}  "
            f"{row['verdict']}"
        )
    lines.append(
        f"loss {stats['loss']:.4f}; grad norm = ||dL/dW|| for linear layers, ||dL/d output|| otherwise; "
        f"update/data = lr ||dL/dW|| / ||W|| with lr = {stats['lr']:g}"
    )
    return "\n".join(lines)


def _stages(rows: list[dict], limit: int = 6) -> list[dict]:
    """The rows to draw histograms for: activation layers and the output, at most `limit`, evenly spread."""
    chosen = [r for r in rows if r["kind"] in ("relu", "sigmoid", "tanh")]
    if not chosen or chosen[-1] is not rows[-1]:
        chosen.append(rows[-1])
    if len(chosen) > limit:
        keep = np.unique(np.linspace(0, len(chosen) - 1, limit).round().astype(int))
        chosen = [chosen[k] for k in keep]
    return chosen


def _finite(a: np.ndarray) -> np.ndarray:
    """The finite entries of a, flattened."""
    flat = np.asarray(a, dtype=np.float64).ravel()
    return flat[np.isfinite(flat)]


def _plot(stats: dict) -> Figure:
    """Histograms of activations and gradients per stage, and update/data ratios per parameter."""
    stages = _stages(stats["layers"])
    fig = Figure(figsize=(max(8.0, 2.2 * len(stages)), 7.0))
    # Fixed margins rather than constrained layout: drawing 13 panels takes a third of the time.
    grid = fig.add_gridspec(
        3,
        len(stages),
        height_ratios=[1.0, 1.0, 0.9],
        left=0.07,
        right=0.98,
        bottom=0.06,
        top=0.88,
        hspace=0.62,
        wspace=0.32,
    )
    for col, row in enumerate(stages):
        ax_a = fig.add_subplot(grid[0, col])
        values = _finite(row["act"])
        if values.size:
            ax_a.hist(values, bins=40, color="tab:blue", alpha=0.8)
        frac = row["saturated"] if row["saturated"] is not None else row["dead"]
        extra = f"\n{'saturated' if row['saturated'] is not None else 'dead'} {frac:.0%}" if frac is not None else ""
        ax_a.set_title(f"{row['index']} {row['kind']}{extra}", fontsize=9)
        ax_a.tick_params(labelsize=7)
        ax_g = fig.add_subplot(grid[1, col])
        grads = _finite(row["dout"])
        if grads.size:
            ax_g.hist(grads, bins=40, color="tab:red", alpha=0.8)
        ax_g.set_title(f"dL/d output: std {float(np.std(grads)) if grads.size else float('nan'):.1e}", fontsize=8)
        ax_g.tick_params(labelsize=7)
        ax_g.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))
        if col == 0:
            ax_a.set_ylabel("activations")
            ax_g.set_ylabel("gradients")
    ax_r = fig.add_subplot(grid[2, :])
    # Parameters that are exactly zero (fresh biases) have no finite ratio: leave them out.
    shown = [p for p in stats["params"] if np.isfinite(p["update_ratio"]) and p["update_ratio"] > 0]
    positions = np.arange(len(shown))
    ax_r.bar(positions, [p["update_ratio"] for p in shown], color="tab:purple", width=0.6)
    ax_r.axhline(1e-3, color="k", ls="--", lw=1, label="1e-3 (rule of thumb for a healthy step)")
    ax_r.set_yscale("log")
    values = [p["update_ratio"] for p in shown] + [1e-3]
    ax_r.set_ylim(min(values) / 10, max(values) * 10)  # at least two decades: labelled ticks, room for the line
    ax_r.yaxis.set_minor_formatter(NullFormatter())
    ax_r.set_xticks(positions, [p["name"] for p in shown], fontsize=8)
    ax_r.set_ylabel("lr·|grad| / |data|")
    ax_r.set_title(
        f"update-to-data ratio per parameter, lr = {stats['lr']:g} (all-zero parameters left out)", fontsize=9
    )
    ax_r.legend(fontsize=8, loc="upper left")
    fig.suptitle(f"Training health on a batch of {len(stats['layers'][0]['act'])}: loss {stats['loss']:.4f}")
    return fig


def dashboard(
    model: Sequential, X: np.ndarray, y: np.ndarray, loss: Any, lr: float = 1e-2, optimizer: Any = None
) -> Figure:
    """Print the per-layer health table for one batch and return the figure (fig.bpkit_data = the stats)."""
    stats = training_stats(model, X, y, loss, lr=lr, optimizer=optimizer)
    print(format_table(stats))
    fig = _plot(stats)
    fig.bpkit_data = stats
    return fig
