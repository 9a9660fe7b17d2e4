"""bpkit/grading/runner.py's serve loop in a plain subprocess over pipes (no sandbox, no bubblewrap).

The grader interrupts a check that runs past its share of the time with SIGINT. Issue 20: `serve`
caught only Exception around a check, so that interrupt ended the runner and every later exercise
of the notebook was lost. Here the runner must answer the interrupted check as failed and then
answer the next request, and the same for a function that calls sys.exit().
"""

from __future__ import annotations

import base64
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bpkit.checks._harness import encode
from bpkit.grading import runner
from bpkit.grading.channel import Channel

ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 60  # a runner imports IPython, NumPy and matplotlib before it says "ready"


@pytest.fixture(scope="module")
def served():
    """A runner (runner.serve on its stdin and stdout) and the grader's Channel to it, shared by the tests
    (each defines functions of its own names): one start is a few seconds of imports."""
    command = [sys.executable, "-c", "from bpkit.grading.runner import serve; serve(0, 1, None, None)"]
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,  # bpkit imported from this checkout
        # Started with SIGINT ignored, as a grader run in the background (`bpkit grade ... &`, nohup)
        # starts its kernels: the runner must still stop a check when interrupted.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    channel = Channel(process)
    try:
        channel.receive("ready", time.monotonic() + START_SECONDS)
        yield process, channel
    finally:
        process.kill()
        process.wait()
        process.stdin.close()
        process.stdout.close()


def ask(channel: Channel, message: dict, seconds: float = 30) -> dict:
    deadline = time.monotonic() + seconds
    return channel.receive(channel.send(message, deadline), deadline)


def check(exercise: str, *values: float) -> dict:
    """A check request as execute.py sends it: one case per value, no time limit of the harness's own."""
    cases = [((value,), {}, "plain", False, None) for value in values]
    return {"op": "check", "exercise": exercise, "cases": base64.b64encode(pickle.dumps(cases)).decode("ascii")}


def wait_for(path: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared: the function did not start"
        time.sleep(0.05)


def test_an_interrupted_check_fails_and_the_runner_answers_the_next_request(served, tmp_path):
    process, channel = served
    started = tmp_path / "started"  # written by the function once it runs
    cell = (
        f"def endless(x):\n    open({str(started)!r}, 'w').close()\n    while True:\n        pass\n\n"
        "def double(x):\n    return 2 * x"
    )
    assert ask(channel, {"op": "cell", "source": cell})["error"] is None
    deadline = time.monotonic() + 30
    nonce = channel.send(check("endless", 1.0), deadline)
    wait_for(started)  # the function is in its loop: the interrupt lands inside the check
    process.send_signal(signal.SIGINT)
    reply = channel.receive(nonce, deadline)
    assert reply["failed"]["ename"] == "KeyboardInterrupt", reply
    assert process.poll() is None, "the interrupt ended the runner"
    reply = ask(channel, check("double", 1.5, -2.0))
    assert [observation.get("output") for observation in reply["observations"]] == [encode(3.0), encode(-4.0)], reply
    assert ask(channel, {"op": "cell", "source": "x = double(21)"})["error"] is None


def test_a_function_that_calls_sys_exit_fails_its_check_only(served):
    process, channel = served
    cell = "import sys\n\ndef leaves(x):\n    sys.exit(3)\n\ndef double(x):\n    return 2 * x"
    assert ask(channel, {"op": "cell", "source": cell})["error"] is None
    reply = ask(channel, check("leaves", 1.0))
    assert reply["failed"]["ename"] == "SystemExit", reply
    assert process.poll() is None
    reply = ask(channel, check("double", 3.0))
    assert [observation.get("output") for observation in reply["observations"]] == [encode(6.0)], reply


def test_a_missing_or_uncallable_function_is_reported_as_missing(served):
    _, channel = served
    assert ask(channel, {"op": "cell", "source": "not_a_function = 3"})["error"] is None
    assert ask(channel, check("not_defined", 1.0))["missing"] == "none"
    assert ask(channel, check("not_a_function", 1.0))["missing"] == "int"


def test_a_cell_error_is_named_and_the_runner_goes_on(served):
    _, channel = served
    assert ask(channel, {"op": "cell", "source": "1 / 0"})["error"]["ename"] == "ZeroDivisionError"
    assert ask(channel, {"op": "cell", "source": "raise SystemExit(1)"})["error"]["ename"] == "SystemExit"
    assert ask(channel, {"op": "cell", "source": "y = 1"})["error"] is None


def test_frames_round_trip_and_oversized_requests_are_refused():
    import io

    stream = io.BytesIO()
    runner.write_frame(stream, {"nonce": "n", "source": "é"})
    stream.seek(0)
    assert runner.read_frame(stream) == {"nonce": "n", "source": "é"}
    with pytest.raises(ValueError, match="too large"):
        runner.read_frame(io.BytesIO(runner.HEADER.pack(runner.MAX_REQUEST_BYTES + 1)))
    with pytest.raises(EOFError):
        runner.read_frame(io.BytesIO(runner.HEADER.pack(10) + b"{}"))
