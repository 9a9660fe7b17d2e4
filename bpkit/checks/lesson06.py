"""Checks for lesson 06 (exercises of EXERCISES.md)."""
