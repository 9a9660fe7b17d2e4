"""Call a learner's function on one check case and record what happened, as JSON-safe data.

This module is the only part of a check that runs next to the learner's code. It needs nothing
but the standard library and NumPy. The grader's kernel does not call this module's functions but a
`seal()`ed copy of them, made before the first student cell runs (private globals, builtins and the
library functions it calls), so a notebook that wraps or patches `observe` or what it uses changes
nothing, and `tampering` names what it replaced. The verdict is always computed elsewhere, by
`_core.Exercise.verdict`, and rests on values: e.g. whether an argument changed is decided by comparing
its digest after the call (`arg_digests`) with the digest of what the grader sent.

An observation is a dict:
    {"output": <encoded return value>, "after": [digest of each argument's arrays after the call, or None]}
or  {"error": {"type": "ValueError", "message": "...", "not_implemented": False}}
A call that runs past its time limit gives {"error": {"type": "TimeLimit", ..., "time_limit": seconds}};
kind="calls" calls the function once per argument tuple of the case (args is a tuple of them, kwargs shared) and
records the list of outputs: a check can then compare calls, e.g. that the same rng state gives the same result.
kind="nodes" adds {"recursion": {"function": name, "depth": n}}, the deepest nesting of any one
function of the learner's during the call (1 when nothing recursed), and {"unwatched": "sys.setprofile"}
when the learner's code switched that watch off. Readers ignore keys they do not know.
"""

from __future__ import annotations

import _thread
import base64
import builtins
import contextlib
import copy
import gc
import hashlib
import math
import os
import signal
import sys
import threading
import time
import types
import warnings

import numpy as np

# What a check calls outside this file, bound when the module runs: a sealed copy (see seal) keeps
# the functions as they were before any student cell, whatever a notebook rebinds later.
_deepcopy = copy.deepcopy
_errstate = np.errstate
_catch_warnings, _simplefilter = warnings.catch_warnings, warnings.simplefilter
_setprofile, _getprofile = sys.setprofile, sys.getprofile
_signal, _setitimer, _SIGALRM, _ITIMER_REAL = (
    signal.signal,
    getattr(signal, "setitimer", None),
    getattr(signal, "SIGALRM", None),
    getattr(signal, "ITIMER_REAL", None),
)
_current_thread, _main_thread = threading.current_thread, threading.main_thread
_monotonic = time.monotonic
_nullcontext = contextlib.nullcontext
_sha256, _b64encode, _b64decode = hashlib.sha256, base64.b64encode, base64.b64decode
_isfinite = math.isfinite
_gc_disable, _gc_enable, _gc_isenabled = gc.disable, gc.enable, gc.isenabled
_ndarray, _generic, _ascontiguousarray, _isnan = np.ndarray, np.generic, np.ascontiguousarray, np.isnan
# Calls that stop the recursion watch from seeing the learner's calls (a profile hook replaced, a thread
# that runs without one): made during a watched call, they are reported as "unwatched".
_UNWATCHING = {
    id(sys.setprofile): "sys.setprofile",
    id(sys.settrace): "sys.settrace",
    id(_thread.start_new_thread): "a new thread",
}

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
    if not seconds or _setitimer is None or _current_thread() is not _main_thread():
        yield
        return
    armed = [True]

    def on_alarm(signum, frame):
        if armed[0]:
            raise _OutOfTime()

    previous = _signal(_SIGALRM, on_alarm)
    old_delay, old_interval = _setitimer(_ITIMER_REAL, seconds)
    started = _monotonic()
    try:
        yield
    finally:
        armed[0] = False
        _setitimer(_ITIMER_REAL, 0)
        _signal(_SIGALRM, previous)
        if old_delay:  # someone else's timer (pytest-timeout, say) keeps running
            _setitimer(_ITIMER_REAL, max(old_delay - (_monotonic() - started), 1e-3), old_interval)


# Code whose recursion is not the learner's: this file, NumPy, and bpkit's own modules (the Value class).
_HARNESS_FILE = os.path.abspath(__file__)
_NUMPY_DIR = os.path.dirname(os.path.abspath(np.__file__)) + os.sep
_BPKIT_DIR = os.path.dirname(os.path.dirname(_HARNESS_FILE))
RECURSION_WATCH_MAX_NODES = 5_000  # profiling every call is slow: watch the small graphs, where it is cheap


_dirname = os.path.dirname


def _not_the_learners(filename: str) -> bool:
    return filename == _HARNESS_FILE or filename.startswith(_NUMPY_DIR) or _dirname(filename) == _BPKIT_DIR


@contextlib.contextmanager
def _recursion_watch(record: dict):
    """Record in `record` the deepest nesting of any one function (not bpkit's, not NumPy's) in the block."""
    depth: dict = {}
    own: dict = {}
    deepest = [1, ""]
    watching = [True]

    def profile(frame, event, arg):
        if event == "c_call":
            unwatching = _UNWATCHING.get(id(arg))
            if unwatching is not None and watching[0]:  # not our own call that ends the watch
                record["unwatched"] = unwatching
        elif event == "call":
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

    previous = _getprofile()
    _setprofile(profile)
    try:
        yield
    finally:
        watching[0] = False
        if _getprofile() is not profile:  # switched off (and maybe on again) where no c_call was seen
            record.setdefault("unwatched", "sys.setprofile")
        _setprofile(previous)
        record["function"], record["depth"] = deepest[1], deepest[0]


_Value = None  # the Value class as seal() found it; imported at first use where nothing sealed this module


def build_graph(spec: dict):
    """Turn {"__graph__": [(op, input_indices, data), ...]} into bpkit Values; returns the node list."""
    Value = _Value
    if Value is None:
        from bpkit.engine import Value

    # The cyclic garbage collector would walk every Value built so far, again and again, while a long
    # graph grows (about half the time of the 100,000-node chain): building makes no garbage, so pause it.
    collecting = _gc_isenabled()
    _gc_disable()
    try:
        return _build_nodes(Value, spec["__graph__"])
    finally:
        if collecting:
            _gc_enable()


def _build_nodes(Value, graph: list) -> list:
    nodes = []
    for op, inputs, data in graph:
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
    if isinstance(value, _ndarray):
        yield path, value
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _arrays_in(item, path + (i,))


def observe(
    fn,
    args: tuple,
    kwargs: dict,
    kind: str = "plain",
    strict_fp: bool = False,
    time_limit: float | None = DEFAULT_TIME_LIMIT,
) -> dict:
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
        call_args.append(arg if graph_nodes is not None else _deepcopy(arg))
    call_kwargs = _deepcopy(kwargs)
    recursion: dict = {}
    started = _monotonic()
    try:
        with _time_limit(time_limit):
            out = _call(fn, call_args, call_kwargs, kind, strict_fp, nodes, recursion)
    except _OutOfTime:
        return _out_of_time(time_limit)
    except NotImplementedError as exc:
        return {"error": {"type": "NotImplementedError", "message": str(exc)[:500], "not_implemented": True}}
    except Exception as exc:  # the learner's bug, reported by the verdict
        return {"error": {"type": type(exc).__name__, "message": str(exc)[:500], "not_implemented": False}}
    if time_limit and _monotonic() - started > time_limit:  # the alarm was switched off, or never armed
        return _out_of_time(time_limit)
    # Not a verdict on mutation but the values it rests on: the grader compares these digests with
    # the digests of the arguments it sent (a "nothing changed" list would be the kernel's word).
    observation = {"output": encode(out), "after": arg_digests(args, call_args)}
    if recursion:
        unwatched = recursion.pop("unwatched", None)
        observation["recursion"] = recursion
        if unwatched:
            observation["unwatched"] = unwatched
    return observation


def _out_of_time(time_limit: float) -> dict:
    return {
        "error": {
            "type": "TimeLimit",
            "message": f"did not return within {time_limit:g} s",
            "not_implemented": False,
            "time_limit": time_limit,
        }
    }


def arg_digests(originals, used) -> list:
    """Per positional argument: a digest of the arrays found in `originals`, read at the same places in
    `used` (None for an argument without arrays). Equal digests mean equal values, as np.array_equal
    with equal_nan sees them (-0.0 is 0.0, every NaN is one NaN), same shapes and dtypes.
    `arg_digests(args, args)` in the grader gives what an unchanged argument must show."""
    digests = []
    for original, now in zip(originals, used):
        found = list(_arrays_in(original))
        if not found:
            digests.append(None)
            continue
        digest = _sha256()
        for path, _ in found:
            digest.update(repr(path).encode())
            value = now
            try:
                for step in path:
                    value = value[step]
            except Exception:  # the caller's list lost an item: that is a change too
                value = None
            digest.update(_array_bytes(value))
        digests.append(digest.hexdigest())
    return digests


def _array_bytes(value) -> bytes:
    """The bytes that identify an array's values for arg_digests; any non-array gives one fixed marker."""
    if not isinstance(value, _ndarray):
        return b"|not an array|"
    head = f"|{value.dtype.str}|{value.shape}|".encode()
    if value.dtype.kind in "fc":
        value = value.copy()  # never change the learner's array
        value[value == 0] = 0  # -0.0 == 0.0
        value[_isnan(value)] = np.nan  # one NaN whatever its payload
    if value.dtype.kind in "biufc":
        return head + _ascontiguousarray(value).tobytes()
    return head + repr(value.tolist()).encode()


def _call(fn, call_args, call_kwargs, kind, strict_fp, nodes, recursion: dict):
    """The learner's call, and the iteration of what it returns (where its work may happen)."""
    watched = kind == "nodes" and nodes is not None and len(nodes) <= RECURSION_WATCH_MAX_NODES
    watch = _recursion_watch(recursion) if watched else _nullcontext()
    with watch:
        with _catch_warnings(), _errstate(**(STRICT if strict_fp else {})):
            if strict_fp:
                _simplefilter("error", RuntimeWarning)
            if kind == "calls":
                # Each call gets its own copies (observe deep-copied each tuple apart), in order.
                out = [fn(*one, **_deepcopy(call_kwargs)) for one in call_args]
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


# -- a copy of this module that a notebook cannot rebind ------------------------------------------

# Library functions a check depends on (module, dotted attribute): rebinding one is tampering, even
# though the sealed copy keeps calling the original.
WATCHED = (
    ("copy", "deepcopy"),
    ("numpy", "errstate"),
    ("numpy", "errstate.__enter__"),
    ("numpy", "errstate.__exit__"),
    ("warnings", "catch_warnings"),
    ("warnings", "simplefilter"),
    ("sys", "setprofile"),
    ("sys", "getprofile"),
    ("signal", "signal"),
    ("signal", "setitimer"),
    ("hashlib", "sha256"),
    ("json", "dumps"),
    ("pickle", "loads"),
    ("bpkit.engine", "Value"),
)


def _lookup(module: str, dotted: str):
    value = sys.modules.get(module)
    for name in dotted.split("."):
        value = getattr(value, name, None)
    return value


def _functions_of(namespace: dict) -> dict:
    """name -> (function, its code) for the plain functions in a module namespace."""
    return {name: (value, value.__code__) for name, value in namespace.items() if isinstance(value, types.FunctionType)}


def seal() -> dict:
    """A private copy of this module (its own globals and builtins) and a record of what it relies on.

    Call it before any student code runs: the copy's functions keep the library functions bound at
    that moment, and `tampering(sealed)` later names what a notebook replaced since.
    """
    import importlib.util

    import bpkit.engine  # noqa: F401 - graphs are built from the Value class as it is now

    module = sys.modules[__name__]
    code = importlib.util.find_spec(__name__).loader.get_code(__name__)
    private = {
        "__name__": __name__ + ".sealed",
        "__file__": module.__file__,
        "__package__": __package__,
        "__builtins__": dict(builtins.__dict__),
    }
    exec(code, private)  # noqa: S102 - this module's own code, in a namespace nobody else holds
    private["_Value"] = bpkit.engine.Value
    return {
        "name": __name__,
        "observe": private["observe"],
        "tampering": private["tampering"],
        "module": module,
        "private": private,
        "functions": _functions_of(vars(module)),
        "private_functions": _functions_of(private),
        "private_names": dict(private),
        "watched": {(m, a): (sys.modules.get(m), _lookup(m, a)) for m, a in WATCHED},
    }


def tampering(sealed: dict) -> list[str]:
    """What a notebook replaced since `seal()`: this module, its functions, or a library function checks use."""
    found = []
    module, module_name = sealed["module"], sealed["name"]
    if sys.modules.get(module_name) is not module:
        found.append(f"{module_name} was replaced in sys.modules")
    for name, (function, code) in sealed["functions"].items():
        if vars(module).get(name) is not function:
            found.append(f"{module_name}.{name} was replaced")
        elif function.__code__ is not code:
            found.append(f"the code of {module_name}.{name} was replaced")
    private = sealed["private"]
    changed = [name for name, value in sealed["private_names"].items() if private.get(name) is not value]
    changed += [name for name, (function, code) in sealed["private_functions"].items() if function.__code__ is not code]
    if changed:
        found.append(f"the grader's private copy of the checks was changed ({', '.join(sorted(set(changed))[:5])})")
    for (module_name, attribute), (owner, value) in sealed["watched"].items():
        if sys.modules.get(module_name) is not owner or _lookup(module_name, attribute) is not value:
            found.append(f"{module_name}.{attribute} was replaced")
    return found


def encode(value):
    """Encode a return value as JSON-safe data, tagging what JSON cannot hold."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else {"__float__": repr(float(value))}
    if isinstance(value, float):
        return value if _isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, _generic) and value.dtype.kind in "biuf":
        return {"__npscalar__": value.dtype.str, "value": encode(value.item())}
    if isinstance(value, _ndarray):
        if value.dtype.kind not in "biuf":
            return {"__unknown__": f"ndarray of dtype {value.dtype}", "repr": repr(value)[:300]}
        if value.size > MAX_ELEMENTS:
            return {"__unknown__": "ndarray", "repr": f"array of shape {value.shape} (too large to check)"}
        data = _ascontiguousarray(value)  # 1-D at least: a 0-d array comes back with shape (1,)
        return {
            "__ndarray__": _b64encode(data.tobytes()).decode("ascii"),
            "dtype": data.dtype.str,
            "shape": list(value.shape),  # so the shape is the value's own: () stays ()
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
