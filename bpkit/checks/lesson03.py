"""Checks for lesson 03 (exercises of EXERCISES.md)."""
