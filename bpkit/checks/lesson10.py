"""Checks for lesson 10 (exercises of EXERCISES.md)."""
