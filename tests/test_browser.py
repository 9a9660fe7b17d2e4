"""Real-browser tests: the course opened in JupyterLab, run through the UI in headless Chromium.

For each notebook: open it, Run menu -> Run All Cells, wait until the kernel settles, then check
what a learner sees. Solution notebooks: no error output, every check prints its pass line (one
is visible on the page), every widget view rendered with a plot, and dragging a slider redraws
the plot. The learner's lesson: the first check says "not implemented yet". A screenshot per
notebook goes to artifacts/browser/ (<name>_failed.png when a run could not finish).

Needs /usr/bin/chromium (`make browser-deps`) and playwright; skipped with the reason otherwise.
One JupyterLab server (random port and token, root_dir = the repository) serves the notebooks,
which run two at a time (one kernel per core), each in its own browser context; the self-test
runs the same machinery on a notebook written to a temporary folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from browser_support import (
    NOT_IMPLEMENTED,
    PASS_LINE,
    LabServer,
    browser_unavailable_reason,
    error_outputs,
    launch_chromium,
    run_notebooks,
)

_REASON = browser_unavailable_reason()


def needs_browser(test):
    """Mark a test as a browser test, skipped (with the reason) when Chromium or playwright is missing."""
    return pytest.mark.browser(pytest.mark.skipif(_REASON is not None, reason=_REASON or "")(test))


REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "artifacts" / "browser"
PARALLEL = min(2, os.cpu_count() or 1)  # one notebook kernel per core, at most two


def _widget_solutions() -> list[str]:
    """Solution notebooks that show an explorer (lessons 07, 09, 10, 12)."""
    return sorted(
        f"solutions/{p.name}" for p in (REPO / "solutions").glob("*.ipynb") if "bpkit.widgets" in p.read_text()
    )


SOLUTIONS = ["solutions/01_neurons.ipynb"] + _widget_solutions()
LEARNER = "lessons/01_neurons.ipynb"


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium for the module."""
    from playwright.sync_api import sync_playwright

    manager = sync_playwright().start()
    browser = launch_chromium(manager)
    yield browser
    browser.close()
    manager.stop()


@pytest.fixture(scope="module")
def lab(tmp_path_factory, request):
    """JupyterLab serving the repository; ended (kernels, then its process group) at module end."""
    server = LabServer(root_dir=REPO, work_dir=tmp_path_factory.mktemp("lab"))
    request.addfinalizer(server.stop)
    return server.start()


@pytest.fixture(scope="module")
def course(lab, chromium):
    """Every notebook under test, run in the browser and observed (path -> Observation)."""
    # Later lessons train more: start them first so that the two lanes finish at about the same time.
    paths = [p for p in sorted(SOLUTIONS, reverse=True) + [LEARNER] if (REPO / p).exists()]
    results = run_notebooks(chromium, lab, paths, parallel=PARALLEL, screenshot_dir=ARTIFACTS)
    for path, obs in results.items():
        print(f"{path}: run and observed after {obs.seconds:.1f} s" + (f" ({obs.failure})" if obs.failure else ""))
    return results


def _observed(course, path):
    """The observation for `path`; skip when the notebook does not exist yet, fail when the run broke."""
    if not (REPO / path).exists():
        pytest.skip(f"{path} does not exist yet")
    obs = course[path]
    assert obs.failure is None, f"{path}: {obs.failure} (see artifacts/browser/)"
    return obs


def _assert_widgets_work(obs) -> None:
    """Every widget view rendered with a plot, and dragging a slider redrew it."""
    assert obs.widgets_rendered == obs.widget_outputs, (
        f"{obs.path}: {obs.widget_outputs} widget outputs but {obs.widgets_rendered} rendered"
    )
    assert obs.redraws == ["redrawn"] * obs.widget_outputs, f"{obs.path}: {obs.redraws}"


# ---------------------------------------------------------------------------------------------
# The machinery on its own
# ---------------------------------------------------------------------------------------------


def test_skip_reason_says_how_to_get_chromium(monkeypatch):
    import browser_support

    monkeypatch.setattr(browser_support, "CHROMIUM", Path("/nonexistent/chromium"))
    reason = browser_support.browser_unavailable_reason()
    assert reason is not None and "make browser-deps" in reason


@needs_browser
def test_machinery_on_a_scratch_notebook(tmp_path, chromium):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("print('✔ scratch passed (1 cases)')"),
        nbformat.v4.new_code_cell("from bpkit.widgets import depth_init_explorer; depth_init_explorer()"),
        nbformat.v4.new_code_cell("1 / 0"),
    ]
    nbformat.write(nb, tmp_path / "scratch.ipynb")
    server = LabServer(root_dir=tmp_path, work_dir=tmp_path / "_lab")
    try:
        server.start()
        # The overrides that keep runs read-only reached JupyterLab (they become the schema defaults).
        docmanager = server.request("lab/api/settings/@jupyterlab/docmanager-extension:plugin")
        assert docmanager["schema"]["properties"]["autosave"]["default"] is False
        obs = run_notebooks(chromium, server, ["scratch.ipynb"], screenshot_dir=tmp_path / "shots")["scratch.ipynb"]
        assert server.api("kernels") == []  # its kernel was shut down once observed
    finally:
        server.stop()
    assert server.process.returncode is not None  # the server is gone
    assert obs.failure is None, obs.failure
    # The deliberate error is seen, with its exception name, and nothing else failed.
    errors = [{key: e[key] for key in ("cell", "ename", "evalue")} for e in error_outputs(obs.cells)]
    assert errors == [{"cell": 2, "ename": "ZeroDivisionError", "evalue": "division by zero"}]
    assert obs.pass_line_visible and not obs.not_implemented_visible
    _assert_widgets_work(obs)
    assert obs.widget_outputs == 1
    assert obs.unsaved
    assert obs.screenshot is not None and obs.screenshot.stat().st_size > 10_000


# ---------------------------------------------------------------------------------------------
# The course
# ---------------------------------------------------------------------------------------------


@needs_browser
@pytest.mark.parametrize("path", SOLUTIONS)
def test_solution_runs_cleanly_in_jupyterlab(course, path):
    obs = _observed(course, path)
    errors = error_outputs(obs.cells)
    assert errors == [], f"{path}: error outputs {errors}"
    code = [(i, c) for i, c in enumerate(obs.cells) if c["type"] == "code" and c["source"].strip()]
    unrun = [i for i, c in code if c["execution_count"] is None]
    assert unrun == [], f"{path}: cells {unrun} did not run"
    checks = [c for _, c in code if c["source"].strip().startswith("checks.")]
    for cell in checks:
        text = "".join(o.get("text", "") for o in cell["outputs"])
        assert PASS_LINE.search(text), f"{path}: check `{cell['source'].strip()}` printed {text!r}"
    assert obs.pass_line_visible or not checks, f"{path}: no check pass line visible"
    _assert_widgets_work(obs)
    # Autosave is off: the run's outputs stay in the browser, the notebook on disk is not rewritten.
    assert obs.unsaved, f"{path} was saved by the browser run"
    assert obs.screenshot is not None


def test_the_widget_notebooks_are_under_test():
    # The explorers are called from lessons 07, 09, 10 and 12; each such solution is in the list.
    expected = {
        f"solutions/{name}"
        for name in (
            "07_gradient_descent.ipynb",
            "09_vanishing_exploding.ipynb",
            "10_momentum.ipynb",
            "12_regularisation.ipynb",
        )
    }
    present = {p for p in expected if (REPO / p).exists()}
    assert present <= set(SOLUTIONS)


@needs_browser
def test_learner_lesson_shows_not_implemented_yet(course):
    obs = _observed(course, LEARNER)
    errors = error_outputs(obs.cells)
    assert errors, f"{LEARNER}: the stubs should make the first check fail"
    # Run All stops at the first failing cell (unless it is tagged raises-exception): it must be a
    # check saying "not implemented yet", and every error must be a stub or a check of a stub.
    assert NOT_IMPLEMENTED in (errors[0]["evalue"] or ""), f"{LEARNER}: first error {errors[0]}"
    assert all(e["ename"] in {"CheckFailure", "NotImplementedError"} for e in errors), errors
    # No traceback (issue 21): a demo cell waiting for an exercise and a check cell each show their one
    # message, never the stack of frames through the stub.
    plain = [re.sub(r"\x1b\[[0-9;]*m", "", line) for e in errors for line in e["traceback"]]  # colours off
    frames = [line for line in plain if any(mark in line for mark in ("Traceback (most recent", "Cell In[", 'File "'))]
    assert frames == [], f"{LEARNER}: tracebacks {frames}"
    assert obs.not_implemented_visible
    assert obs.unsaved and obs.screenshot is not None
