"""Steps 2-4 of grading: start the sandbox, run the student's cells, then observe each exercise.

The kernel gets the student's cells one at a time, each with what is left of the cells' budget;
then, per exercise, the checker's cases (drawn from the run's secret seed) and a deadline. What
comes back is recorded in a Run; nothing in it has been judged yet.
"""

from __future__ import annotations

import base64
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path

from bpkit.grading.channel import Channel, ChannelClosed, ChannelTimeout, ReplyTooLarge
from bpkit.grading.limits import Limits
from bpkit.grading.sandbox import Sandbox
from bpkit.grading.submission import cell_label

PROBE_SECONDS = 5.0  # how long an interrupted kernel gets to answer again before it is killed
START_SECONDS = 60.0


@dataclass
class Options:
    """How each submission is run (from the command line)."""

    timeout: float
    memory_mb: int
    sandboxed: bool = True
    fork_server: bool = True


@dataclass
class Run:
    """What happened in the kernel: cell errors, where it stopped, and the observations."""

    cell_errors: list[tuple[str, str, str]] = field(default_factory=list)  # (cell label, ename, evalue)
    error_at: dict[int, str] = field(default_factory=dict)  # notebook cell index -> "SyntaxError: ..."
    stopped: str | None = None  # why the student's cells did not all run
    stopped_status: str = "error"  # timeout or error: the status of exercises the run never reached
    stopped_at: int | None = None  # notebook cell index where the run stopped; -1: no kernel left to check with
    observations: dict[str, list] = field(default_factory=dict)  # exercise id -> observation per case
    missing: dict[str, str] = field(default_factory=dict)  # exercise id -> "none" or the type found
    unchecked: dict[str, tuple[str, str]] = field(default_factory=dict)  # exercise id -> (status, reason)
    kernel_cpu: float = 0.0  # CPU seconds of the submission's kernel (for benchmarks)


class _Died(Exception):
    pass


def run_submission(
    cells, defined, exercises, cases_of, workdir: Path, view, log_path: Path, options: Options, forkserver=None
) -> Run:
    """Run one submission in a fresh sandbox (a child of the fork server when there is one); the
    sandbox is always gone when this returns."""
    run = Run()
    limits = Limits(options.memory_mb * 2**20)
    if forkserver is not None:
        box = Sandbox(limits, log_path, forked=forkserver.spawn(workdir, limits))
    else:
        box = Sandbox(limits, log_path, view=view, submission=workdir)
    deadline = time.monotonic() + options.timeout
    cells_deadline = deadline - min(options.timeout / 4, 30.0)  # the checks keep a quarter (<= 30 s)
    channel = Channel(box.process)
    try:
        try:
            channel.receive("ready", time.monotonic() + START_SECONDS)
        except (ChannelClosed, ChannelTimeout, ReplyTooLarge) as exc:
            said = _log_tail(log_path)
            run.stopped = (box.killed_for and f"the kernel was stopped before it started: {box.killed_for}") or (
                f"the kernel did not start ({type(exc).__name__}; kernel log: {said or 'empty'}); "
                f"a kernel needs a few hundred MB (--memory-mb is {options.memory_mb})"
            )
            run.stopped_at = -1
            return run
        _run_cells(box, channel, cells, run, cells_deadline)
        if run.stopped_at != -1:
            _run_checks(box, channel, exercises, cases_of, defined, run, deadline)
        return run
    finally:
        box.close()
        run.kernel_cpu = getattr(box, "cpu", 0.0)


def _log_tail(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(handle.tell() - 2000, 0))
            lines = [line for line in handle.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return " / ".join(lines[-2:])


def _ask(box: Sandbox, channel: Channel, message: dict, deadline: float) -> tuple[dict | None, str | None]:
    """Send a request and wait for its reply: (reply, None), or (None, "timeout" / "died" / "too-large")."""
    try:
        nonce = channel.send(message, deadline)
        return channel.receive(nonce, deadline), None
    except ChannelTimeout:
        return None, "timeout"
    except ReplyTooLarge as exc:
        box.kill(f"it sent a reply of {exc}, over the grader's limit")
        return None, "too-large"
    except ChannelClosed:
        return None, "died"


def _died(box: Sandbox, what: str, options_mb: int) -> str:
    if box.killed_for:
        return f"the kernel was stopped while {what}: {box.killed_for}"
    return f"the kernel died while {what} (os._exit, a crash, or more memory than the {options_mb} MB cap)"


def _run_cells(box, channel, cells, run: Run, cells_deadline: float) -> None:
    """Run the student's cells in order within their share of the budget; record errors and stops."""
    for index, source in cells:
        label = cell_label(index + 1, source)
        reply, problem = _ask(
            box, channel, {"op": "cell", "source": source}, max(cells_deadline, time.monotonic() + 0.05)
        )
        if problem == "timeout":
            run.stopped_status, run.stopped_at = "timeout", index
            if _recovers(box, channel):
                run.stopped = f"the notebook ran out of time in {label}, which was interrupted"
            else:
                run.stopped = f"the notebook ran out of time in {label} and did not respond to an interrupt"
                run.stopped_at = -1
            return
        if problem is not None:
            run.stopped = _died(box, f"running {label}", box.limits.memory_bytes // 2**20)
            run.stopped_at = -1
            return
        error = reply.get("error")
        if isinstance(error, dict):
            ename, evalue = str(error.get("ename", "Error"))[:100], str(error.get("evalue", ""))[:1000]
            run.cell_errors.append((label, ename, evalue))
            run.error_at[index] = f"{label} raised {ename}: {evalue}"


def _recovers(box, channel) -> bool:
    """After a timeout: interrupt the kernel; does it answer again within PROBE_SECONDS?"""
    box.interrupt()
    reply, problem = _ask(box, channel, {"op": "cell", "source": "pass"}, time.monotonic() + PROBE_SECONDS)
    if problem is None:
        return True
    box.kill()
    return False


def _run_checks(box, channel, exercises, cases_of, defined, run: Run, deadline: float) -> None:
    """One check request per exercise; a hung or dead kernel is recorded against the exercises left."""
    for position, exercise in enumerate(exercises):
        if run.stopped_at is not None and defined.get(exercise.id, -1) >= run.stopped_at:
            run.unchecked[exercise.id] = (run.stopped_status, f"not reached: {run.stopped}")
            continue
        share = (deadline - time.monotonic()) / (len(exercises) - position)
        if share <= 0:
            run.unchecked[exercise.id] = ("timeout", "not checked: the time limit was used up before this exercise")
            continue
        try:
            limit = getattr(exercise, "time_limit", None)
            shipped = pickle.dumps(
                [(c.args, c.kwargs, exercise.kind, exercise.strict_fp, limit) for c in cases_of[exercise.id]]
            )
        except Exception as exc:  # a checker whose cases cannot travel: the course's bug, not the student's
            run.unchecked[exercise.id] = ("error", f"the checker's cases could not be sent to the kernel ({exc})")
            continue
        request = {"op": "check", "exercise": exercise.id, "cases": base64.b64encode(shipped).decode("ascii")}
        reply, problem = _ask(box, channel, request, time.monotonic() + share)
        if problem == "timeout":
            run.unchecked[exercise.id] = (
                "timeout",
                f"your function did not return within {share:.1f} s (an endless loop?)",
            )
            if not _recovers(box, channel):
                for rest in exercises[position + 1 :]:
                    run.unchecked[rest.id] = ("timeout", f"not checked: the kernel hung while checking {exercise.id}")
                return
            continue
        if problem == "too-large":
            run.unchecked[exercise.id] = (
                "error",
                "the result was too large to record (over 16 MB): return the value the exercise asks for",
            )
            for rest in exercises[position + 1 :]:
                run.unchecked[rest.id] = (
                    "error",
                    f"not checked: the kernel was stopped after {exercise.id} sent too much data",
                )
            return
        if problem is not None:
            died = _died(box, f"checking {exercise.id}", box.limits.memory_bytes // 2**20)
            for rest in exercises[position:]:
                run.unchecked[rest.id] = ("error", died if rest is exercise else f"not checked: {died}")
            return
        if "missing" in reply:
            run.missing[exercise.id] = str(reply["missing"])[:100]
        elif isinstance(reply.get("failed"), dict):
            failed = reply["failed"]
            run.unchecked[exercise.id] = (
                "error",
                f"the checks could not run in this notebook: {failed.get('ename')}: {failed.get('evalue')}",
            )
        elif isinstance(reply.get("observations"), list):
            run.observations[exercise.id] = reply["observations"]
        else:
            run.unchecked[exercise.id] = ("error", "the kernel's reply could not be read")
