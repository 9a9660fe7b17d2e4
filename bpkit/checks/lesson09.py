"""Checks for lesson 09 (exercises of EXERCISES.md)."""
