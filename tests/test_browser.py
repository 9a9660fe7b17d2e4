"""Real-browser tests: the course opened in JupyterLab, run through the UI in headless Chromium.

For each notebook: open it, Run menu -> Run All Cells, wait for the kernel, then check what a
learner sees. Solution notebooks: no error output, every check prints its pass line, every
widget view rendered with a plot, and dragging a slider redraws the plot. The learner's lesson:
the first check says "not implemented yet". A screenshot per notebook goes to artifacts/browser/.

Needs /usr/bin/chromium (`make browser-deps`) and playwright; skipped with the reason otherwise.
One JupyterLab server (random port and token, root_dir = the repository) serves the repository
notebooks; the self-test runs the same machinery on a notebook written to a temporary folder.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from browser_support import (
    LabServer,
    browser_unavailable_reason,
    document_is_unsaved,
    drag_first_slider,
    error_outputs,
    launch_chromium,
    open_notebook,
    read_cells,
    rendered_widget_views,
    run_all_cells,
    visible_output_text,
    wait_for_new_image,
    wait_until_finished,
    widget_image_src,
    widget_output_count,
    WIDGET_VIEW,
)

_REASON = browser_unavailable_reason()


def needs_browser(test):
    """Mark a test as a browser test, skipped (with the reason) when Chromium or playwright is missing."""
    return pytest.mark.browser(pytest.mark.skipif(_REASON is not None, reason=_REASON or "")(test))


REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "artifacts" / "browser"
VIEWPORT = {"width": 1400, "height": 1000}
PASS_LINE = re.compile(r"✔ \S+ passed")


def _widget_solutions() -> list[str]:
    """Solution notebooks that show an explorer (lessons 07, 09, 10, 12 when present)."""
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


@pytest.fixture
def page(chromium, lab):
    """A fresh browser context and page per notebook; its kernel is shut down afterwards."""
    context = chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    yield page
    context.close()
    lab.shutdown_kernels()  # frees the cores for the next notebook


def _workspace(path: str) -> str:
    """A workspace name per notebook, so each page opens exactly one document."""
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")


def _screenshot(page, path: str, anchor: str | None) -> Path:
    """Scroll `anchor` (a selector) into view when given and save the viewport as a PNG artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if anchor is not None and page.locator(anchor).count():
        page.locator(anchor).first.scroll_into_view_if_needed()
        time.sleep(0.3)  # let the scroll settle before the capture
    target = ARTIFACTS / (Path(path).parent.name + "_" + Path(path).stem + ".png")
    page.screenshot(path=str(target))
    return target


def _run_in_lab(page, lab: LabServer, path: str) -> list[dict]:
    """Open a notebook, run every cell from the Run menu, wait for the kernel; return the model cells.

    On a timeout the page is saved as artifacts/browser/<name>_failed.png to show where it stuck.
    """
    started = time.monotonic()
    try:
        open_notebook(page, lab, path, _workspace(path))
        run_all_cells(page)
        wait_until_finished(page)
    except Exception:
        _screenshot(page, path.replace(".ipynb", "_failed.ipynb"), None)
        raise
    print(f"{path}: opened and ran in {time.monotonic() - started:.1f} s")
    return read_cells(page)


def _check_widgets(page, cells: list[dict], path: str) -> None:
    """Every widget view rendered with a plot, and moving a slider redraws that plot."""
    expected = widget_output_count(cells)
    page.wait_for_function(
        "([sel, n]) => document.querySelectorAll(sel).length >= n", arg=[WIDGET_VIEW, expected], timeout=60_000
    )
    views = rendered_widget_views(page)
    assert views["rendered"] == expected, f"{path}: {expected} widget outputs but {views['rendered']} rendered"
    page.wait_for_function(
        "([sel, n]) => [...document.querySelectorAll(sel)].filter(v => v.querySelector('img')).length >= n",
        arg=[WIDGET_VIEW, expected], timeout=60_000,
    )
    for index in range(expected):
        before = widget_image_src(page, index)
        assert before and before.startswith("data:image/png"), f"{path}: widget {index} shows no plot"
        drag_first_slider(page, index)
        after = wait_for_new_image(page, before, index)
        assert after != before


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
    context = chromium.new_context(viewport=VIEWPORT)
    try:
        server.start()
        # The overrides that keep runs read-only reached JupyterLab (they become the schema defaults).
        docmanager = server.request("lab/api/settings/@jupyterlab/docmanager-extension:plugin")
        assert docmanager["schema"]["properties"]["autosave"]["default"] is False
        page = context.new_page()
        cells = _run_in_lab(page, server, "scratch.ipynb")
        # The deliberate error is seen, with its exception name, and nothing else failed.
        assert error_outputs(cells) == [{"cell": 2, "ename": "ZeroDivisionError", "evalue": "division by zero"}]
        assert PASS_LINE.search(visible_output_text(page))
        _check_widgets(page, cells, "scratch.ipynb")
        assert _screenshot(page, "scratch/scratch.ipynb", WIDGET_VIEW).stat().st_size > 10_000
    finally:
        context.close()
        server.stop()
    assert server.process.returncode is not None  # the server is gone


# ---------------------------------------------------------------------------------------------
# The course
# ---------------------------------------------------------------------------------------------


@needs_browser
@pytest.mark.parametrize("path", SOLUTIONS)
def test_solution_runs_cleanly_in_jupyterlab(lab, page, path):
    notebook = REPO / path
    if not notebook.exists():
        pytest.skip(f"{path} does not exist yet")
    cells = _run_in_lab(page, lab, path)

    errors = error_outputs(cells)
    assert errors == [], f"{path}: error outputs {errors}"
    unrun = [i for i, c in enumerate(cells) if c["type"] == "code" and c["source"].strip() and c["execution_count"] is None]
    assert unrun == [], f"{path}: cells {unrun} did not run"
    checks = [c for c in cells if c["type"] == "code" and c["source"].strip().startswith("checks.")]
    for cell in checks:
        text = "".join(o.get("text", "") for o in cell["outputs"])
        assert PASS_LINE.search(text), f"{path}: check `{cell['source'].strip()}` printed {text!r}"
    if checks:
        line = page.get_by_text(PASS_LINE).first
        line.scroll_into_view_if_needed()
        assert line.is_visible(), f"{path}: no check pass line visible"

    if widget_output_count(cells):
        _check_widgets(page, cells, path)
    _screenshot(page, path, WIDGET_VIEW if widget_output_count(cells) else ".jp-OutputArea-output")
    # Autosave is off: the run's outputs stay in the browser, the notebook on disk is not rewritten.
    assert document_is_unsaved(page), f"{path} was saved by the browser run"


@needs_browser
def test_learner_lesson_shows_not_implemented_yet(lab, page):
    notebook = REPO / LEARNER
    if not notebook.exists():
        pytest.skip(f"{LEARNER} does not exist yet")
    cells = _run_in_lab(page, lab, LEARNER)
    errors = error_outputs(cells)
    assert errors, f"{LEARNER}: the stubs should make the first check fail"
    # Run All stops at the first failing cell: it must be a check saying "not implemented yet".
    first = errors[0]
    assert "not implemented yet" in (first["evalue"] or ""), f"{LEARNER}: first error {first}"
    assert all(e["ename"] in {"CheckFailure", "NotImplementedError"} for e in errors), errors
    shown = page.get_by_text("not implemented yet").first
    shown.scroll_into_view_if_needed()
    assert shown.is_visible()
    _screenshot(page, LEARNER, None)
    assert document_is_unsaved(page)
