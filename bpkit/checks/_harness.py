"""Call a learner's function on one check case and record what happened, as JSON-safe data.

This module is the only part of a check that runs next to the learner's code. It needs nothing
but the standard library and NumPy, because the grader executes its *source text* inside the
student's kernel (a student's monkeypatching of `bpkit.checks` cannot reach it) and reads back
only the JSON it produces. The verdict is always computed elsewhere, by `_core.Exercise.verdict`.

An observation is a dict:
    {"output": <encoded return value>, "mutated": [positions of array arguments changed]}
or  {"error": {"type": "ValueError", "message": "...", "not_implemented": False}}
A call that runs past its time limit gives {"error": {"type": "TimeLimit", ..., "time_limit": seconds}};
kind="calls" calls the function once per argument tuple of the case (args is a tuple of them, kwargs shared) and
records the list of outputs: a check can then compare calls, e.g. that the same rng state gives the same result.
kind="nodes" adds {"recursion": {"function": name, "depth": n}}, the deepest nesting of any one
function of the learner's during the call (1 when nothing recursed). Readers ignore keys they do not know.
"""
from __future__ import annotations

import base64
import contextlib
import copy
import math
import os
import sys
import threading
import time
import warnings

import numpy as np

MAX_ELEMENTS = 20_000_000  # larger return values are reported, not encoded
MAX_ITEMS = 200_000  # longest iterable we materialise (a minibatch generator, a node list)
# Underflow (exp(-2000) == 0) is harmless in a stable formula, so it stays allowed.
STRICT = {"over": "raise", "invalid": "raise", "divide": "raise", "under": "ignore"}
# Seconds one call may take before it is stopped (SIGALRM, main thread only): a slow answer gets a
# hint instead of an endless wait. Generous: every reference answer takes well under a second.
DEFAULT_TIME_LIMIT = 10.0


class _OutOfTime(BaseException):
    """Raised into the learner's code when its time is up (a BaseException: `except Exception` cannot eat it)."""


@contextlib.contextmanager
def _time_limit(seconds):
    """Stop the block with _OutOfTime after `seconds`; a no-op off the main thread or without setitimer."""
    import signal

    if not seconds or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return
    armed = [True]

    def on_alarm(signum, frame):
        if armed[0]:
            raise _OutOfTime()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if old_delay:  # someone else's timer (pytest-timeout, say) keeps running
            signal.setitimer(signal.ITIMER_REAL, max(old_delay - (time.monotonic() - started), 1e-3), old_interval)


# Code whose recursion is not the learner's: this file, NumPy, and bpkit's own modules (the Value class).
_HARNESS_FILE = os.path.abspath(__file__)
_NUMPY_DIR = os.path.dirname(os.path.abspath(np.__file__)) + os.sep
_BPKIT_DIR = os.path.dirname(os.path.dirname(_HARNESS_FILE))
RECURSION_WATCH_MAX_NODES = 5_000  # profiling every call is slow: watch the small graphs, where it is cheap


def _not_the_learners(filename: str) -> bool:
    return filename == _HARNESS_FILE or filename.startswith(_NUMPY_DIR) or os.path.dirname(filename) == _BPKIT_DIR


@contextlib.contextmanager
def _recursion_watch(record: dict):
    """Record in `record` the deepest nesting of any one function (not bpkit's, not NumPy's) in the block."""
    depth: dict = {}
    own: dict = {}
    deepest = [1, ""]

    def profile(frame, event, arg):
        if event == "call":
            code = frame.f_code
            mine = own.get(code)
            if mine is None:
                mine = own[code] = not _not_the_learners(code.co_filename)
            if mine:
                n = depth.get(code, 0) + 1
                depth[code] = n
                if n > deepest[0]:
                    deepest[0], deepest[1] = n, code.co_name
        elif event == "return":
            code = frame.f_code
            if own.get(code):
                depth[code] = depth.get(code, 1) - 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield
    finally:
        sys.setprofile(previous)
        record["function"], record["depth"] = deepest[1], deepest[0]


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


def observe(fn, args: tuple, kwargs: dict, kind: str = "plain", strict_fp: bool = False,
            time_limit: float | None = DEFAULT_TIME_LIMIT) -> dict:
    """Call fn(*args, **kwargs) on copies; return the encoded output, or the error it raised.

    strict_fp: floating-point overflow, 0/0 and division by zero (and any RuntimeWarning) raise
    during the call, so an unstable formula fails even where its result happens to be right.
    time_limit: seconds before the call (and the iteration of what it returns) is stopped.
    """
    nodes = None
    call_args = []
    for arg in args:
        arg, graph_nodes = _materialise(arg)
        nodes = graph_nodes if graph_nodes is not None else nodes
        call_args.append(arg if graph_nodes is not None else copy.deepcopy(arg))
    call_kwargs = copy.deepcopy(kwargs)
    recursion: dict = {}
    try:
        with _time_limit(time_limit):
            out = _call(fn, call_args, call_kwargs, kind, strict_fp, nodes, recursion)
    except _OutOfTime:
        return {"error": {"type": "TimeLimit", "message": f"did not return within {time_limit:g} s",
                          "not_implemented": False, "time_limit": time_limit}}
    except NotImplementedError as exc:
        return {"error": {"type": "NotImplementedError", "message": str(exc)[:500], "not_implemented": True}}
    except Exception as exc:  # the learner's bug, reported by the verdict
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
    observation = {"output": encode(out), "mutated": mutated}
    if recursion:
        observation["recursion"] = recursion
    return observation


def _call(fn, call_args, call_kwargs, kind, strict_fp, nodes, recursion: dict):
    """The learner's call, and the iteration of what it returns (where its work may happen)."""
    watched = kind == "nodes" and nodes is not None and len(nodes) <= RECURSION_WATCH_MAX_NODES
    watch = _recursion_watch(recursion) if watched else contextlib.nullcontext()
    with watch:
        with warnings.catch_warnings(), np.errstate(**(STRICT if strict_fp else {})):
            if strict_fp:
                warnings.simplefilter("error", RuntimeWarning)
            if kind == "calls":
                # Each call gets its own copies (observe deep-copied each tuple apart), in order.
                out = [fn(*one, **copy.deepcopy(call_kwargs)) for one in call_args]
            else:
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
            out = list(out)[: MAX_ITEMS + 1]
    if kind == "nodes":  # outside the watch: this loop is ours
        index = {id(node): i for i, node in enumerate(nodes or [])}
        out = [index.get(id(node), -1) for node in out]
    return out


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
