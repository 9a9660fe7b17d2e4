"""Checks for lesson 02 (exercises of EXERCISES.md)."""
