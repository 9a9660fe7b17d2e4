"""`python -m bpkit ...` dispatches to the command line."""

from bpkit.cli import main

raise SystemExit(main())
