"""Modules that replace the checkers in a sandbox's copy of bpkit (see grading/course_copy.py).

`checks.py` becomes the copy's `bpkit/checks/__init__.py` (the catalogue, no reference answers) and
`lesson13.py` its `bpkit/checks/lesson13.py` (the capstone's training data only). They are never
imported in the grader itself.
"""
