"""Checks for lesson 05, the chain rule: numerical_derivative, mul_backward, tanh_backward, topological_order.

`topological_order` has many right answers (any order with inputs before users), so its comparison
checks the three rules (every node once, inputs first, root last) instead of comparing with one
reference list. Its graphs travel as specs ({"__graph__": [...]}, see `_harness.build_graph`) and
the learner's returned Values come back as node indices (kind="nodes"). One case is a chain of
100,000 nodes: a recursive depth-first search hits Python's recursion limit (about 1,000) there.
"""

from __future__ import annotations

import math
from collections import deque
from functools import lru_cache

import numpy as np

from bpkit.checks import _harness
from bpkit.checks._core import (
    _EVIDENCE,
    NO_RECORD_HINT,
    Case,
    Exercise,
    Mistake,
    StableExercise,
    case_rng,
    compare,
    register,
)
from bpkit.checks._harness import build_graph
from bpkit.checks.inputs import cube, wiggle

# -- functions for numerical_derivative cases (module level: they travel to the learner's kernel) -


def _numerical_derivative(f, x, h=1e-5):
    return (f(x + h) - f(x - h)) / (2 * h)


def _numerical_derivative_cases() -> list[Case]:
    return [
        Case("f(x) = x**3 at x = 2", (cube, 2.0)),
        # A large step makes every formula give its own number: the central difference's h**2 error is
        # visible, a 5-point stencil's is far smaller, and a fixed step of 1e-5 is almost exact.
        Case("np.sin at x = 1, a large step h=0.5", (np.sin, 1.0), {"h": 0.5}),
        Case("f(x) = x**3 at x = -1.5, h=1e-2", (cube, -1.5), {"h": 1e-2}),
        Case("np.sin at x = 1", (np.sin, 1.0)),
        Case("np.exp at x = 0.5, h=1e-3", (np.exp, 0.5), {"h": 1e-3}),
        Case("sin(3x) + x**2 at x = 0.3, h=1e-2", (wiggle, 0.3), {"h": 1e-2}),
        Case("np.tanh at x = 0 (slope 1)", (np.tanh, 0.0)),
    ]


IGNORED_H_HINT = "use the argument h: the check passes h=0.5 or h=1e-2 and expects the difference with that step"


class _DerivativeExercise(Exercise):
    """numerical_derivative: an answer that gives the same number for two steps h ignores its h."""

    def diagnose(self, case: Case, received) -> str:
        hint = super().diagnose(case, received)
        if hint in {m.hint for m in self.mistakes}:
            return hint
        return IGNORED_H_HINT if _ignores_h(self) else hint


def _ignores_h(exercise: Exercise) -> bool:
    """Did the answer return the same number for the same f and x with steps h whose answers differ?"""
    evidence = _EVIDENCE.get()
    if evidence is None or evidence.nested or evidence.observations is None:
        return False
    seen: dict = {}  # (f, x) -> [(h, expected, received)] over the cases observed
    for case, observation in zip(evidence.cases, evidence.observations):
        if "output" not in observation:
            continue
        f, x = case.args
        h = case.kwargs.get("h", 1e-5)
        received = _harness.decode(observation["output"])
        seen.setdefault((repr(f), x), []).append((h, exercise.reference(f, x, h=h), received))
    for runs in seen.values():
        for i, (h1, e1, r1) in enumerate(runs):
            for h2, e2, r2 in runs[i + 1 :]:
                answers_differ = compare(e1, e2, exercise.rtol, exercise.atol) is not None
                same_answer = compare(r1, r2, exercise.rtol, exercise.atol) is None
                if h1 != h2 and answers_differ and same_answer and compare(e1, r1, exercise.rtol, exercise.atol):
                    return True
    return False


def _backward_difference(f, x, h=1e-5):
    return (f(x) - f(x - h)) / h


def _relative_step_difference(f, x, h=1e-5):
    return (f(x * (1 + h)) - f(x * (1 - h))) / (2 * h)  # moves x by x * h, not by h


register(
    _DerivativeExercise(
        id="numerical_derivative",
        lesson="05",
        points=1,
        description="central difference (f(x + h) - f(x - h)) / (2h)",
        cases=_numerical_derivative_cases,
        reference=_numerical_derivative,
        rtol=1e-7,
        atol=1e-8,  # round-off of a central difference with h = 1e-5 is about 1e-10 here
        mistakes=[
            Mistake(
                lambda f, x, h=1e-5: (f(x + h) - f(x)) / h,
                "use the central difference (f(x + h) - f(x - h)) / (2h): the one-sided (f(x + h) - f(x)) / h "
                "has an error proportional to h instead of h**2",
            ),
            Mistake(lambda f, x, h=1e-5: (f(x + h) - f(x - h)) / h, "divide by 2 * h: x + h and x - h are 2h apart"),
            Mistake(
                lambda f, x, h=1e-5: (f(x + h) - f(x - h)) / 2 * h,
                "operator precedence: `/ 2 * h` divides by 2 and then MULTIPLIES by h; write `/ (2 * h)`",
            ),
            Mistake(
                lambda f, x, h=1e-5: (f(x - h) - f(x + h)) / (2 * h),
                "sign error: the plus side comes first, (f(x + h) - f(x - h)) / (2h)",
            ),
            Mistake(
                lambda f, x, h=1e-5: (f(x - 2 * h) - 8 * f(x - h) + 8 * f(x + h) - f(x + 2 * h)) / (12 * h),
                "that is the 5-point stencil, more accurate than asked: this exercise is the plain central "
                "difference (f(x + h) - f(x - h)) / (2h), whose error of order h**2 the lesson measures next",
            ),
            Mistake(lambda f, x, h=1e-5: (f(x + 1e-5) - f(x - 1e-5)) / (2 * 1e-5), IGNORED_H_HINT),
            Mistake(
                _backward_difference,
                "use the central difference (f(x + h) - f(x - h)) / (2h): the backward (f(x) - f(x - h)) / h "
                "has an error proportional to h instead of h**2",
            ),
            Mistake(
                _relative_step_difference,
                "step by h itself, f(x + h) and f(x - h): x * (1 + h) moves x by x * h, not by h, so dividing by "
                "2h no longer matches the distance between the two points",
            ),
        ],
    )
)

# -- local backward rules -----------------------------------------------------------------------


def _mul_backward(a, b, dout):
    return b * dout, a * dout  # d(ab)/da = b, d(ab)/db = a, each times the gradient from above


def _mul_cases() -> list[Case]:
    rng = case_rng(501)
    cases = [
        Case(f"a={a:.3f}, b={b:.3f}, dout={d:.3f}", (a, b, d))
        for a, b, d in (tuple(float(v) for v in rng.normal(size=3) * 2) for _ in range(3))
    ]
    cases.append(Case("a=0, b=5, dout=-2", (0.0, 5.0, -2.0)))
    cases.append(Case("a=3, b=-4, dout=1 (the root)", (3.0, -4.0, 1.0)))
    cases.append(Case("a=2, b=7, dout=0.5", (2.0, 7.0, 0.5)))
    return cases


register(
    Exercise(
        id="mul_backward",
        names=("da", "db"),
        lesson="05",
        points=1,
        description="gradients of out = a * b: (da, db) = (b * dout, a * dout)",
        cases=_mul_cases,
        reference=_mul_backward,
        mistakes=[
            Mistake(
                lambda a, b, dout: (a * dout, b * dout),
                "swapped: the gradient of a is the OTHER factor, da = b * dout and db = a * dout",
            ),
            Mistake(
                lambda a, b, dout: (b, a),
                "missing dout: b and a are only the local derivatives; multiply each by dout (chain rule)",
            ),
            Mistake(
                lambda a, b, dout: (dout, dout),
                "that is the rule for +, which passes dout through; for *, each input gets the other factor times dout",
            ),
            Mistake(lambda a, b, dout: (-b * dout, -a * dout), "sign error: d(ab)/da = +b, no minus sign"),
            Mistake(
                lambda a, b, dout: (a * b * dout, a * b * dout), "the derivative of a*b with respect to a is b, not a*b"
            ),
            Mistake(
                lambda a, b, dout: (dout / b, dout / a),
                "multiply, do not divide: the chain rule multiplies the local derivative by dout, da = b * dout and "
                "db = a * dout",
            ),
            Mistake(
                lambda a, b, dout: (b + dout, a + dout),
                "multiply by dout, do not add it: the chain rule multiplies the local derivative by the gradient "
                "from above, da = b * dout and db = a * dout",
            ),
            Mistake(
                lambda a, b, dout: b * dout,
                "return both gradients as a pair, one for each input of the product: return b * dout, a * dout",
            ),
        ],
    )
)


def _tanh_backward(x, dout):
    t = math.tanh(x)
    return (1.0 - t * t) * dout  # d tanh(x)/dx = 1 - tanh(x)^2


def _tanh_cases() -> list[Case]:
    return [
        Case("x=0.5, dout=1.7", (0.5, 1.7)),
        Case("x=-1.3, dout=-0.4", (-1.3, -0.4)),
        Case("x=0 (slope 1), dout=2.5", (0.0, 2.5)),
        Case("x=0.9, dout=3", (0.9, 3.0)),
        Case("saturated x=20, dout=1.5", (20.0, 1.5)),
        Case("saturated x=-800, dout=0.5 (exp(800) overflows)", (-800.0, 0.5)),
    ]


TANH_OVERFLOW_HINT = (
    "exp(x) overflows for |x| beyond about 709 (so does cosh): compute t = math.tanh(x) first, which "
    "saturates at -1 and 1, then dx = (1 - t**2) * dout"
)


register(
    StableExercise(
        id="tanh_backward",
        overflow_hint=TANH_OVERFLOW_HINT,
        lesson="05",
        points=1,
        description="gradient of out = tanh(x): dx = (1 - tanh(x)**2) * dout",
        cases=_tanh_cases,
        reference=_tanh_backward,
        mistakes=[
            Mistake(
                lambda x, dout: (1 - x**2) * dout,
                "x is the INPUT of tanh: compute t = tanh(x) first, then (1 - t**2) * dout",
            ),
            Mistake(
                lambda x, dout: 1 - math.tanh(x) ** 2,
                "missing dout: 1 - tanh(x)**2 is only the local derivative; multiply it by dout",
            ),
            Mistake(
                lambda x, dout: 1 - math.tanh(x) ** 2 * dout,
                "parentheses: (1 - t**2) * dout; without them only t**2 is multiplied by dout",
            ),
            Mistake(
                lambda x, dout: (math.tanh(x) ** 2 - 1) * dout,
                "sign error: the slope of tanh is 1 - tanh(x)**2, which is positive",
            ),
            Mistake(lambda x, dout: (1 - math.tanh(x)) * dout, "square the tanh: d tanh(x)/dx = 1 - tanh(x)**2"),
            Mistake(
                lambda x, dout: (1 - math.tanh(x) ** 2) * dout * x, "dx = (1 - tanh(x)**2) * dout: no extra factor x"
            ),
            Mistake(lambda x, dout: 4.0 / (math.exp(x) + math.exp(-x)) ** 2 * dout, TANH_OVERFLOW_HINT),
            Mistake(
                lambda x, dout: math.tanh(x) * (1 - math.tanh(x)) * dout,
                "t (1 - t) is the slope of the sigmoid; the slope of tanh is 1 - t**2: dx = (1 - t**2) * dout",
            ),
            Mistake(
                lambda x, dout: math.tanh(x) * dout,
                "tanh(x) is the forward value, not its slope: dx = (1 - tanh(x)**2) * dout",
            ),
            Mistake(
                lambda x, dout: 1 - math.tanh(x) ** 2 + dout,
                "multiply by dout, do not add it: the chain rule multiplies the local derivative by the gradient "
                "from above, (1 - tanh(x)**2) * dout",
            ),
            Mistake(
                lambda x, dout: (1 - math.tanh(x) ** 2) / dout,
                "multiply by dout, do not divide by it: dx = (1 - tanh(x)**2) * dout",
            ),
        ],
    )
)

# -- topological order --------------------------------------------------------------------------

RECURSION_HINT = (
    "recursion: a depth-first search that calls itself needs one Python stack frame per node, and Python "
    "stops at about 1,000; use an explicit stack (a list you append to and pop from) in a while loop"
)
DUPLICATE_HINT = "a node reached along two paths appears twice: keep a set of visited nodes and skip those seen"
REVERSED_HINT = "the order is reversed: inputs must come before the nodes that use them, and the root last"
BFS_HINT = (
    "a reversed breadth-first order is not enough: a node reachable along paths of different lengths can land "
    "after a node that uses it; place a node only after ALL its inputs (depth-first post-order)"
)
LEAVES_HINT = "every node belongs in the list, the leaves (inputs and weights) too: they need gradients most"
FIRST_INPUT_HINT = "visit every input of a node (for child in node.inputs), not only the first one"
NOT_NODES_HINT = "return the Value objects themselves (the nodes of the graph), not their .data or copies"
ROOT_MISSING_HINT = "the root is missing: it belongs in the list too, as its last node (backward starts from it)"
DATA_VISITED_HINT = (
    "a node is missing while another node with the same value is in your list: different nodes can hold equal "
    "numbers, so keep the nodes themselves in the visited set (visited.add(node)), not their .data"
)
PREORDER_HINT = (
    "your list starts with the root: each node is appended as soon as it is reached, before its inputs "
    "(pre-order). Append a node only after all of its inputs are in the list: push (node, True) back before its "
    "inputs and append the node when it comes off the stack that second time"
)
PUSHED_VISITED_HINT = (
    "a node is marked visited when it is pushed, so another user that reaches it later skips it and lands in the "
    "list before it: mark a node visited when it is popped (skip it there if already seen), and push every input "
    "not yet visited"
)
POST_ORDER_HINT = "append a node only after all of its inputs are in the list (depth-first post-order)"


def _topological_order(root):
    """Reference: depth-first post-order with an explicit stack."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
        elif node not in visited:
            visited.add(node)
            stack.append((node, True))
            for child in reversed(node.inputs):
                if child not in visited:
                    stack.append((child, False))
    return order


def recursive_topological_order(root):
    """micrograd's recursive build_topo: right on small graphs, a RecursionError on a long chain.

    A typical mistake here, and what benchmarks/engine.py measures the explicit stack against.
    """
    topo, visited = [], set()

    def build_topo(v):
        if v not in visited:
            visited.add(v)
            for child in v.inputs:
                build_topo(child)
            topo.append(v)

    build_topo(root)
    return topo


def _topo_no_visited(root):
    order, stack = [], [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
        else:
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.inputs))
    return order


def _topo_root_first(root):
    return _topological_order(root)[::-1]


def _topo_reversed_bfs(root):
    seen, queue, order = {root}, deque([root]), []
    while queue:
        node = queue.popleft()
        order.append(node)
        for child in node.inputs:
            if child not in seen:
                seen.add(child)
                queue.append(child)
    return order[::-1]


def _topo_no_leaves(root):
    return [node for node in _topological_order(root) if node.inputs]


def _topo_preorder(root):
    order, visited, stack = [], set(), [root]
    while stack:
        node = stack.pop()
        if node not in visited:
            visited.add(node)
            order.append(node)  # appended when first reached: before its inputs
            stack.extend(node.inputs)
    return order


def _topo_no_root(root):
    return _topological_order(root)[:-1]


def _topo_visited_by_data(root):
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
        elif node.data not in seen:  # two nodes holding the same number count as one
            seen.add(node.data)
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.inputs))
    return order


def _topo_visited_when_pushed(root):
    order, seen, stack = [], {root}, [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        stack.append((node, True))
        for child in reversed(node.inputs):
            if child not in seen:  # marked when pushed: a later user of child no longer pushes it
                seen.add(child)
                stack.append((child, False))
    return order


def _topo_first_input_only(root):
    order, node = [], root
    while True:
        order.append(node)
        if not node.inputs:
            return order[::-1]
        node = node.inputs[0]


@lru_cache(maxsize=2)
def _chain_spec(n: int) -> dict:
    """x, tanh(x), tanh(tanh(x)), ...: n nodes in one long line (built once; nothing modifies a spec)."""
    return {"__graph__": [("leaf", [], 0.5)] + [("tanh", [i], None) for i in range(n - 1)]}


def _topological_order_cases() -> list[Case]:
    tiny = [("leaf", [], 2.0), ("leaf", [], -3.0), ("leaf", [], 10.0), ("*", [0, 1], None), ("+", [3, 2], None)]
    # a feeds three users at different depths (tanh, exp, and the final +): a diamond and more
    diamond = [("leaf", [], 0.7), ("tanh", [0], None), ("exp", [0], None), ("*", [1, 2], None), ("+", [3, 0], None)]
    # one Value used twice by the same operation: s = a + a, t = s * s, u = t * t
    doubled = [("leaf", [], 1.5), ("+", [0, 0], None), ("*", [1, 1], None), ("*", [2, 2], None)]
    # a tiny neuron: tanh(x1 w1 + x2 w2 + b)
    neuron = [
        ("leaf", [], 2.0),
        ("leaf", [], -3.0),
        ("leaf", [], 0.0),
        ("leaf", [], 1.0),
        ("leaf", [], 6.88),
        ("*", [0, 1], None),
        ("*", [2, 3], None),
        ("+", [5, 6], None),
        ("+", [7, 4], None),
        ("tanh", [8], None),
    ]
    # a skip connection: the input is used again four steps later
    skip = [
        ("leaf", [], 0.3),
        ("tanh", [0], None),
        ("exp", [1], None),
        ("pow", [2], 2),
        ("relu", [3], None),
        ("*", [4, 0], None),
    ]
    rng = case_rng(502)
    wide: list = []  # x1 w1 + x2 w2 + ... + x40 w40, as in a neuron with 40 inputs
    total = None  # index of the running sum
    for _ in range(40):
        wide += [("leaf", [], float(rng.normal())), ("leaf", [], float(rng.normal()))]
        wide.append(("*", [len(wide) - 2, len(wide) - 1], None))
        if total is not None:
            wide.append(("+", [total, len(wide) - 1], None))
        total = len(wide) - 1
    return [
        Case("a * b + c (5 nodes)", ({"__graph__": tiny},)),
        Case("a shared node: a feeds tanh, exp and the final + (5 nodes)", ({"__graph__": diamond},)),
        Case("a Value used twice by one operation: a + a, then s * s (4 nodes)", ({"__graph__": doubled},)),
        Case("a single leaf (1 node)", ({"__graph__": [("leaf", [], 4.0)]},)),
        Case("a neuron tanh(x1 w1 + x2 w2 + b) (10 nodes)", ({"__graph__": neuron},)),
        Case("a skip connection (6 nodes)", ({"__graph__": skip},)),
        Case(f"a neuron with 40 inputs ({len(wide)} nodes)", ({"__graph__": wide},)),
        Case("a chain of 100,000 nodes", (_chain_spec(100_000),), evidence=False),  # for recursion only
    ]


def _reachable(spec: list) -> set[int]:
    """Indices of the spec nodes reachable from the last one (the root)."""
    seen, stack = set(), [len(spec) - 1]
    while stack:
        i = stack.pop()
        if i not in seen:
            seen.add(i)
            stack.extend(spec[i][1])
    return seen


def _order_problem(spec: list, received: list) -> str | None:
    """Check the three rules on a list of node indices; None when they hold."""
    if any(not isinstance(i, int) or isinstance(i, bool) for i in received):
        return "returned items that are not Values"
    if -1 in received:
        return f"{received.count(-1)} of the returned items are not Values of this graph"
    nodes = _reachable(spec)
    positions: dict[int, int] = {}
    for position, i in enumerate(received):
        if i in positions:
            return f"node {i} appears more than once (at positions {positions[i]} and {position})"
        positions[i] = position
    missing = nodes - set(positions)
    if missing:
        return f"{len(missing)} of the {len(nodes)} nodes are missing (for example node {min(missing)})"
    for i in received:
        for j in spec[i][1]:
            if positions[j] > positions[i]:
                return f"node {i} comes before its input node {j}"
    root = len(spec) - 1
    if received[-1] != root:
        return f"the root (node {root}) is at position {positions[root]}, it must be last"
    return None


def _compare_topological_order(exercise: Exercise, case: Case, received) -> None:
    spec = case.args[0]["__graph__"]
    if received is None:
        exercise.fail(case, "returned None", hint="is a `return` missing? return the list of Values")
    if not isinstance(received, list):
        exercise.fail(
            case,
            f"returned {type(received).__name__}, expected a list of Values",
            hint="collect the nodes in a list and return it",
        )
    problem = _order_problem(spec, received)
    if problem is None:
        return
    evidence = _EVIDENCE.get()
    if evidence is not None and evidence.nested:
        exercise.fail(case, problem)  # judging a mistake's own output: only pass or fail matters
    hint = None
    nodes = build_graph(case.args[0])
    if "not Values" in problem:
        hint = NOT_NODES_HINT
    else:
        index = {id(node): i for i, node in enumerate(nodes)}
        matching = []
        for mistake in exercise.mistakes:
            try:
                wrong = [index.get(id(node), -1) for node in mistake.fn(nodes[-1])]
            except Exception:
                continue
            if wrong == received:
                matching.append(mistake)
        # A hint names a mistake only where that mistake behaves like the answer on every case seen.
        hint = exercise._only_hint(matching, evidence)
    root = len(spec) - 1
    if hint is None:
        missing = _reachable(spec) - set(received)
        if "more than once" in problem:
            hint = DUPLICATE_HINT
        elif "missing" in problem and missing == {root}:
            hint = ROOT_MISSING_HINT
        elif "missing" in problem and {nodes[i].data for i in missing} & {nodes[i].data for i in received}:
            hint = DATA_VISITED_HINT
        elif "missing" in problem:
            hint = LEAVES_HINT if all(spec[i][0] == "leaf" for i in missing) else FIRST_INPUT_HINT
        elif "root" in problem and received[0] == root:
            hint = REVERSED_HINT
        elif "comes before its input" in problem and received[0] == root:
            hint = REVERSED_HINT if _reversed_everywhere(evidence, received, spec) else PREORDER_HINT
        else:
            hint = POST_ORDER_HINT
    shown = received if len(received) <= 12 else received[:12] + ["..."]
    exercise.fail(
        case, f"{problem}; nodes are numbered in creation order, inputs first: you returned {shown}", hint=hint
    )


def _reversed_everywhere(evidence, received: list, spec: list) -> bool:
    """Is the answer, read backwards, a right order on this case and on every other case observed?"""
    if _order_problem(spec, received[::-1]) is not None:
        return False
    if evidence is None or evidence.observations is None:
        return True
    for other, observation in zip(evidence.cases, evidence.observations):
        output = _harness.decode(observation["output"]) if "output" in observation else None
        if isinstance(output, list) and _order_problem(other.args[0]["__graph__"], output[::-1]) is not None:
            return False
    return True


SELF_CALL_HINT = (
    "the exercise asks for no recursion: a function that calls itself needs one stack frame per node, so a "
    "graph of 100,000 nodes overflows the stack (raising sys.setrecursionlimit only moves the crash, it can "
    "take the whole kernel down); use an explicit stack, a list you append to and pop from, in a while loop"
)
SLOW_VISITED_HINT = (
    "too slow: on the 100,000-node chain the reference takes well under a second. The usual cause is a visited "
    "LIST: `node in visited` compares with every node seen so far, billions of comparisons here; keep visited "
    "nodes in a set (visited = set(); visited.add(node)), which answers at once"
)


class _GraphExercise(Exercise):
    """An exercise on Value graphs: errors such as RecursionError get their own hint, recursion is refused."""

    def _verdict(self, index: int, observation: dict, cases: list[Case]) -> None:
        case = cases[index]
        recursion = observation.get("recursion")
        graphs = [arg["__graph__"] for arg in case.args if isinstance(arg, dict) and "__graph__" in arg]
        watched = bool(graphs) and len(graphs[-1]) <= _harness.RECURSION_WATCH_MAX_NODES
        if (
            "error" not in observation
            and watched
            and not (isinstance(recursion, dict) and isinstance(recursion.get("depth"), int))
        ):  # the harness watches every graph this small: a missing record is not "no recursion"
            self.fail(case, "no record of how deep its calls went came back", hint=NO_RECORD_HINT)
        recursion = recursion if isinstance(recursion, dict) else {}
        if "error" not in observation and recursion.get("depth", 1) >= 2:
            name = recursion.get("function") or "a function"
            self.fail(
                case,
                f"`{name}` calls itself ({recursion['depth']} calls deep on this graph; on the "
                f"100,000-node chain that ends in a RecursionError or a crash)",
                hint=SELF_CALL_HINT,
            )
        super()._verdict(index, observation, cases)


def _graph_error_hint(error: dict) -> str | None:
    """A RecursionError, or a sort that returned None, named as such."""
    if error["type"] == "RecursionError":
        return RECURSION_HINT
    if "'NoneType' object is not iterable" in error["message"]:
        return "topological_order returned None: is a `return` missing? return the list of Values"
    return None


register(
    _GraphExercise(
        error_hints=_graph_error_hint,
        id="topological_order",
        lesson="05",
        points=3,
        description="every Value once, inputs before users, root last, without recursion",
        cases=_topological_order_cases,
        reference=_topological_order,
        compare_answer=_compare_topological_order,
        kind="nodes",
        time_limit=5.0,
        slow_hint=SLOW_VISITED_HINT,
        mistakes=[
            Mistake(recursive_topological_order, SELF_CALL_HINT),
            Mistake(_topo_no_visited, DUPLICATE_HINT),
            Mistake(_topo_root_first, REVERSED_HINT),
            Mistake(_topo_reversed_bfs, BFS_HINT),
            Mistake(_topo_no_leaves, LEAVES_HINT),
            Mistake(_topo_first_input_only, FIRST_INPUT_HINT),
            Mistake(_topo_preorder, PREORDER_HINT),
            Mistake(_topo_no_root, ROOT_MISSING_HINT),
            Mistake(_topo_visited_by_data, DATA_VISITED_HINT),
            Mistake(_topo_visited_when_pushed, PUSHED_VISITED_HINT),
        ],
    )
)
