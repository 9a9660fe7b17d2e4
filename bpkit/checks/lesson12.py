"""Checks for lesson 12 (exercises of EXERCISES.md)."""
