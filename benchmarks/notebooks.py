"""Seconds to execute every solution notebook, one fresh kernel each (what the nbval run costs)."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

SOLUTIONS = Path(__file__).resolve().parent.parent / "solutions"


def time_notebooks() -> dict[str, float]:
    """{notebook name: seconds} for solutions/*.ipynb, executed in their own folder."""
    seconds = {}
    for path in sorted(SOLUTIONS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        NotebookClient(
            nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(SOLUTIONS)}}
        ).execute()
        seconds[path.name] = time.perf_counter() - start
    return seconds
