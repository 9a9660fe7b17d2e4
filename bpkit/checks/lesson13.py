"""Checks for lesson 13 (exercises of EXERCISES.md)."""
