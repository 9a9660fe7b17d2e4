"""Tests for bpkit.widgets: each explorer builds its controls, draws once, and redraws when a control moves.

These tests read what was drawn from `box.bpkit_state` (the twin's numbers for the current control
values) and the Image widget's PNG. The browser tests check the same explorers rendered in JupyterLab;
tests/test_lessons.py runs lesson 07 headless and checks the runner never writes to the kernel.
"""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

ipywidgets = pytest.importorskip("ipywidgets")

from bpkit import explore, widgets  # noqa: E402

_REAL_FIGURE_PNG = widgets._figure_png  # kept before the fixture below replaces it

EXPLORERS = {
    "learning_rate_explorer": ("lr", 0.2),
    "batch_size_explorer": ("batch_size", 32),
    "momentum_explorer": ("beta", 0.5),
    "depth_init_explorer": ("depth", 4),
    "decision_boundary_explorer": ("hidden", 4),
}


def _controls(box: ipywidgets.VBox) -> dict[str, ipywidgets.Widget]:
    """The explorer's controls keyed by description."""
    intro, row, plot = box.children
    assert isinstance(intro, ipywidgets.HTML) and isinstance(plot, ipywidgets.Image)
    return {w.description: w for w in row.children}


def _by_keyword(box, keyword):
    """The control that feeds the twin's keyword argument `keyword`."""
    names = {"lr": "learning rate", "batch_size": "batch size", "hidden": "hidden units"}
    return _controls(box)[names.get(keyword, keyword)]


@pytest.fixture(autouse=True)
def _no_rendering(monkeypatch):
    # Rasterising the PNG is the slow part of a redraw: each redraw shows the number of the draw instead
    # (test_the_image_shows_the_png renders one for real).
    count = iter(range(1, 1000))
    monkeypatch.setattr(widgets, "_figure_png", lambda fig: b"draw %d" % next(count))


@pytest.mark.parametrize("name", sorted(EXPLORERS))
def test_explorer_draws_once_and_redraws_when_a_control_moves(name):
    box = getattr(widgets, name)()
    assert isinstance(box, ipywidgets.VBox)
    state = box.bpkit_state
    assert state["draws"] == 1 and state["data"] is not None
    assert box.children[2].value == b"draw 1"
    keyword, new_value = EXPLORERS[name]
    control = _by_keyword(box, keyword)
    control.value = new_value
    assert state["draws"] == 2
    assert state["kwargs"][keyword] == new_value
    assert box.children[2].value == b"draw 2"  # the image shows the new figure


def test_the_image_shows_the_png(monkeypatch):
    monkeypatch.setattr(widgets, "_figure_png", _REAL_FIGURE_PNG)
    box = widgets.depth_init_explorer()
    assert box.children[2].value[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", sorted(EXPLORERS))
def test_toggle_buttons_are_wide_enough_for_their_longest_label(name):
    box = getattr(widgets, name)()
    for toggle in (w for w in _controls(box).values() if isinstance(w, ipywidgets.ToggleButtons)):
        width = toggle.style.button_width
        assert width.endswith("ch"), width
        longest = max(len(label) for label in toggle._options_labels)
        assert float(width[:-2]) >= longest + 2, f"{toggle.description}: {width} for {longest} characters"


@pytest.mark.parametrize("name", sorted(EXPLORERS))
def test_sliders_redraw_on_release_only(name):
    box = getattr(widgets, name)()
    sliders = [w for w in _controls(box).values() if hasattr(w, "continuous_update")]
    assert sliders, "every explorer has at least one slider"
    assert all(w.continuous_update is False for w in sliders)


def test_what_the_widget_draws_is_what_the_twin_computes():
    box = widgets.learning_rate_explorer()
    _by_keyword(box, "lr").value = 0.3
    _by_keyword(box, "steps").value = 12
    _controls(box)["surface"].value = "1d"
    twin = explore.plot_learning_rate(0.3, 12, "1d").bpkit_data
    np.testing.assert_array_equal(box.bpkit_state["data"]["path"], twin["path"])
    assert box.bpkit_state["kwargs"] == {"surface": "1d", "lr": 0.3, "steps": 12}


def test_momentum_explorer_picks_a_learning_rate_that_suits_the_problem():
    box = widgets.momentum_explorer()
    _controls(box)["problem"].value = "rosenbrock"
    assert box.bpkit_state["kwargs"]["problem"] == "rosenbrock"
    assert box.bpkit_state["kwargs"]["lr"] == pytest.approx(explore.MOMENTUM_LR["rosenbrock"])
    assert box.bpkit_state["data"]["problem"] == "rosenbrock"


def test_batch_size_slider_offers_one_to_full_batch():
    box = widgets.batch_size_explorer()
    slider = _by_keyword(box, "batch_size")
    values = [v for _, v in slider.options]
    assert values[0] == 1 and values[-1] == 200 and values == sorted(values)


def test_moving_controls_does_not_leave_figures_behind():
    import matplotlib.pyplot as plt

    before = len(plt.get_fignums())
    box = widgets.depth_init_explorer()
    for depth in (3, 5, 7, 9):
        _by_keyword(box, "depth").value = depth
    assert len(plt.get_fignums()) == before
    assert box.bpkit_state["draws"] == 5


def test_png_is_a_real_image():
    png = _REAL_FIGURE_PNG(explore.plot_depth_init(3, "relu", "he"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_importing_bpkit_widgets_does_not_import_ipywidgets():
    code = "import sys, bpkit.widgets; assert 'ipywidgets' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_only_bpkit_widgets_imports_ipywidgets():
    from pathlib import Path

    import bpkit

    pattern = re.compile(r"^\s*(import ipywidgets|from ipywidgets)", re.MULTILINE)
    users = sorted(p.name for p in Path(bpkit.__file__).parent.rglob("*.py") if pattern.search(p.read_text()))
    assert users == ["widgets.py"]


@pytest.mark.slow
def test_a_headless_runner_never_writes_to_the_kernel_while_an_explorer_cell_runs(monkeypatch):
    # nbclient answers each output an Output widget captures with a message on the shell channel, sent
    # while it waits on that channel for the cell's reply; that reply was sometimes lost and lesson 07
    # stalled for the whole cell timeout. The explorers draw into an Image widget: nothing to answer.
    import nbformat
    from nbclient import NotebookClient
    from nbclient.output_widget import OutputWidget

    sent = []
    monkeypatch.setattr(OutputWidget, "_publish_msg", lambda self, *args, **kwargs: sent.append(args))
    cells = [nbformat.v4.new_code_cell(f"from bpkit.widgets import {name}; {name}()") for name in sorted(EXPLORERS)]
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    assert sent == []
    models = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"].values()
    assert sum(model["model_name"] == "ImageModel" for model in models) == len(EXPLORERS)
    assert not any(model["model_name"] == "OutputModel" for model in models)
    for cell in nb.cells:
        assert [o["output_type"] for o in cell.outputs] == ["execute_result"]  # the explorer, no error
