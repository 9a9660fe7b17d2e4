"""The `bpkit` command: dispatches to lessons, solutions, lab, progress, release, grade and setup-lab."""

from __future__ import annotations

import argparse
from pathlib import Path


def _setup_lab(args: argparse.Namespace) -> int:
    """Write JupyterLab settings overrides into this environment (no news pop-up over the notebook)."""
    from bpkit.course import write_lab_settings

    print(f"JupyterLab settings written to {write_lab_settings()}")
    return 0


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows `(default: X)` where a default means something (not for flags, not where the help says it)."""

    def _get_help_string(self, action):
        if action.default in (None, False, argparse.SUPPRESS) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    from bpkit import __version__

    parser = argparse.ArgumentParser(prog="bpkit", description="The bpkit backprop course toolkit.")
    parser.add_argument("--version", action="version", version=f"bpkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    from bpkit.course import DEFAULT_DIR, DEFAULT_SOLUTIONS_DIR

    p = sub.add_parser("lessons", help="copy the lesson notebooks into a folder (never over your own work)")
    p.add_argument(
        "dir", type=Path, nargs="?", default=DEFAULT_DIR, help=f"where to put them (default: ./{DEFAULT_DIR})"
    )
    p = sub.add_parser("solutions", help="copy the solved, executed notebooks into a folder (never over a file there)")
    p.add_argument(
        "dir",
        type=Path,
        nargs="?",
        default=DEFAULT_SOLUTIONS_DIR,
        help=f"where to put them, not your lessons folder (default: ./{DEFAULT_SOLUTIONS_DIR})",
    )
    p = sub.add_parser("lab", help="open the lessons in JupyterLab (copies them first if needed)")
    p.add_argument(
        "dir", type=Path, nargs="?", default=DEFAULT_DIR, help=f"the lessons folder (default: ./{DEFAULT_DIR})"
    )
    p.add_argument("jupyter_args", nargs=argparse.REMAINDER, help="more options for `jupyter lab`, e.g. --no-browser")
    p = sub.add_parser("progress", help="your exercises passed per lesson, from the saved notebooks")
    p.add_argument(
        "dir",
        type=Path,
        nargs="?",
        default=None,
        help=f"the lessons folder (default: the current folder, ./{DEFAULT_DIR} or ./lessons)",
    )

    p = sub.add_parser("release", help="write learner notebooks (stubs) from solution notebooks")
    p.add_argument("source", type=Path, help="folder of solution notebooks, e.g. solutions/")
    p.add_argument("dest", type=Path, help="folder to write lessons into, e.g. lessons/")
    p.add_argument("--check", action="store_true", help="do not write; exit 1 if dest is stale")
    p.add_argument(
        "--exercises",
        action="append",
        type=Path,
        default=[],
        metavar="PATH",
        help="a .py file or folder of your own exercises (same API as bpkit.checks; repeatable)",
    )

    from bpkit.grade import add_arguments as add_grade_arguments

    add_grade_arguments(
        sub.add_parser(
            "grade",
            help="grade student notebooks into a gradebook and feedback files",
            formatter_class=DefaultsFormatter,
        )
    )

    sub.add_parser("setup-lab", help="write JupyterLab settings for this environment (bpkit lab does it too)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("lessons", "solutions", "lab", "progress"):
        from bpkit import course

        if args.command == "lessons":
            return course.lessons_command(args.dir)
        if args.command == "solutions":
            return course.solutions_command(args.dir)
        if args.command == "lab":
            return course.lab_command(args.dir, args.jupyter_args)
        return course.progress_command(args.dir)
    if args.command == "release":
        from bpkit.release import main as release_main

        return release_main(args)
    if args.command == "grade":
        from bpkit.grade import main as grade_main

        return grade_main(args)
    if args.command == "setup-lab":
        return _setup_lab(args)
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    raise SystemExit(main())
