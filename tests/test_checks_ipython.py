"""bpkit/checks/_ipython.py: in IPython, a cell that calls an unwritten exercise shows one line naming it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from bpkit.checks import _ipython
from bpkit.notebook import stub_exercise, stub_line


def run_in_ipython(script: str) -> dict:
    """Run script in a fresh process with an IPython shell; it prints one JSON line last."""
    prelude = textwrap.dedent("""
        import io, json, contextlib
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance(colors="nocolor")
        def run(source):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                result = shell.run_cell(source)
            error = result.error_in_exec
            return {"shown": out.getvalue(), "error": type(error).__name__ if error else None}
    """)
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_stub_message_names_its_exercise():
    assert stub_exercise("weighted_sum: your code here") == "weighted_sum"
    assert stub_exercise("weighted_sum: your code here, or not") is None
    assert stub_exercise("not implemented") is None
    source = stub_line("relu")
    assert stub_exercise(source[source.index('"') + 1 : source.rindex('"')]) == "relu"


def test_outside_ipython_nothing_is_registered():
    assert _ipython.register() is False  # pytest runs no IPython shell


def test_a_stub_error_shows_one_line_and_stays_an_error():
    result = run_in_ipython(f"""
        from bpkit import checks
        run('''def relu(z):\\n{stub_line("relu", "    ")}''')
        print(json.dumps(run("relu(1.0)")))
    """)
    assert result == {"shown": _ipython.waiting_line("relu") + "\n", "error": "NotImplementedError"}


def test_another_not_implemented_error_keeps_its_traceback():
    result = run_in_ipython("""
        from bpkit import checks
        print(json.dumps(run("def f():\\n    raise NotImplementedError('later')\\nf()")))
    """)
    assert result["error"] == "NotImplementedError"
    assert "NotImplementedError: later" in result["shown"] and "f()" in result["shown"]  # the frames are shown
    assert "Waiting for" not in result["shown"]


def test_someone_elses_custom_handler_is_left_in_place():
    result = run_in_ipython("""
        shell.set_custom_exc((ZeroDivisionError,), lambda *args, **kwargs: print("theirs"))
        from bpkit.checks import _ipython
        print(json.dumps({"registered": _ipython.register(), "kept": shell.custom_exceptions == (ZeroDivisionError,)}))
    """)
    assert result == {"registered": False, "kept": True}


def test_registering_twice_keeps_one_handler():
    result = run_in_ipython("""
        from bpkit.checks import _ipython
        print(json.dumps({"again": _ipython.register(), "handled": [e.__name__ for e in shell.custom_exceptions]}))
    """)
    assert result == {"again": True, "handled": ["NotImplementedError"]}
