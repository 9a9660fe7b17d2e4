"""Checks for lesson 11 (exercises of EXERCISES.md)."""
