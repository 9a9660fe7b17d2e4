"""Machinery for the browser tests: a throw-away JupyterLab server and helpers that drive a notebook
in Debian's Chromium through playwright (see tests/test_browser.py).

Everything here acts like a learner would: open the notebook in JupyterLab, Run menu -> Run All
Cells, look at what the page shows, drag a slider. The JupyterLab app object is exposed to the
page (--LabApp.expose_app_in_browser) only to *read* the notebook model (error outputs, execution
counts) reliably; nothing is executed through it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# JupyterLab settings for a quiet, deterministic page: no news pop-up over the notebook, no update
# check (no network), no autosave (running a solution notebook must not rewrite it on disk), and
# every cell in the DOM (no windowing), so the whole notebook can be inspected.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
}
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def browser_unavailable_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found: install Chromium with `make browser-deps` (apt-get install chromium)"
    for module in ("playwright", "jupyterlab"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed: pip install -e '.[test]'"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LabServer:
    """A JupyterLab server started by the tests; stop() ends it and its kernels."""

    root_dir: Path
    work_dir: Path
    port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> LabServer:
        """Launch `jupyter lab` on 127.0.0.1 with a random port and token; wait for /api/status."""
        settings = self.work_dir / "app-settings"
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "overrides.json").write_text(json.dumps(LAB_SETTINGS, indent=2))
        env = dict(os.environ)
        env["JUPYTER_RUNTIME_DIR"] = str(self.work_dir / "runtime")  # connection files stay in tmp
        env["JUPYTER_CONFIG_DIR"] = str(self.work_dir / "config")  # no user config leaks in
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--LabApp.expose_app_in_browser=True",
            f"--LabApp.app_settings_dir={settings}",
            f"--LabApp.user_settings_dir={self.work_dir / 'user-settings'}",
            f"--LabApp.workspaces_dir={self.work_dir / 'workspaces'}",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        self.log_path = self.work_dir / "jupyterlab.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - the server writes to it until stop()
        # A new session makes the server the leader of its own process group: stop() ends the group.
        self.process = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.root_dir, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                self.api("status")
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"jupyter lab did not answer /api/status within {timeout:.0f} s:\n{self.log_tail()}")

    def api(self, path: str, method: str = "GET") -> object:
        """Call the server's REST API (/api/<path>) with the token; return the decoded JSON (None when empty)."""
        return self.request(f"api/{path}", method)

    def request(self, path: str, method: str = "GET") -> object:
        """Call <base_url>/<path> with the token; return the decoded JSON (None when empty)."""
        request = urllib.request.Request(
            f"{self.base_url}/{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read()
        return json.loads(body) if body else None

    def url(self, path: str, workspace: str) -> str:
        """The JupyterLab URL that opens `path` (relative to root_dir) in a fresh workspace."""
        return f"{self.base_url}/lab/workspaces/{workspace}/tree/{path}?reset&token={self.token}"

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server log, for failure messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def shutdown_kernels(self) -> None:
        """Shut down every running kernel through the API (kernels run in their own sessions)."""
        try:
            for kernel in self.api("kernels") or []:
                self.api(f"kernels/{kernel['id']}", method="DELETE")
        except (urllib.error.URLError, OSError):
            pass

    def stop(self) -> None:
        """Shut the kernels down, then terminate the server's process group (kill it after 15 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.shutdown_kernels()
        pgid = os.getpgid(self.process.pid)
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.process.wait(timeout=5)


def launch_chromium(playwright):
    """Debian's Chromium, headless, with no network side channels."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


# ---------------------------------------------------------------------------------------------
# Driving a notebook
# ---------------------------------------------------------------------------------------------

# Reads the current notebook's model: one entry per cell with its type, execution count and outputs.
_READ_MODEL_JS = """
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.content || !panel.content.model) return null;
  const cells = [];
  for (const cell of panel.content.model.cells) {
    const json = cell.toJSON();
    cells.push({type: json.cell_type, source: Array.isArray(json.source) ? json.source.join('') : json.source,
                execution_count: json.execution_count ?? null, outputs: json.outputs || []});
  }
  return cells;
}
"""


def open_notebook(page, server: LabServer, path: str, workspace: str, timeout_ms: int = 90_000) -> None:
    """Open `path` in JupyterLab and wait until its kernel is up and idle."""
    page.goto(server.url(path, workspace), wait_until="domcontentloaded", timeout=timeout_ms)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout_ms)
    # The status bar names the kernel once one exists: "Python 3 (ipykernel) | Idle".
    page.locator(".jp-StatusBar-TextItem", has_text="(ipykernel) | Idle").first.wait_for(timeout=timeout_ms)


def run_all_cells(page) -> None:
    """Run menu -> Run All Cells, as a learner would."""
    page.locator(".lm-MenuBar-itemLabel").filter(has_text=re.compile(r"^Run$")).first.click()
    page.locator(".lm-Menu-itemLabel").filter(has_text=re.compile(r"^Run All Cells$")).first.click()


_BUSY_JS = """() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                     .some(p => p.textContent.includes('*'))"""


def kernel_is_idle(page) -> bool:
    """Whether the status bar says the kernel is idle."""
    return page.locator(".jp-StatusBar-TextItem", has_text="| Idle").count() > 0


def read_cells(page) -> list[dict]:
    """The notebook model as the page holds it: type, source, execution_count, outputs per cell."""
    cells = page.evaluate(_READ_MODEL_JS)
    if cells is None:
        raise RuntimeError("no notebook is open in the page")
    return cells


def document_is_unsaved(page) -> bool:
    """Whether the open notebook has unsaved changes (True after a run unless something saved it)."""
    return bool(page.evaluate("() => window.jupyterapp.shell.currentWidget.context.model.dirty"))


def error_outputs(cells: list[dict]) -> list[dict]:
    """Every error output (an exception with its traceback), with the cell index."""
    return [
        {"cell": i, "ename": o.get("ename"), "evalue": o.get("evalue"), "traceback": o.get("traceback") or []}
        for i, cell in enumerate(cells)
        for o in cell["outputs"]
        if o.get("output_type") == "error"
    ]


def widget_output_count(cells: list[dict]) -> int:
    """How many outputs of the model are widget views."""
    return sum(1 for cell in cells for o in cell["outputs"] if WIDGET_MIME in o.get("data", {}))


# A widget view in the page: a top-level output whose first element is a rendered widget. (A view
# that failed to render shows its text/plain fallback, e.g. "VBox(children=...)", instead.)
WIDGET_VIEW = ".jp-Cell-outputArea > .jp-OutputArea-child > .jp-OutputArea-output:has(> .jupyter-widgets)"


def rendered_widget_views(page) -> dict:
    """How many widget views rendered, how many sliders they show, and how many show a plot image."""
    return page.evaluate(
        """(sel) => {
      const views = [...document.querySelectorAll(sel)];
      return {rendered: views.length,
              sliders: document.querySelectorAll('.jupyter-widgets.widget-slider').length,
              with_image: views.filter(v => v.querySelector('img') !== null).length};
    }""",
        WIDGET_VIEW,
    )


def widget_image_src(page, index: int = 0) -> str | None:
    """The src of the plot image inside the index-th widget view (None when there is no image yet)."""
    return page.evaluate(
        """([sel, index]) => {
      const view = document.querySelectorAll(sel)[index];
      const img = view ? view.querySelector('img') : null;
      return img ? img.getAttribute('src') : null;
    }""",
        [WIDGET_VIEW, index],
    )


def wait_for_new_image(page, old_src: str, index: int = 0, timeout_s: float = 60.0) -> str:
    """Wait until the index-th widget view shows an image different from old_src; return the new src."""
    page.wait_for_function(
        """([sel, index, old]) => {
      const view = document.querySelectorAll(sel)[index];
      const img = view ? view.querySelector('img') : null;
      return img !== null && img.getAttribute('src') !== old;
    }""",
        arg=[WIDGET_VIEW, index, old_src],
        timeout=timeout_s * 1000,
    )
    return widget_image_src(page, index)


def drag_first_slider(page, index: int = 0, dx: int = 40) -> None:
    """Drag the handle of the first slider in the index-th widget view dx pixels to the right."""
    view = page.locator(WIDGET_VIEW).nth(index)
    view.scroll_into_view_if_needed()
    handle = view.locator(".jupyter-widgets.widget-slider").first.locator(".noUi-handle").first
    handle.scroll_into_view_if_needed()
    box = handle.bounding_box()
    if box is None:
        raise RuntimeError("the slider handle is not visible")
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx / 2, y, steps=4)
    page.mouse.move(x + dx, y, steps=4)
    page.mouse.up()


def visible_text(page, text) -> bool:
    """Scroll to the first output showing `text` (a string or a compiled regex); whether it is visible."""
    found = page.locator(".jp-OutputArea-output").get_by_text(text).first
    if found.count() == 0:
        return False
    found.scroll_into_view_if_needed()
    return found.is_visible()


# ---------------------------------------------------------------------------------------------
# Running several notebooks, a few at a time
# ---------------------------------------------------------------------------------------------

PASS_LINE = re.compile(r"✔ \S+ passed")
NOT_IMPLEMENTED = "not implemented yet"


@dataclass
class Observation:
    """What a learner would have seen after Run All Cells on one notebook."""

    path: str
    seconds: float = 0.0  # from opening until observed (includes waiting on the other lane's polls)
    failure: str | None = None  # the run itself could not be completed (timeout, page error)
    cells: list[dict] = field(default_factory=list)  # the notebook model after the run
    widget_outputs: int = 0  # widget views in the model
    widgets_rendered: int = 0  # widget views the page actually rendered
    redraws: list[str] = field(default_factory=list)  # per widget view: "redrawn" or what went wrong
    pass_line_visible: bool = False
    not_implemented_visible: bool = False
    unsaved: bool = False  # the run's outputs were not saved to disk
    screenshot: Path | None = None


class _Run:
    """One notebook open in its own browser context, running, polled until it settles."""

    def __init__(self, browser, server: LabServer, path: str, viewport: dict, timeout_s: float) -> None:
        self.obs = Observation(path)
        self.server = server
        self.started = time.monotonic()
        self.timeout_s = timeout_s
        self.seen_busy = False
        self.settled = 0
        self.context = browser.new_context(viewport=viewport)
        self.page = self.context.new_page()
        workspace = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")
        try:
            open_notebook(self.page, server, path, workspace)
            run_all_cells(self.page)
        except Exception:
            self.context.close()
            raise
        self.run_started = time.monotonic()

    def finished(self) -> bool:
        """One poll: True once no cell is queued or running and the kernel is idle, three polls in a row."""
        busy = bool(self.page.evaluate(_BUSY_JS))
        self.seen_busy = self.seen_busy or busy
        # Stored outputs already show execution numbers, so first see the run start ([*]); a very
        # fast notebook may finish between two polls, hence the 30 s allowance.
        if not self.seen_busy and time.monotonic() - self.run_started < 30:
            return False
        self.settled = self.settled + 1 if (not busy and kernel_is_idle(self.page)) else 0
        if self.settled < 3 and time.monotonic() - self.run_started > self.timeout_s:
            raise TimeoutError(f"still running after {self.timeout_s:.0f} s")
        return self.settled >= 3

    def observe(self, screenshot_dir: Path | None) -> None:
        """Record the outputs, render and redraw every widget, look for check lines, take the screenshot."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        obs, page = self.obs, self.page
        obs.seconds = time.monotonic() - self.started
        obs.cells = read_cells(page)
        obs.widget_outputs = widget_output_count(obs.cells)
        if obs.widget_outputs:
            try:
                page.wait_for_function(
                    "([sel, n]) => document.querySelectorAll(sel).length >= n",
                    arg=[WIDGET_VIEW, obs.widget_outputs],
                    timeout=60_000,
                )
            except PlaywrightTimeout:
                pass  # recorded below as fewer rendered views than widget outputs
        obs.widgets_rendered = rendered_widget_views(page)["rendered"]
        for index in range(obs.widgets_rendered):
            obs.redraws.append(_redraw(page, index))
        obs.pass_line_visible = visible_text(page, PASS_LINE)
        obs.not_implemented_visible = visible_text(page, NOT_IMPLEMENTED)
        obs.unsaved = document_is_unsaved(page)
        if screenshot_dir is not None:
            if obs.widgets_rendered:
                page.locator(WIDGET_VIEW).first.scroll_into_view_if_needed()
            obs.screenshot = save_screenshot(page, screenshot_dir, obs.path)

    def close(self, screenshot_dir: Path | None) -> None:
        """Close the page and shut its kernel down (freeing the core for the next notebook)."""
        if self.obs.failure and screenshot_dir is not None:
            try:
                save_screenshot(self.page, screenshot_dir, self.obs.path, suffix="_failed")
            except Exception:  # the page may be gone; the failure text is what matters
                pass
        try:
            kernel_id = self.page.evaluate(
                "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.id"
            )
        except Exception:
            kernel_id = None
        self.context.close()
        if kernel_id:
            try:
                self.server.api(f"kernels/{kernel_id}", method="DELETE")
            except (urllib.error.URLError, OSError):
                pass


def _redraw(page, index: int) -> str:
    """Drag the first slider of widget view `index`; 'redrawn' when its plot changed, else what went wrong."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            "([sel, i]) => { const v = document.querySelectorAll(sel)[i];"
            " return v && v.querySelector('img') !== null; }",
            arg=[WIDGET_VIEW, index],
            timeout=60_000,
        )
    except PlaywrightTimeout:
        return "no plot image in the widget view"
    before = widget_image_src(page, index)
    drag_first_slider(page, index)
    try:
        wait_for_new_image(page, before, index)
    except PlaywrightTimeout:
        return "the plot did not change after dragging the first slider"
    return "redrawn"


def screenshot_path(directory: Path, path: str, suffix: str = "") -> Path:
    """Where the screenshot of notebook `path` goes: <directory>/<folder>_<notebook><suffix>.png."""
    return directory / f"{Path(path).parent.name}_{Path(path).stem}{suffix}.png"


def save_screenshot(page, directory: Path, path: str, suffix: str = "") -> Path:
    """Save the viewport as screenshot_path(directory, path, suffix)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = screenshot_path(directory, path, suffix)
    time.sleep(0.3)  # let a scroll settle before the capture
    page.screenshot(path=str(target))
    return target


def run_notebooks(
    browser,
    server: LabServer,
    paths: list[str],
    parallel: int = 2,
    viewport: dict | None = None,
    screenshot_dir: Path | None = None,
    timeout_s: float = 300.0,
) -> dict[str, Observation]:
    """Open and Run All each notebook, `parallel` at a time; observe each when it settles.

    Each notebook gets its own browser context and kernel; its kernel is shut down as soon as it
    has been observed. Never raises for a notebook: problems end up in Observation.failure.
    """
    viewport = viewport or {"width": 1400, "height": 1000}
    pending = list(paths)
    active: list[_Run] = []
    results: dict[str, Observation] = {}
    while pending or active:
        while pending and len(active) < parallel:
            path = pending.pop(0)
            if screenshot_dir is not None:  # no stale picture from an earlier run may pass for this one
                for suffix in ("", "_failed"):
                    screenshot_path(screenshot_dir, path, suffix).unlink(missing_ok=True)
            try:
                active.append(_Run(browser, server, path, viewport, timeout_s))
            except Exception as exc:  # could not even open it: record and go on
                results[path] = Observation(path, failure=f"could not open and run: {exc}")
        for run in list(active):
            try:
                if not run.finished():
                    continue
                run.observe(screenshot_dir)
            except Exception as exc:
                run.obs.failure = f"{type(exc).__name__}: {exc}"
            run.close(screenshot_dir)
            results[run.obs.path] = run.obs
            active.remove(run)
        time.sleep(0.5)
    return results
