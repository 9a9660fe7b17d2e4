"""The scalar engine at scale: a 1,000,000-node graph, and how far recursion would get."""

from __future__ import annotations

import sys
import time

from bpkit.checks.lesson05 import recursive_topological_order  # micrograd's sort, for comparison
from bpkit.engine import Value, topological_order


def build_chain(n_ops: int) -> Value:
    """x_{k+1} = x_k * 0.999999 + 0.000001: two ops (and two constant leaves) per step."""
    x = Value(1.0)
    for _ in range(n_ops):
        x = x * 0.999999 + 0.000001
    return x


def million_node_graph() -> dict:
    """Build and backprop a graph of at least 1,000,000 nodes; nodes per second for each phase."""
    start = time.perf_counter()
    root = build_chain(250_000)
    build = time.perf_counter() - start
    nodes = len(topological_order(root))
    start = time.perf_counter()
    root.backward()
    backward = time.perf_counter() - start
    return {
        "nodes": nodes,
        "build_s": build,
        "backward_s": backward,
        "build_nodes_per_s": nodes / build,
        "backward_nodes_per_s": nodes / backward,
    }


def largest_recursive_graph() -> tuple[int, int]:
    """(nodes, recursion limit): the longest chain the recursive sort handles at the default limit."""
    lo, hi = 1, 20_000  # ops; hi is known to fail at the default limit of 1000
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            recursive_topological_order(build_chain(mid))
            lo = mid
        except RecursionError:
            hi = mid - 1
    return len(topological_order(build_chain(lo))), sys.getrecursionlimit()
