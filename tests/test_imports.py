"""Rules read from bpkit's source with ast: no import cycle, no reading of the caller's frames.

An edge a -> b is an import of bpkit module b at the top level of module a (including under `if` or
`try`, which run at import time). Imports inside a function body are left out: they run when the
function is called, after every module has loaded, which is how a module may use one that imports it
(the package's own lazy names in bpkit/__init__.py work this way). `from bpkit.x import y` is an edge
to bpkit.x, and to bpkit.x.y when that is a module.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import bpkit

PACKAGE = Path(bpkit.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts}


def imports(tree: ast.Module, name: str, is_package: bool, in_functions: bool = False) -> set[str]:
    """bpkit modules imported when the module runs; with in_functions, also those imported by its functions."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if not in_functions and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return  # runs only when called
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # `from pkg import submodule` needs the submodule (pkg loads first anyway)
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {module for module in found if module in MODULES and module != name}


TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}
GRAPH = {name: imports(TREES[name], name, MODULES[name].name == "__init__.py") for name in MODULES}
# With the imports inside functions too: a cycle here is legal Python but a knot a reader has to untie.
LAZY_GRAPH = {
    name: imports(TREES[name], name, MODULES[name].name == "__init__.py", in_functions=True) for name in MODULES
}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle found by depth-first search, each once, starting at its smallest module."""
    found: set[tuple[str, ...]] = set()

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt == start:
                found.add(tuple(path))
            elif nxt > start and nxt not in path:
                walk(start, nxt, [*path, nxt])

    for start in sorted(graph):
        walk(start, start, [start])
    return [list(cycle) for cycle in sorted(found)]


def test_the_graph_sees_real_imports():
    """The walk is not vacuous: known edges are found, and a function-level import is not one."""
    assert "bpkit.layers" in GRAPH["bpkit.gradcheck"]
    assert "bpkit.init" in GRAPH["bpkit.layers"]
    assert GRAPH["bpkit"] == set()  # bpkit/__init__.py loads its names inside __getattr__
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _grading(cycle: list[str]) -> bool:
    return any(module.startswith("bpkit.grading") or module == "bpkit.grade" for module in cycle)


def _show(found: list[list[str]]) -> str:
    return "import cycles: " + "; ".join(" -> ".join([*c, c[0]]) for c in found)


def test_no_import_cycle_at_import_time():
    """Module-level imports (what runs on `import bpkit.x`) form no cycle anywhere in bpkit."""
    found = cycles(GRAPH)
    assert found == [], _show(found)


def test_no_import_cycle_through_function_level_imports_outside_grading():
    """Outside grading, even the imports inside functions form no cycle.

    bpkit/__init__.py's lazy names import bpkit.layers and the rest inside __getattr__ and
    nothing imports bpkit itself back, so the learner library stays a tree under the package.
    """
    found = [cycle for cycle in cycles(LAZY_GRAPH) if not _grading(cycle)]
    assert found == [], _show(found)


def test_no_import_cycle_through_function_level_imports_in_grading():
    """Grading is a pipeline: grade (CLI) -> grader -> execute/forkserver -> sandbox, and zygote -> runner."""
    found = [cycle for cycle in cycles(LAZY_GRAPH) if _grading(cycle)]
    assert found == [], _show(found)


FRAME_READING = {"_getframe", "currentframe", "f_back", "f_lasti", "f_locals", "stack"}


def test_the_library_does_not_read_its_callers_frames_or_bytecode():
    """Behaviour is said with data (e.g. Linear's input_grad), never by inspecting the caller (issue 23)."""
    found = []
    for name, tree in TREES.items():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in FRAME_READING
                and not (node.attr == "stack" and not (isinstance(node.value, ast.Name) and node.value.id == "inspect"))
            ):
                found.append(f"{name}:{node.lineno} .{node.attr}")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module]
                found.extend(f"{name}:{node.lineno} import dis" for module in modules if module == "dis")
    assert found == []


GRADING_MAX_LINES = 400
TESTS = Path(__file__).resolve().parent


def test_every_grading_module_is_small_and_imported_by_a_test():
    """One responsibility a module (issue 23): none over 400 lines, and each one has a test of its own
    that imports it by name (`bpkit.grading.x` or `from bpkit.grading import x`), not only through others."""
    texts = [path.read_text(encoding="utf-8") for path in TESTS.glob("*.py")]
    grading = {name: path for name, path in MODULES.items() if name.startswith("bpkit.grading.")}
    assert len(grading) > 10  # the walk found the package
    lines = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in grading.items()}
    too_long = {name: n for name, n in lines.items() if n > GRADING_MAX_LINES}
    assert too_long == {}, f"over {GRADING_MAX_LINES} lines: {too_long}"
    untested = []
    for name in (n for n, path in grading.items() if path.parent.name == "grading"):  # answer_free/: course-copy files
        short = name.rsplit(".", 1)[1]
        named = re.compile(rf"\b{re.escape(name)}\b|from bpkit\.grading import [\w, (\n]*\b{short}\b")
        if not any(named.search(text) for text in texts):
            untested.append(name)
    assert untested == [], f"grading modules no test imports: {untested}"
