"""How an exercise the learner has not written yet shows in IPython: one line, not a traceback.

A released lesson's exercise is a stub, `raise NotImplementedError("<id>: your code here")`. Run All
on a fresh lesson runs every demo cell that calls it, and each would print a traceback through the
stub. `register()` (called when `bpkit.checks` is imported in IPython) shows such an error as one line
naming the exercise the cell waits for. The error stays an error: the cell still stops there, the
kernel still reports it (so the cell's `raises-exception` tag lets Run All go on, and the grader and
`bpkit progress` see it as before); only its display changes. Any other NotImplementedError keeps its
full traceback. A check cell needs none of this: `CheckFailure` renders as its message already.
"""

from __future__ import annotations

import sys

from bpkit.notebook import stub_exercise

HANDLED = (NotImplementedError,)


def waiting_line(exercise_id: str) -> str:
    """The one line a cell shows while the exercise it calls is still the stub."""
    return (
        f"Waiting for exercise {exercise_id}: write it in its cell above and run that cell, then run this cell again."
    )


def show_not_implemented(shell, etype, value, tb, tb_offset=None) -> None:
    """IPython custom exception handler: the stub's error as one line, anything else as usual."""
    exercise_id = stub_exercise(str(value))
    if exercise_id is None:
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)
        return
    # _showtraceback is the hook each kernel implements (ipykernel sends an `error` message with it).
    shell._showtraceback(etype, value, [waiting_line(exercise_id)])


def register() -> bool:
    """Install the handler in the running IPython shell, if any; True when it is installed."""
    ipython = sys.modules.get("IPython")  # not imported: not in IPython, and no need to import it
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return False
    if shell.custom_exceptions not in ((), HANDLED):
        return False  # IPython holds one custom handler: leave someone else's in place
    shell.set_custom_exc(HANDLED, show_not_implemented)
    return True
