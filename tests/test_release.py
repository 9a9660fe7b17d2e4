"""bpkit release: solution notebooks -> learner stubs; and the committed lessons/ are up to date."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from bpkit.cli import main
from bpkit.notebook import (
    BEGIN_MARKER,
    CHECK_TAG,
    END_MARKER,
    EXERCISE_TAG,
    METADATA_KEY,
    RUN_ON_TAG,
    check_source,
    lesson_metadata,
    tagged_ids,
)
from bpkit.release import ReleaseError, plan, render, solution_regions

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))

EXERCISE_CELL = f'''def weighted_sum(x, w, b):
    """Return the weighted sum."""
    {BEGIN_MARKER}
    z = float(x @ w)
    return z + b
    {END_MARKER}'''


def write_solution(folder: Path, name: str, cells: list, **metadata) -> Path:
    """A tiny solution notebook with an output and an execution count on every code cell."""
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}, **metadata})
    for count, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        cell.execution_count = count + 1
        cell.outputs = [new_output("stream", name="stdout", text="secret output\n")]
        cell.metadata["execution"] = {"iopub.execute_input": "2024-01-01T00:00:00Z"}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    nbformat.write(nb, path)
    return path


def release_one(tmp_path: Path, cells: list, name: str = "01_neurons.ipynb", **metadata):
    """Release one tiny notebook and return the lesson notebook."""
    write_solution(tmp_path / "solutions", name, cells, **metadata)
    assert main(["release", str(tmp_path / "solutions"), str(tmp_path / "lessons")]) == 0
    return nbformat.read(tmp_path / "lessons" / name, as_version=4)


def basic_cells() -> list:
    return [
        new_markdown_cell("# Neurons"),
        new_code_cell("import numpy as np\nfrom bpkit import checks"),
        new_code_cell(EXERCISE_CELL),
        new_code_cell(check_source("weighted_sum")),
    ]


# -- the stub ------------------------------------------------------------------------------------


def test_solution_region_becomes_stub_keeping_def_and_docstring(tmp_path):
    lesson = release_one(tmp_path, basic_cells())
    assert lesson.cells[2].source == (
        'def weighted_sum(x, w, b):\n    """Return the weighted sum."""\n'
        '    raise NotImplementedError("weighted_sum: your code here")'
    )


def test_stub_keeps_the_marker_indentation_and_every_region_is_replaced(tmp_path):
    source = (
        "def layer_forward(X, W, b, activation):\n"
        "    if X.ndim == 2:\n"
        f"        {BEGIN_MARKER}\n        Z = X @ W + b\n        {END_MARKER}\n"
        f"    {BEGIN_MARKER}\n    return Z, activation(Z)\n    {END_MARKER}\n"
        "    # a comment after the regions stays"
    )
    lesson = release_one(tmp_path, [new_code_cell(source), new_code_cell(check_source("layer_forward"))])
    assert lesson.cells[0].source.splitlines() == [
        "def layer_forward(X, W, b, activation):",
        "    if X.ndim == 2:",
        '        raise NotImplementedError("layer_forward: your code here")',
        '    raise NotImplementedError("layer_forward: your code here")',
        "    # a comment after the regions stays",
    ]


def test_outputs_counts_and_run_metadata_are_cleared_user_tags_kept(tmp_path):
    cells = basic_cells()
    cells[1].metadata["tags"] = ["nbval-ignore-output", f"{EXERCISE_TAG}stale"]
    lesson = release_one(tmp_path, cells)
    for cell in lesson.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
            assert "execution" not in cell.metadata
    assert lesson.cells[1].metadata["tags"] == ["nbval-ignore-output"]  # our own tags are recomputed


def test_lesson_metadata_tags_and_check_metadata(tmp_path):
    lesson = release_one(tmp_path, basic_cells(), language_info={"name": "python", "version": "3.11.7"})
    assert lesson.metadata[METADATA_KEY] == lesson_metadata("01")[METADATA_KEY]
    assert lesson.metadata["language_info"] == {"name": "python"}  # no interpreter version: it varies by machine
    assert lesson.metadata["kernelspec"]["name"] == "python3"
    assert lesson.cells[2].metadata["tags"] == [f"{EXERCISE_TAG}weighted_sum"]
    assert lesson.cells[3].metadata["tags"] == [f"{CHECK_TAG}weighted_sum", RUN_ON_TAG]
    assert lesson.cells[3].metadata[METADATA_KEY] == {"check": "weighted_sum"}
    assert "tags" not in lesson.cells[1].metadata


def test_release_is_byte_identical_when_repeated(tmp_path):
    release_one(tmp_path, basic_cells())
    first = (tmp_path / "lessons" / "01_neurons.ipynb").read_bytes()
    assert main(["release", str(tmp_path / "solutions"), str(tmp_path / "lessons")]) == 0
    assert (tmp_path / "lessons" / "01_neurons.ipynb").read_bytes() == first
    assert first.decode() == render(nbformat.reads(first.decode(), as_version=4))


def test_check_mode_reports_stale_files_without_writing(tmp_path, capsys):
    release_one(tmp_path, basic_cells())
    args = ["release", str(tmp_path / "solutions"), str(tmp_path / "lessons"), "--check"]
    assert main(args) == 0
    target = tmp_path / "lessons" / "01_neurons.ipynb"
    target.write_text(target.read_text().replace("your code here", "edited"))
    edited = target.read_text()
    (tmp_path / "lessons" / "09_orphan.ipynb").write_text("{}")
    capsys.readouterr()
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "01_neurons.ipynb" in out and "09_orphan.ipynb" in out
    assert target.read_text() == edited  # --check writes nothing


def test_release_removes_lessons_whose_solution_is_gone(tmp_path):
    release_one(tmp_path, basic_cells())
    orphan = tmp_path / "lessons" / "09_orphan.ipynb"
    orphan.write_text("{}")
    assert main(["release", str(tmp_path / "solutions"), str(tmp_path / "lessons")]) == 0
    assert not orphan.exists()


# -- clear errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, expected",
    [
        (f"def weighted_sum(x, w, b):\n    {BEGIN_MARKER}\n    return 1.0", "never closed"),
        (f"def weighted_sum(x, w, b):\n    return 1.0\n    {END_MARKER}", "without a `### BEGIN SOLUTION`"),
        (f"def weighted_sum(x, w, b):\n    {BEGIN_MARKER}\n    {BEGIN_MARKER}\n    {END_MARKER}", "never closed"),
        (f"{BEGIN_MARKER}\nz = 1\n{END_MARKER}", "found no function"),
        (f"def not_an_exercise(x):\n    {BEGIN_MARKER}\n    return x\n    {END_MARKER}", "not an exercise id"),
        (f"def sigmoid(z):\n    {BEGIN_MARKER}\n    return z\n    {END_MARKER}", "registered for lesson 02, not 01"),
    ],
    ids=["begin-unclosed", "end-without-begin", "nested-begin", "no-function", "unknown-id", "other-lesson"],
)
def test_bad_solution_cells_name_the_notebook_and_cell(tmp_path, capsys, source, expected):
    write_solution(tmp_path / "solutions", "01_neurons.ipynb", [new_markdown_cell("# x"), new_code_cell(source)])
    assert main(["release", str(tmp_path / "solutions"), str(tmp_path / "lessons")]) == 2
    err = capsys.readouterr().err
    assert "01_neurons.ipynb, cell 2" in err and expected in err
    assert not (tmp_path / "lessons").exists()


@pytest.mark.parametrize(
    "check, expected",
    [
        ("checks.no_such_exercise(no_such_exercise)", "not an exercise id"),
        ("checks.weighted_sum(my_function)", "found `checks.weighted_sum(my_function)`"),
        ("checks.layer_forward(layer_forward)", "no cell holds the solution of `layer_forward`"),
    ],
)
def test_bad_check_cells_are_reported(tmp_path, check, expected):
    cells = basic_cells()[:3] + [new_code_cell(check)]
    write_solution(tmp_path / "solutions", "01_neurons.ipynb", cells)
    with pytest.raises(ReleaseError, match="01_neurons.ipynb") as info:
        plan(tmp_path / "solutions", tmp_path / "lessons")
    assert expected in str(info.value)


def test_file_name_and_metadata_must_agree_on_the_lesson(tmp_path):
    write_solution(tmp_path / "solutions", "01_neurons.ipynb", basic_cells(), bpkit={"lesson": "02"})
    with pytest.raises(ReleaseError, match="metadata says lesson '02' but the file name says '01'"):
        plan(tmp_path / "solutions", tmp_path / "lessons")


def test_an_exercise_solved_twice_is_an_error(tmp_path):
    cells = basic_cells() + [new_code_cell(EXERCISE_CELL)]
    write_solution(tmp_path / "solutions", "01_neurons.ipynb", cells)
    with pytest.raises(ReleaseError, match="second solution cell"):
        plan(tmp_path / "solutions", tmp_path / "lessons")


def test_an_empty_solutions_folder_is_an_error(tmp_path, capsys):
    (tmp_path / "solutions").mkdir()
    assert main(["release", str(tmp_path / "solutions"), str(tmp_path / "lessons")]) == 2
    assert "no solution notebooks" in capsys.readouterr().err


# -- the real course -----------------------------------------------------------------------------


def test_the_course_has_solution_notebooks():
    assert SOLUTIONS, f"no solution notebooks in {ROOT / 'solutions'}: the release tests have nothing to check"


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """Every solution released in memory into a temporary folder (nothing under lessons/ is touched)."""
    return {r.source.name: r for r in plan(ROOT / "solutions", tmp_path_factory.mktemp("lessons"))}


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_committed_lesson_is_up_to_date(solution, released):
    lesson = ROOT / "lessons" / solution.name
    assert lesson.exists(), f"{lesson} is missing: run `bpkit release solutions/ lessons/`"
    assert lesson.read_text(encoding="utf-8") == released[solution.name].text, (
        f"{lesson} is stale: run `bpkit release solutions/ lessons/` and commit lessons/"
    )


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_no_solution_text_reaches_the_lesson(solution, released):
    solution_nb = nbformat.read(solution, as_version=4)
    lesson_nb = nbformat.reads(released[solution.name].text, as_version=4)
    assert len(lesson_nb.cells) == len(solution_nb.cells)
    regions_seen = 0
    for index, (cell, lesson_cell) in enumerate(zip(solution_nb.cells, lesson_nb.cells)):
        if cell.cell_type != "code":
            continue
        lines = cell.source.splitlines()
        regions = solution_regions(cell.source, f"{solution.name}, cell {index + 1}")
        inside = {i for begin, end in regions for i in range(begin + 1, end)}
        outside = {lines[i].strip() for i in range(len(lines)) if i not in inside}
        lesson_lines = {line.strip() for line in lesson_cell.source.splitlines()}
        for i in sorted(inside):
            text = lines[i].strip()
            if text and text not in outside:  # a line also present outside the markers may stay
                assert text not in lesson_lines, f"{solution.name}, cell {index + 1}: solution line leaked: {text!r}"
        assert BEGIN_MARKER not in lesson_cell.source and END_MARKER not in lesson_cell.source
        assert not lesson_cell.outputs
        regions_seen += len(regions)
    assert released[solution.name].exercises and regions_seen >= len(released[solution.name].exercises)


@pytest.mark.filterwarnings("ignore")  # nbformat warns about the flawed ids it reads: that is the point
def test_missing_or_repeated_cell_ids_get_deterministic_ones(tmp_path):
    path = write_solution(tmp_path / "solutions", "01_neurons.ipynb", basic_cells())
    raw = json.loads(path.read_text())
    raw["cells"][2]["id"] = raw["cells"][1]["id"]  # a copy-pasted cell keeps its twin's id
    del raw["cells"][3]["id"]
    path.write_text(json.dumps(raw))  # nbformat.write would repair the ids itself, randomly
    first = plan(tmp_path / "solutions", tmp_path / "lessons")[0].text
    assert plan(tmp_path / "solutions", tmp_path / "lessons")[0].text == first
    ids = [cell.id for cell in nbformat.reads(first, as_version=4).cells]
    assert len(set(ids)) == len(ids) and ids[1] == raw["cells"][1]["id"]


def test_cells_that_raise_while_stubs_let_run_all_continue():
    """Check cells and cells calling an exercise get `raises-exception`, so Run All reaches the end."""
    for lesson in sorted((ROOT / "lessons").glob("*.ipynb")):
        nb = nbformat.read(lesson, as_version=4)
        for cell in nb.cells:
            tags = cell.metadata.get("tags", [])
            if tagged_ids(cell, CHECK_TAG):
                assert RUN_ON_TAG in tags, f"{lesson.name}: check cell without {RUN_ON_TAG}"
            if tagged_ids(cell, EXERCISE_TAG):
                assert RUN_ON_TAG not in tags, f"{lesson.name}: an exercise cell itself must not be tagged"


def test_check_failure_shows_only_its_message_in_ipython():
    from bpkit.checks import CheckFailure

    lines = CheckFailure("weighted_sum failed on x: wrong value\n  hint:     add b")._render_traceback_()
    assert lines == ["CheckFailure: weighted_sum failed on x: wrong value", "  hint:     add b"]


def test_cells_that_depend_on_an_exercise_indirectly_get_raises_exception(tmp_path):
    """A helper calling the exercise, a result computed with it, and a cell using either: all raise while the
    exercise is a stub, so all let Run All continue. A cell that rebinds the name cleanly is free again."""
    cells = basic_cells() + [
        new_code_cell("def total(xs):\n    return sum(weighted_sum(x, x, 0.0) for x in xs)"),  # 4: helper
        new_code_cell("values = [total([np.ones(2)])]"),  # 5: uses the helper
        new_code_cell("print(values[0] * 2)"),  # 6: uses the result
        new_code_cell("values = [1.0]"),  # 7: rebinds it without the exercise
        new_code_cell("print(values)"),  # 8: free again
        new_code_cell("print(np.ones(3))"),  # 9: unrelated
    ]
    lesson = release_one(tmp_path, cells)
    tagged = [i for i, cell in enumerate(lesson.cells) if RUN_ON_TAG in cell.metadata.get("tags", [])]
    assert tagged == [3, 4, 5, 6]  # the check, the helper (it names the exercise), its users; not 7, 8, 9


def test_cell_names_reads_functions_bodies_and_binds_top_level_names():
    from bpkit.release import cell_names

    bound, read = cell_names("import numpy as np\nfrom a import b as c\ndef f(x):\n    return g(x)\ny, z = f(1), 2")
    assert bound == {"np", "c", "f", "y", "z"} and {"g", "f"} <= read
    assert cell_names("%matplotlib inline") == (set(), {"matplotlib", "inline"})


# -- nbval markers: cell tags, with the reason in the test or in the learner's words ---------------

NBVAL_TAGS = ("nbval-ignore-output", "nbval-skip", "nbval-check-output")
# Cells whose output nbval ignores, other than an explorer (a live widget) or a timing (the cell itself
# says in a comment that times differ between machines). Adding one means saying why here.
IGNORED_OUTPUTS = {
    ("00_start_here", "l00-15"): "lists every registered exercise: it grows whenever a lesson gains one",
    ("00_start_here", "4155d4b4"): "bpkit progress on the folder: it shows whatever notebooks are saved there",
}
# What a learner must not read: test-harness markers and remarks about how the course tests itself.
HARNESS_TEXT = re.compile(r"nbval|notebook tests|tests? (suite )?(do|does) not compare|course tests itself", re.I)


def _notebooks() -> list[Path]:
    return SOLUTIONS + sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_test_harness_text_in_what_learners_read(path):
    nb = nbformat.read(path, as_version=4)
    found = [
        f"cell {i + 1}: {line.strip()}"
        for i, cell in enumerate(nb.cells)
        for line in cell.source.splitlines()
        if HARNESS_TEXT.search(line)
    ]
    assert not found, f"{path.name}: use a cell tag ({', '.join(NBVAL_TAGS)}), not text:\n" + "\n".join(found)


def test_every_ignored_output_is_an_explorer_a_timing_or_has_its_reason_here():
    ignored = set()
    for path in SOLUTIONS:
        for cell in nbformat.read(path, as_version=4).cells:
            if "nbval-ignore-output" not in cell.metadata.get("tags", []):
                continue
            comments = " ".join(line for line in cell.source.splitlines() if line.lstrip().startswith("#"))
            if "bpkit.widgets" in cell.source:
                continue  # a live widget: its text form names the widget's model
            if "perf_counter" in cell.source or "time." in cell.source:
                assert "machine" in comments, (
                    f"{path.name}: a timing cell says why its numbers differ: {cell.source[:80]}"
                )
                continue
            ignored.add((path.stem, cell.id))
    assert ignored == set(IGNORED_OUTPUTS)


def test_nbval_tags_reach_the_released_lessons(released):
    tagged = 0
    for path in SOLUTIONS:
        solution = nbformat.read(path, as_version=4)
        lesson = nbformat.reads(released[path.name].text, as_version=4)
        for ours, theirs in zip(solution.cells, lesson.cells):
            wanted = [t for t in ours.metadata.get("tags", []) if t in NBVAL_TAGS]
            assert [t for t in theirs.metadata.get("tags", []) if t in NBVAL_TAGS] == wanted
            tagged += bool(wanted)
    assert tagged >= len(IGNORED_OUTPUTS)


@pytest.mark.slow
def test_nbval_honours_the_ignore_output_tag(tmp_path):
    """nbval compares an untagged cell's stored output and skips a tagged one's (the tag is not decoration)."""
    import subprocess
    import sys

    def notebook(tags: list[str]) -> Path:
        cell = new_code_cell("print(2 + 2)", metadata={"tags": tags})
        cell.execution_count = 1
        cell.outputs = [new_output("stream", name="stdout", text="5\n")]  # not what the cell prints
        path = tmp_path / f"nb_{len(tags)}.ipynb"
        nbformat.write(
            new_notebook(cells=[cell], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}}), path
        )
        return path

    def nbval(path: Path) -> int:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", str(path)],
            cwd=tmp_path,
            capture_output=True,
            timeout=120,
        ).returncode

    assert nbval(notebook(["nbval-ignore-output"])) == 0
    assert nbval(notebook([])) == 1
