"""Call a learner's function on one check case and record what happened, as JSON-safe data.

This module is the only part of a check that runs next to the learner's code. It needs nothing
but the standard library and NumPy, because the grader executes its *source text* inside the
student's kernel (a student's monkeypatching of `bpkit.checks` cannot reach it) and reads back
only the JSON it produces. The verdict is always computed elsewhere, by `_core.judge`.

An observation is a dict:
    {"output": <encoded return value>, "mutated": [positions of array arguments changed]}
or  {"error": {"type": "ValueError", "message": "...", "not_implemented": False}}
"""
from __future__ import annotations

import base64
import copy
import math
import warnings

import numpy as np

MAX_ELEMENTS = 20_000_000  # larger return values are reported, not encoded
MAX_ITEMS = 200_000  # longest iterable we materialise (a minibatch generator, a node list)
# Underflow (exp(-2000) == 0) is harmless in a stable formula, so it stays allowed.
STRICT = {"over": "raise", "invalid": "raise", "divide": "raise", "under": "ignore"}


def build_graph(spec: dict):
    """Turn {"__graph__": [(op, input_indices, data), ...]} into bpkit Values; returns the node list."""
    from bpkit.engine import Value

    nodes = []
    for op, inputs, data in spec["__graph__"]:
        args = [nodes[i] for i in inputs]
        if op == "leaf":
            node = Value(data)
        elif op == "+":
            node = args[0] + args[1]
        elif op == "*":
            node = args[0] * args[1]
        elif op == "tanh":
            node = args[0].tanh()
        elif op == "exp":
            node = args[0].exp()
        elif op == "relu":
            node = args[0].relu()
        elif op == "pow":
            node = args[0] ** data
        else:
            raise ValueError(f"unknown op {op!r} in graph spec")
        nodes.append(node)
    return nodes


def _materialise(value):
    """Replace graph specs by real Value graphs (their root); returns (value, node list or None)."""
    if isinstance(value, dict) and "__graph__" in value:
        nodes = build_graph(value)
        return nodes[-1], nodes
    return value, None


def _arrays_in(value, path=()):
    if isinstance(value, np.ndarray):
        yield path, value
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _arrays_in(item, path + (i,))


def observe(fn, args: tuple, kwargs: dict, kind: str = "plain", strict_fp: bool = False) -> dict:
    """Call fn(*args, **kwargs) on copies; return the encoded output, or the error it raised.

    strict_fp: floating-point overflow, 0/0 and division by zero (and any RuntimeWarning) raise
    during the call, so an unstable formula fails even where its result happens to be right.
    """
    nodes = None
    call_args = []
    for arg in args:
        arg, graph_nodes = _materialise(arg)
        nodes = graph_nodes if graph_nodes is not None else nodes
        call_args.append(arg if graph_nodes is not None else copy.deepcopy(arg))
    call_kwargs = copy.deepcopy(kwargs)
    try:
        with warnings.catch_warnings(), np.errstate(**(STRICT if strict_fp else {})):
            if strict_fp:
                warnings.simplefilter("error", RuntimeWarning)
            out = fn(*call_args, **call_kwargs)
        if kind == "iterate":
            # A generator does its work only when iterated: consume it inside the try.
            items = []
            for item in out:
                items.append(item)
                if len(items) > MAX_ITEMS:
                    raise RuntimeError(f"the iterator yielded more than {MAX_ITEMS} items")
            out = items
        elif kind == "nodes":
            index = {id(node): i for i, node in enumerate(nodes or [])}
            out = [index.get(id(node), -1) for node in list(out)[: MAX_ITEMS + 1]]
    except NotImplementedError as exc:
        return {"error": {"type": "NotImplementedError", "message": str(exc)[:500], "not_implemented": True}}
    except Exception as exc:  # the learner's bug, reported by the judge
        return {"error": {"type": type(exc).__name__, "message": str(exc)[:500], "not_implemented": False}}
    mutated = []
    for i, (original, used) in enumerate(zip(args, call_args)):
        for path, before in _arrays_in(original):
            after = used
            for step in path:
                after = after[step]
            if not isinstance(after, np.ndarray) or after.shape != before.shape or not np.array_equal(
                after, before, equal_nan=True
            ):
                mutated.append(i)
                break
    return {"output": encode(out), "mutated": mutated}


def encode(value):
    """Encode a return value as JSON-safe data, tagging what JSON cannot hold."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else {"__float__": repr(float(value))}
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return {"__npscalar__": value.dtype.str, "value": encode(value.item())}
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            return {"__unknown__": f"ndarray of dtype {value.dtype}", "repr": repr(value)[:300]}
        if value.size > MAX_ELEMENTS:
            return {"__unknown__": "ndarray", "repr": f"array of shape {value.shape} (too large to check)"}
        data = np.ascontiguousarray(value)
        return {
            "__ndarray__": base64.b64encode(data.tobytes()).decode("ascii"),
            "dtype": data.dtype.str,
            "shape": list(data.shape),
        }
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value[: MAX_ITEMS + 1]]
    try:
        text = repr(value)[:300]
    except Exception:  # a broken __repr__ must not stop the report
        text = "<unprintable>"
    return {"__unknown__": type(value).__name__, "repr": text}


class Unknown:
    """A return value the check cannot compare (a string of its type and repr)."""

    def __init__(self, type_name: str, text: str):
        self.type_name = type_name
        self.text = text

    def __repr__(self) -> str:
        return f"<{self.type_name}: {self.text}>"


def decode(value):
    """Invert encode()."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__float__" in value:
        return float(value["__float__"])
    if "__npscalar__" in value:
        return np.dtype(value["__npscalar__"]).type(decode(value["value"]))
    if "__ndarray__" in value:
        raw = base64.b64decode(value["__ndarray__"])
        return np.frombuffer(raw, dtype=np.dtype(value["dtype"])).reshape(value["shape"]).copy()
    if "__tuple__" in value:
        return tuple(decode(v) for v in value["__tuple__"])
    if "__unknown__" in value:
        return Unknown(value["__unknown__"], value.get("repr", ""))
    raise ValueError(f"cannot decode {sorted(value)}")
