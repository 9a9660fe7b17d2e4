"""Layers with a hand-written backward pass, on NumPy arrays of shape (N, D): one row per sample.

Every layer has `forward(x) -> out` and, right next to it, `backward(dout) -> dx`:
`dout` is dL/d(out) arriving from the layer above, `dx` is dL/dx handed to the layer below.
`backward` reads what `forward` cached (by reference, no copies), so call it after the
`forward` of the same batch, and do not modify a layer's input or output in place in between.
Layers with weights keep them in `Parameter`s; `backward` *sets* each parameter's `.grad` (it
does not add to it), so no zeroing is needed between steps.

A layer whose input is the data needs no dx: `Linear(..., input_grad=False)` (which `mlp` sets on
its first layer) skips that matrix product and its `backward` returns None.

Speed notes (a training loop built from these layers should run about as fast as the same
network written as one hand-fused NumPy function): lines marked `# speed:` avoid a copy or an
allocation and are otherwise equivalent to the plain formula in the comment above them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from numbers import Integral, Real

import numpy as np

from bpkit import init as _init

__all__ = ["Parameter", "Layer", "Linear", "ReLU", "Sigmoid", "Tanh", "Dropout", "Sequential", "mlp"]


class Parameter:
    """A learnable array `.data` with its gradient `.grad` (same shape and dtype) and a `.name`."""

    def __init__(self, data: np.ndarray, name: str = "") -> None:
        data = np.asarray(data)
        if data.dtype.kind != "f":
            data = data.astype(np.float64)  # gradients need floating point
        self.data = data
        # backward() writes into this very array, so keep a copy if you want an old gradient.
        self.grad = np.zeros_like(data)
        self.name = name

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of `.data` (and of `.grad`)."""
        return self.data.shape

    @property
    def size(self) -> int:
        """Number of entries."""
        return self.data.size

    def __repr__(self) -> str:
        return f"Parameter(name={self.name!r}, shape={self.data.shape}, dtype={self.data.dtype})"


class Layer:
    """Base class: a layer without parameters that does nothing in train()/eval()."""

    training: bool = True  # Dropout behaves differently in training and evaluation

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Compute the output for input x."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x)")

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Return dL/dx given dout = dL/d(out), and set the parameters' .grad."""
        raise NotImplementedError(f"{type(self).__name__} must implement backward(dout)")

    def parameters(self) -> list[Parameter]:
        """The layer's Parameters (none for activations)."""
        return []

    def train(self) -> Layer:
        """Switch to training mode (dropout active); returns self."""
        self.training = True
        return self

    def eval(self) -> Layer:
        """Switch to evaluation mode (dropout off); returns self."""
        self.training = False
        return self

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def _set_dtype(self, dtype: np.dtype) -> None:
        """Cast every parameter (and reset its gradient) to dtype."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = np.zeros_like(p.data)

    def _not_run_yet(self) -> RuntimeError:
        name = type(self).__name__
        return RuntimeError(
            f"{name}.backward() was called before {name}.forward(): backward uses what the "
            "forward pass cached, so run forward(x) on the batch first"
        )


def _check_dout(layer: Layer, dout: np.ndarray, expected: tuple[int, ...]) -> np.ndarray:
    """dout must have the shape of the layer's last output."""
    dout = np.asarray(dout)
    if dout.shape != expected:
        raise ValueError(
            f"{layer!r}.backward expects dout of shape {expected} (the shape of its last output), got {dout.shape}"
        )
    return dout


_INITS: dict[str, Callable[..., np.ndarray]] = {
    "he": _init.he_normal,
    "xavier": _init.xavier_normal,
    "xavier_uniform": _init.xavier_uniform,
    "normal": _init.normal,
}


def _check_init_name(init: str, caller: str) -> None:
    """An init given by name must be one of _INITS; the message names the caller (Linear, mlp)."""
    if init not in _INITS:
        raise ValueError(f"{caller}: unknown init {init!r}; use one of {sorted(_INITS)} or a callable")


class Linear(Layer):
    """Fully connected layer out = x @ W + b: x (N, d_in) -> out (N, d_out).

    W (d_in, d_out) is drawn by `init` ("he", "xavier", "xavier_uniform", "normal", or a
    callable (d_in, d_out, rng) -> array); b (d_out,) starts at zero. Inputs are cast to
    `dtype`, so a float32 layer computes in float32 even when fed float64 data. With
    `input_grad=False` backward skips dx (and returns None): for a first layer, fed the data.
    """

    def __init__(
        self,
        d_in: int,
        d_out: int,
        rng: np.random.Generator,
        init: str | Callable[[int, int, np.random.Generator], np.ndarray] = "he",
        dtype: type | np.dtype = np.float64,
        input_grad: bool = True,
    ) -> None:
        _init.check_init_args(d_in, d_out, rng, caller="Linear")
        _check_input_grad(input_grad, "Linear")
        # False for a first layer: its input is data, nobody needs dL/dx, and computing it costs
        # as much as the forward matrix product. backward then returns None.
        self.input_grad = bool(input_grad)
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise ValueError(f"Linear: dtype must be a floating type like np.float64 or np.float32, got {dtype!r}")
        self.d_in, self.d_out = int(d_in), int(d_out)
        if isinstance(init, str):
            _check_init_name(init, "Linear")
            W = _INITS[init](self.d_in, self.d_out, rng)
        elif callable(init):
            W = np.asarray(init(self.d_in, self.d_out, rng))
            if W.shape != (self.d_in, self.d_out):
                raise ValueError(
                    f"Linear: init returned an array of shape {W.shape}, expected (d_in, d_out) = "
                    f"{(self.d_in, self.d_out)}"
                )
        else:
            raise TypeError(f"Linear: init must be a name or a callable, got {type(init).__name__}")
        self.W = Parameter(W.astype(self.dtype), "W")  # (d_in, d_out)
        self.b = Parameter(np.zeros(self.d_out, dtype=self.dtype), "b")  # (d_out,)
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """out = x @ W + b; x (N, d_in) -> out (N, d_out)."""
        x = np.asarray(x, dtype=self.dtype)  # no copy when x already has the layer's dtype
        if x.ndim != 2 or x.shape[1] != self.d_in:
            hint = " (for one sample use x.reshape(1, -1))" if x.ndim == 1 else ""
            raise ValueError(f"{self!r} expects input of shape (N, {self.d_in}), got {x.shape}{hint}")
        self._x = x  # speed: cached by reference, not copied (do not modify x in place before backward)
        out = x @ self.W.data  # (N, d_out)
        out += self.b.data  # speed: add the bias in place instead of allocating x @ W + b
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        """Set W.grad, b.grad; return dx (N, d_in) from dout (N, d_out), or None when input_grad is False."""
        if self._x is None:
            raise self._not_run_yet()
        x = self._x
        dout = _check_dout(self, dout, (x.shape[0], self.d_out))
        # dL/dW = x^T @ dout                                              # (d_in, d_out)
        np.matmul(x.T, dout, out=self.W.grad)  # speed: written into the existing .grad array
        # dL/db = sum of dout over the batch (b was added to every row)   # (d_out,)
        dout.sum(axis=0, out=self.b.grad)  # speed: written into the existing .grad array
        if not self.input_grad:
            return None
        # dL/dx = dout @ W^T                                              # (N, d_in)
        return dout @ self.W.data.T

    def parameters(self) -> list[Parameter]:
        """[W, b]."""
        return [self.W, self.b]

    def _set_dtype(self, dtype: np.dtype) -> None:
        super()._set_dtype(dtype)
        self.dtype = np.dtype(dtype)

    def __repr__(self) -> str:
        extra = "" if self.dtype == np.float64 else f", dtype={self.dtype.name}"
        if not self.input_grad:
            extra += ", input_grad=False"
        return f"{type(self).__name__}({self.d_in}, {self.d_out}{extra})"


class ReLU(Layer):
    """out = max(x, 0) elementwise; any shape. The derivative at exactly 0 is taken as 0."""

    def __init__(self) -> None:
        self.mask: np.ndarray | None = None  # x > 0 from the last forward: where gradient flows

    def forward(self, x: np.ndarray) -> np.ndarray:
        """out = max(x, 0)."""
        x = np.asarray(x)
        self.mask = x > 0
        return np.maximum(x, 0)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dx = dout where x > 0, else 0."""
        if self.mask is None:
            raise self._not_run_yet()
        dout = _check_dout(self, dout, self.mask.shape)
        return dout * self.mask


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) without overflow: only e^-|x| <= 1 is ever computed."""
    e = np.exp(-np.abs(x))
    # x >= 0: 1 / (1 + e^-x);  x < 0: e^x / (1 + e^x)  (the same number, rewritten)
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


class Sigmoid(Layer):
    """out = 1 / (1 + e^-x) elementwise, numerically stable; any shape."""

    def __init__(self) -> None:
        self._out: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """out = sigmoid(x)."""
        self._out = _sigmoid(np.asarray(x))
        return self._out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dx = dout * s (1 - s) with s = sigmoid(x)."""
        if self._out is None:
            raise self._not_run_yet()
        s = self._out
        dout = _check_dout(self, dout, s.shape)
        return dout * s * (1.0 - s)


class Tanh(Layer):
    """out = tanh(x) elementwise; any shape."""

    def __init__(self) -> None:
        self._out: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """out = tanh(x)."""
        self._out = np.tanh(np.asarray(x))
        return self._out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dx = dout * (1 - tanh(x)^2)."""
        if self._out is None:
            raise self._not_run_yet()
        t = self._out
        dout = _check_dout(self, dout, t.shape)
        return dout * (1.0 - t * t)


class Dropout(Layer):
    """Inverted dropout: in training, zero each entry with probability p and scale the rest by 1/(1-p).

    The scaling keeps the expected output equal to x, so evaluation mode is just the identity.
    Any shape.
    """

    def __init__(self, p: float, rng: np.random.Generator) -> None:
        if isinstance(p, bool) or not isinstance(p, Real) or not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p is the probability of dropping a unit, in [0, 1); got {p!r}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"Dropout: rng must be a np.random.Generator, got {type(rng).__name__}; "
                "pass rng = np.random.default_rng(seed)"
            )
        self.p = float(p)
        self.rng = rng
        self._mask: np.ndarray | None = None  # 0 or 1/(1-p) per entry; None after an eval forward
        self._shape: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x * mask in training (mask entries 0 or 1/(1-p)); x unchanged in eval mode."""
        x = np.asarray(x)
        self._shape = x.shape
        if not self.training:
            self._mask = None
            return x
        # Keep a unit when its uniform draw is >= p, which happens with probability 1 - p.
        mask = self.rng.random(x.shape) >= self.p
        self._mask = mask.astype(x.dtype if x.dtype.kind == "f" else np.float64)
        self._mask /= 1.0 - self.p  # kept units carry the 1/(1-p) scale
        return x * self._mask

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dx = dout * mask (the same mask as the forward pass); dout unchanged in eval mode."""
        if self._shape is None:
            raise self._not_run_yet()
        dout = _check_dout(self, dout, self._shape)
        if self._mask is None:
            return dout
        return dout * self._mask

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"


def _check_input_grad(input_grad: bool, caller: str) -> None:
    """input_grad says whether backward returns dx: it must be True or False."""
    if not isinstance(input_grad, (bool, np.bool_)):
        raise TypeError(
            f"{caller}: input_grad must be True (backward returns dx) or False (it does not, for a "
            f"layer fed the data), got {input_grad!r}"
        )


class Sequential(Layer):
    """Layers applied one after another: forward runs them in order, backward in reverse.

    `dtype` (e.g. np.float32), when given, casts every parameter of every layer to it.
    Whether backward returns dx is the first parameterised layer's `input_grad`
    (`Linear(..., input_grad=False)`, as `mlp` builds it); `input_grad=`, when given, sets it.
    Without it backward returns None and does not visit the layers below that one: they have
    no gradients to set, and what they would pass down is the dx nobody needs.
    """

    def __init__(self, *layers: Layer, dtype: type | np.dtype | None = None, input_grad: bool | None = None) -> None:
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            raise TypeError("Sequential takes layers as separate arguments: write Sequential(*layers)")
        for i, layer in enumerate(layers):
            if not all(callable(getattr(layer, m, None)) for m in ("forward", "backward", "parameters")):
                raise TypeError(
                    f"Sequential: argument {i} ({layer!r}) is not a layer; it needs forward, backward "
                    "and parameters methods"
                )
        self.layers: list[Layer] = list(layers)
        if dtype is not None:
            dtype = np.dtype(dtype)
            if dtype.kind != "f":
                raise ValueError(f"Sequential: dtype must be a floating type like np.float32, got {dtype!r}")
            for layer in self.layers:
                layer._set_dtype(dtype)
        if input_grad is not None:
            self.input_grad = input_grad

    @property
    def input_grad(self) -> bool:
        """Whether backward returns dx: the input_grad of the first layer with parameters (True if none)."""
        first = self._first_with_parameters()
        if first == len(self.layers):
            return True
        return bool(getattr(self.layers[first], "input_grad", True))

    @input_grad.setter
    def input_grad(self, value: bool) -> None:
        _check_input_grad(value, "Sequential")
        first = self._first_with_parameters()
        if first == len(self.layers):
            raise TypeError("Sequential: input_grad belongs to the first layer with parameters, and no layer has any")
        if not hasattr(self.layers[first], "input_grad"):
            raise TypeError(
                f"Sequential: input_grad belongs to the first layer with parameters, {self.layers[first]!r}, "
                "which has no input_grad attribute (Linear has one)"
            )
        self.layers[first].input_grad = bool(value)

    def _first_with_parameters(self) -> int:
        """Index of the first layer with parameters (len(layers) when none has any)."""
        for i, layer in enumerate(self.layers):
            if layer.parameters():
                return i
        return len(self.layers)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Pass x through every layer in order."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        """Backpropagate dout through the layers in reverse order; return dx, or None when input_grad is False."""
        input_grad = self.input_grad
        stop = 0 if input_grad else self._first_with_parameters()
        for layer in reversed(self.layers[stop:]):
            dout = layer.backward(dout)
        return dout if input_grad else None

    def parameters(self) -> list[Parameter]:
        """Every layer's parameters, in layer order."""
        return [p for layer in self.layers for p in layer.parameters()]

    def train(self) -> Sequential:
        """Training mode for every layer; returns self."""
        self.training = True
        for layer in self.layers:
            layer.train()
        return self

    def eval(self) -> Sequential:
        """Evaluation mode for every layer; returns self."""
        self.training = False
        for layer in self.layers:
            layer.eval()
        return self

    def _set_dtype(self, dtype: np.dtype) -> None:
        for layer in self.layers:
            layer._set_dtype(dtype)

    @property
    def dtype(self) -> np.dtype | None:
        """dtype of the first parameter (None for a model without parameters)."""
        params = self.parameters()
        return params[0].data.dtype if params else None

    def __getitem__(self, index: int | slice) -> Layer | Sequential:
        if isinstance(index, slice):
            return Sequential(*self.layers[index])  # shares the layers, does not copy them
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __repr__(self) -> str:
        total = sum(p.size for p in self.parameters())
        dtype = self.dtype.name if self.dtype is not None else "no parameters"
        lines = [f"Sequential(  # {total:,} parameters, {dtype}"]
        for i, layer in enumerate(self.layers):
            params = layer.parameters()
            line = f"  ({i}) {layer!r}"
            if params:
                shapes = " + ".join(f"{p.name or 'param'} {p.shape}" for p in params)
                line += f"  {shapes} = {sum(p.size for p in params):,} parameters"
            lines.append(line)
        lines.append(")")
        return "\n".join(lines)


_ACTIVATIONS: dict[str, type[Layer]] = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}


def mlp(
    nin: int,
    nouts: Sequence[int],
    rng: np.random.Generator,
    activation: str | Callable[[], Layer] = "relu",
    init: str | Callable[[int, int, np.random.Generator], np.ndarray] = "he",
    dropout: float = 0.0,
) -> Sequential:
    """A multi-layer perceptron nin -> nouts[0] -> ... -> nouts[-1], as a Sequential (micrograd's MLP(nin, nouts)).

    Every Linear layer but the last is followed by `activation` ("relu", "tanh", "sigmoid", or a
    class such as ReLU that makes a new layer) and, when dropout > 0, by Dropout(dropout, rng).
    The last layer has no activation: its outputs are logits. Weights come from `init` (see
    Linear), drawn from `rng` layer by layer, input side first. The input is data, so the
    network has input_grad=False: `model.backward(dout)` sets every .grad and returns None.
    """
    if isinstance(nin, bool) or not isinstance(nin, Integral) or nin < 1:
        raise ValueError(f"mlp: nin, the number of inputs, must be a positive integer, got {nin!r}")
    if isinstance(nouts, (str, bytes)) or not isinstance(nouts, Sequence) or not nouts:
        raise ValueError(
            f"mlp: nouts must be a non-empty list of layer widths ending with the number of outputs, "
            f"e.g. [128, 10]; got {nouts!r}"
        )
    for width in nouts:
        if isinstance(width, bool) or not isinstance(width, Integral) or width < 1:
            raise ValueError(f"mlp: every width in nouts must be a positive integer, got {width!r} in {list(nouts)}")
    _init.check_init_args(nin, nouts[0], rng, caller="mlp")
    if isinstance(init, str):
        _check_init_name(init, "mlp")
    if isinstance(activation, str):
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"mlp: unknown activation {activation!r}; use one of {sorted(_ACTIVATIONS)} or a layer class like ReLU"
            )
        activation = _ACTIVATIONS[activation]
    elif not callable(activation):
        raise TypeError(f"mlp: activation must be a name or a layer class like ReLU, got {type(activation).__name__}")
    if isinstance(dropout, bool) or not isinstance(dropout, Real) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"mlp: dropout is the probability of dropping a hidden unit, in [0, 1); got {dropout!r}")
    layers: list[Layer] = []
    widths = [int(nin), *(int(width) for width in nouts)]
    for i, (d_in, d_out) in enumerate(zip(widths[:-1], widths[1:])):
        # The first layer is fed the data: no dL/dX to compute (it would cost a matrix product).
        layers.append(Linear(d_in, d_out, rng, init=init, input_grad=i > 0))
        if i < len(nouts) - 1:  # hidden layer; the last Linear gives the logits
            layers.append(activation())
            if dropout:
                layers.append(Dropout(dropout, rng))
    return Sequential(*layers)
