"""Checks for lesson 00 (exercises of EXERCISES.md)."""
