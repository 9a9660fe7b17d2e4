"""Tests for bpkit.graph.draw_graph (rendered off-screen with the Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display needed

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402

from bpkit.engine import Value  # noqa: E402
from bpkit.graph import MAX_NODES, draw_graph  # noqa: E402


def boxes(ax):
    return [t.get_text() for t in ax.texts]


def arrows(ax):
    return [p for p in ax.patches if isinstance(p, FancyArrowPatch)] + [
        c.arrow_patch for c in ax.texts if getattr(c, "arrow_patch", None) is not None
    ]


def test_draws_one_box_per_node_with_op_data_and_grad():
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    out = (a * b).tanh()
    out.backward()
    ax = draw_graph(out)
    texts = [t for t in boxes(ax) if t]  # arrows are annotations with empty text
    assert len(texts) == 4
    assert "a\ndata 2\ngrad " in "".join(texts)
    assert any(t.startswith("*\ndata -6\n") for t in texts)
    assert any(t.startswith("tanh\ndata -1\ngrad 1") for t in texts)  # tanh(-6) = -0.99999 -> "-1"
    assert len(arrows(ax)) == 3  # a -> *, b -> *, * -> tanh
    plt.close(ax.figure)


def test_a_plus_a_gets_two_arrows():
    a = Value(1.0, label="a")
    ax = draw_graph(a + a)
    assert len(arrows(ax)) == 2
    plt.close(ax.figure)


def test_uses_the_given_axes_and_renders():
    fig, ax = plt.subplots()
    a = Value(0.5)
    out = a.exp() * 3 + 1
    out.backward()
    assert draw_graph(out, ax=ax) is ax
    fig.canvas.draw()  # arrows attach to box edges at draw time: make sure that works
    plt.close(fig)


def test_thirty_node_graph_is_drawn():
    xs = [Value(0.1 * i, label=f"x{i}") for i in range(8)]
    total = sum((x * x for x in xs), Value(0.0))
    total.backward()
    ax = draw_graph(total)
    assert len([t for t in boxes(ax) if t]) == 25  # 8 leaves + 8 products + 1 zero + 8 sums
    ax.figure.canvas.draw()
    plt.close(ax.figure)


def test_big_graphs_are_refused_with_advice():
    x = Value(1.0)
    for _ in range(MAX_NODES):
        x = x * 1.01
    with pytest.raises(ValueError, match="smaller expression"):
        draw_graph(x)


def test_rejects_non_values():
    with pytest.raises(TypeError, match="expects a Value"):
        draw_graph(1.0)
