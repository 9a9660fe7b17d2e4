"""Checks for lesson 04 (exercises of EXERCISES.md)."""
