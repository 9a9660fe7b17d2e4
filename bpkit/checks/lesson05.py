"""Checks for lesson 05 (exercises of EXERCISES.md)."""
