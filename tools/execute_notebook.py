"""Re-execute solution notebooks in place, so the outputs they store are what the code prints now.

    python tools/execute_notebook.py solutions/NN_name.ipynb [...]      (or: make execute NB=...)

Each notebook runs top to bottom in a fresh kernel started in its own folder (as nbval runs it), through
nbclient; cells tagged `raises-exception` may raise, any other error stops and leaves the file unchanged.
`make execute` sets OPENBLAS_NUM_THREADS=1, as `make test` does, so the stored digits are the ones
nbval compares against. Afterwards: `make release`, then nbval and `make test-portable` on the notebook.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

TIMEOUT = 900  # seconds per cell: the longest solution cells train several networks


def execute(path: Path) -> None:
    """Run every cell of the notebook at path and write it back with the new outputs."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    nbformat.write(nb, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/execute_notebook.py", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path, help="solution notebooks, e.g. solutions/08_training.ipynb")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        if path.suffix != ".ipynb" or not path.is_file():
            print(f"{path}: not a notebook file; give a path like solutions/08_training.ipynb", file=sys.stderr)
            return 2
    for path in args.notebooks:
        print(f"executing {path} ...", flush=True)
        try:
            execute(path)
        except CellExecutionError as error:
            print(f"{path}: a cell raised, the file is unchanged:\n{error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
