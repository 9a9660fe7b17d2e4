"""Checks for lesson 07 (exercises of EXERCISES.md)."""
