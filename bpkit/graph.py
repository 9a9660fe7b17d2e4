"""Draw a `Value` graph with matplotlib: one box per node (op, data, grad), arrows from inputs to users.

Layout: columns by depth (inputs on the left, the root on the right), so the forward pass
reads left to right and backpropagation right to left. Meant for small expressions (about
30 nodes); bigger graphs are refused rather than drawn unreadably.
"""

from __future__ import annotations

from collections import Counter

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from bpkit.engine import Value, topological_order

__all__ = ["draw_graph", "MAX_NODES"]

MAX_NODES = 60  # about twice what stays readable; beyond it draw_graph raises ValueError

_COLORS = {"leaf": "#dbe9f6", "op": "#fde7c8", "root": "#d5efd5"}


def _columns(order: list[Value]) -> dict[Value, int]:
    """Column of every node: 1 + the deepest input; a leaf sits just left of its first user."""
    column: dict[Value, int] = {}
    for node in order:  # inputs come before users, so their columns are known
        column[node] = 1 + max((column[i] for i in node.inputs), default=-1)
    users: dict[Value, list[Value]] = {node: [] for node in order}
    for node in order:
        for i in node.inputs:
            users[i].append(node)
    for node in order:
        if not node.inputs and users[node]:
            column[node] = min(column[u] for u in users[node]) - 1
    return column


def _rows(order: list[Value], column: dict[Value, int]) -> dict[Value, float]:
    """Vertical position within each column, chosen so that arrows cross as little as possible."""
    users: dict[Value, list[Value]] = {node: [] for node in order}
    for node in order:
        for i in node.inputs:
            users[i].append(node)
    index = {node: k for k, node in enumerate(order)}  # ties are broken by topological position
    by_column: dict[int, list[Value]] = {}
    for node in order:
        by_column.setdefault(column[node], []).append(node)
    row: dict[Value, float] = {}
    # From the root's column leftwards: sort each column by the mean row of the node's users.
    for c in sorted(by_column, reverse=True):
        nodes = by_column[c]

        def key(node: Value) -> tuple[float, int]:
            placed = [row[u] for u in users[node] if u in row]
            return (sum(placed) / len(placed) if placed else 0.0, index[node])

        nodes.sort(key=key)
        for k, node in enumerate(nodes):
            row[node] = k - (len(nodes) - 1) / 2  # centred around 0
    return row


def _box_text(node: Value) -> str:
    """Three lines: what the node is, its value and its gradient."""
    if node.label and node.op:
        title = f"{node.label} = {node.op}"
    else:
        title = node.label or node.op or "leaf"
    return f"{title}\ndata {node.data:.4g}\ngrad {node.grad:.4g}"


def draw_graph(root: Value, ax: Axes | None = None, max_nodes: int = MAX_NODES) -> Axes:
    """Draw the graph that produced root, data and grad in every box; returns the matplotlib Axes.

    Inputs are on the left, root on the right. A node used twice (as in a + a) gets two
    arrows. Raises ValueError for graphs with more than max_nodes nodes.
    """
    if not isinstance(root, Value):
        raise TypeError(f"draw_graph expects a Value, got {type(root).__name__}")
    order = topological_order(root)
    if len(order) > max_nodes:
        raise ValueError(
            f"draw_graph: this graph has {len(order)} nodes, too many to read in one picture "
            f"(at most {max_nodes}). Draw a smaller expression, e.g. a single neuron or one "
            "term of the loss, instead of the whole computation."
        )
    column = _columns(order)
    row = _rows(order, column)
    n_columns = max(column.values()) + 1
    n_rows = max(Counter(column.values()).values())

    if ax is None:
        _, ax = plt.subplots(figsize=(max(3.0, 2.1 * n_columns), max(1.6, 0.95 * n_rows)))
    x = {node: float(column[node]) for node in order}
    y = {node: -row[node] for node in order}  # first row at the top

    boxes = {}
    for node in order:
        kind = "root" if node is root else ("op" if node.inputs else "leaf")
        boxes[node] = ax.text(
            x[node],
            y[node],
            _box_text(node),
            ha="center",
            va="center",
            fontsize=8,
            family="monospace",
            zorder=3,
            bbox=dict(boxstyle="round,pad=0.4", facecolor=_COLORS[kind], edgecolor="0.35"),
        )
    for node in order:
        for i, k in _repeats(node.inputs):
            # A repeated input (a + a) gets a second, curved arrow so both uses are visible.
            ax.annotate(
                "",
                xy=(0.0, 0.5),
                xycoords=boxes[node],
                xytext=(1.0, 0.5),
                textcoords=boxes[i],
                arrowprops=dict(
                    arrowstyle="-|>", color="0.3", shrinkA=5, shrinkB=5, connectionstyle=f"arc3,rad={0.3 * k}"
                ),
                zorder=2,
            )
    ax.set_xlim(-0.6, n_columns - 0.4)
    ax.set_ylim(-(n_rows - 1) / 2 - 0.7, (n_rows - 1) / 2 + 0.7)
    ax.set_axis_off()
    return ax


def _repeats(inputs: tuple[Value, ...]) -> list[tuple[Value, int]]:
    """Each input with its occurrence number; the k-th use of the same node is curved by k."""
    seen: Counter = Counter()
    result = []
    for i in inputs:
        result.append((i, seen[i]))
        seen[i] += 1
    return result
