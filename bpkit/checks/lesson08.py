"""Checks for lesson 08 (exercises of EXERCISES.md)."""
