"""The process that runs inside each submission's sandbox: the student's cells, then the checks.

Started by the grader as `python -I -m bpkit.grading.runner` inside bubblewrap. It speaks a tiny
framed protocol on the pipes it was started with (8-byte big-endian length + UTF-8 JSON):

    grader -> runner   {"op": "cell", "nonce": ..., "source": "..."}
                       {"op": "check", "nonce": ..., "exercise": "id", "cases": "<base64 pickle>"}
    runner -> grader   {"nonce": ..., "error": null | {"ename": ..., "evalue": ...}}       (a cell)
                       {"nonce": ..., "missing": "none" | "<type>"}                         (a check)
                       {"nonce": ..., "observations": [<observation of case 0>, ...]}      (a check)

Nothing here is trusted by the grader. The student's code shares this process and can read or
rewrite anything in it; what it cannot do is know a request's nonce or inputs before they are sent
(both come from the grader's secret), nor see the expected answers (they never leave the grader).
So the only way to earn a mark is to return, for inputs drawn after the cells ran, what the right
function returns. The cells run through IPython, so magics, `display` and per-cell errors behave
as in JupyterLab; printed output and pictures are discarded (only errors matter for grading).
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import signal
import struct
import sys

HEADER = struct.Struct(">Q")
MAX_REQUEST_BYTES = 256 * 2**20


def _read_exact(stream, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise EOFError("the grader closed the channel")
        data += chunk
    return data


def read_frame(stream) -> dict:
    (size,) = HEADER.unpack(_read_exact(stream, HEADER.size))
    if size > MAX_REQUEST_BYTES:
        raise ValueError("request too large")
    return json.loads(_read_exact(stream, size).decode("utf-8"))


def write_frame(stream, message: dict) -> None:
    data = json.dumps(message, ensure_ascii=True).encode("ascii")
    stream.write(HEADER.pack(len(data)) + data)
    stream.flush()


def _describe(exc: BaseException) -> dict:
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not stop the report
        text = "<unprintable message>"
    return {"ename": type(exc).__name__, "evalue": text[:2000]}


def preload(template: bool) -> None:
    """What a kernel needs before its first cell: matplotlib on Agg, NumPy, IPython, the harness.
    The fork server's template (template=True) also loads what notebooks import and draws one figure
    (fonts, renderers): paid once per run there, it would only add to each lone sandbox's start."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from IPython.core.interactiveshell import InteractiveShell  # noqa: F401

    import bpkit.checks._harness  # noqa: F401
    import bpkit.checks.inputs  # noqa: F401 - functions that check cases pass as arguments

    if not template:
        return

    # bpkit's modules, and what creating the shell and a first run_cell import (the completer,
    # magics, the debugger's bdb...), and NumPy's random module, which NumPy loads only on first use.
    bpkit_modules = (
        "engine",
        "graph",
        "layers",
        "losses",
        "optim",
        "init",
        "gradcheck",
        "data",
        "train",
        "metrics",
        "functions",
        "diagnostics",
        "explore",
        "checks",
    )
    for name in (
        *(f"bpkit.{module}" for module in bpkit_modules),
        "IPython.core.completer",
        "IPython.core.magics",
        "IPython.core.oinspect",
        "IPython.core.application",
        "IPython.core.crashhandler",
        "IPython.core.logger",
        "IPython.core.history",
        "sqlite3",
        "bdb",
        "secrets",
        "numpy.random",
    ):
        try:
            __import__(name)
        except Exception:  # a module that cannot load here is the notebook's problem, reported per cell
            pass
    try:
        from bpkit.widgets import warm_up

        warm_up()
    except ImportError:
        pass
    fig, axes = plt.subplots(1, 2, figsize=(4, 2))
    axes[0].plot([0, 1], [0, 1], label="$x^2$")
    axes[0].legend()
    axes[0].set_title("warm-up")
    axes[1].imshow(np.eye(3))
    axes[1].contourf(np.eye(3))
    fig.canvas.draw()
    plt.close(fig)


def serve(request_fd: int, reply_fd: int, source: str | None, workdir: str | None, preloaded: bool = False) -> None:
    """Run one submission: copy its folder into place, then answer the grader's requests."""
    # SIGINT is how the grader stops a check past its time. A grader started in the background
    # (`bpkit grade ... &`, nohup, a cron job) passes SIGINT on as ignored, and Python then leaves it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # Keep the channel on private descriptors; the cells' own prints and child processes get
    # /dev/null on 0, 1 and 2, so nothing they write can be mistaken for a reply by accident.
    requests = os.fdopen(os.dup(request_fd), "rb", buffering=0)
    replies = os.fdopen(os.dup(reply_fd), "wb")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in {0, 1, request_fd, reply_fd} - {2}:
        os.dup2(null, fd)
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    if not preloaded:  # a child of the fork server has everything already
        preload(template=False)
    from IPython.core.interactiveshell import InteractiveShell

    from bpkit.checks import _harness

    if source:  # in the sandbox: work on a copy inside the size-capped /tmp, not on a bind of the host disk
        import shutil

        shutil.copytree(source, workdir, symlinks=True)
        os.chdir(workdir)
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"  # In/Out and %history as usual; no database file to create
    shell = InteractiveShell.instance(colors="nocolor", config=config)
    # Only the error's name and message go back to the grader: formatting a traceback (0.2 s of
    # CPU with IPython's stack_data) would be wasted on every stub that raises NotImplementedError.
    shell.showtraceback = shell.showsyntaxerror = lambda *args, **kwargs: None
    sys.path.insert(0, os.getcwd())  # as in Jupyter: modules next to the notebook can be imported
    os.dup2(null, 2)  # from here on the log is closed to the student's code: it cannot fill the grader's disk
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    # The loop's own functions, taken before the first cell: a cell that rebinds this module's names
    # (read_frame, _check...) changes nothing here.
    read, write, run_cell, check = read_frame, write_frame, _run_cell, _check
    write(replies, {"nonce": "ready"})
    while True:
        try:
            request = read(requests)
        except EOFError:
            return
        except KeyboardInterrupt:  # the grader's interrupt of a check that had just returned: no harm done
            continue
        nonce = request.get("nonce")
        if request.get("op") == "cell":
            write(replies, {"nonce": nonce, "error": run_cell(shell, request.get("source", ""))})
        elif request.get("op") == "check":
            try:
                reply = check(shell, _harness, request)
            except BaseException as exc:  # noqa: B036 - an interrupt of an endless function, sys.exit(), a broken
                # pickle or NumPy: reported as this exercise's failure; the kernel goes on to the next
                reply = {"failed": _describe(exc)}
            write(replies, {"nonce": nonce, **reply})
        else:
            return


def main(argv: list[str] | None = None) -> None:
    """`python -I -m bpkit.grading.runner --memory BYTES --fsize BYTES [--sandboxed]`: a submission's
    own process; in a sandbox it first becomes the sandbox's user, before anything of the student."""
    import argparse

    from bpkit.grading import limits

    parser = argparse.ArgumentParser(prog="bpkit.grading.runner")
    parser.add_argument("--memory", type=int, required=True)
    parser.add_argument("--fsize", type=int, default=limits.MAX_FILE_BYTES)
    parser.add_argument("--sandboxed", action="store_true")
    args = parser.parse_args(argv)
    limits.apply(args.memory, args.fsize)
    if args.sandboxed:
        limits.drop_privileges()
        os.makedirs(os.environ["HOME"], exist_ok=True)
    serve(0, 1, os.environ.get("BPKIT_SUBMISSION_SOURCE"), os.environ.get("BPKIT_SUBMISSION_DIR"))


def _run_cell(shell, source: str):
    try:
        result = shell.run_cell(source, store_history=True)
    except KeyboardInterrupt as exc:  # an interrupt between two statements IPython did not catch
        return _describe(exc)
    error = result.error_before_exec or result.error_in_exec
    return None if error is None else _describe(error)


def _seal_checks():
    """The harness as it is before any student cell: a private copy of `observe` and what it calls."""
    from bpkit.checks import _harness

    return _harness.seal()


# Sealed when this module is imported: in a lone kernel before serve() runs a cell, in the fork
# server's template before it forks any submission. A notebook that wraps or patches
# bpkit.checks._harness later changes nothing that _check calls, and _check reports what it replaced.
_SEALED = _seal_checks()
_loads, _dumps, _b64decode = pickle.loads, json.dumps, base64.b64decode


def _check(shell, harness, request: dict) -> dict:
    """Observe the learner's function on each case, with the sealed harness (`harness` is not called).

    Every observation of an exercise carries "tampered" (what was replaced) when the harness or a
    library function it relies on was replaced, before or during the calls: the grader fails it.
    """
    exercise_id = request.get("exercise", "")
    fn = shell.user_ns.get(exercise_id)
    if fn is None or not callable(fn):
        return {"missing": "none" if fn is None else type(fn).__name__}
    cases = _loads(_b64decode(request["cases"]))  # sent by the grader, the trusted side
    observe, tampering = _SEALED["observe"], _SEALED["tampering"]
    tampered = tampering(_SEALED)
    observations = []
    for args, kwargs, kind, strict_fp, time_limit in cases:
        try:
            observation = observe(fn, args, kwargs, kind, strict_fp, time_limit)
            _dumps(observation)  # fails here, not in write_frame, for a value JSON cannot hold
        except (TypeError, ValueError, RecursionError) as exc:
            observation = {
                "error": {
                    "type": type(exc).__name__,
                    "not_implemented": False,
                    "message": f"the result could not be recorded: {exc}"[:500],
                }
            }
        observations.append(observation)
    tampered += [found for found in tampering(_SEALED) if found not in tampered]  # replaced by the calls
    if tampered:
        for observation in observations:
            observation["tampered"] = [str(found)[:200] for found in tampered[:10]]
    return {"observations": observations}


if __name__ == "__main__":
    main()
