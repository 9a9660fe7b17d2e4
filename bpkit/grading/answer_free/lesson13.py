"""The capstone's training data (the held-out images are not in this sandbox)."""

from bpkit.data import load_digits


def capstone_training_data():
    """The capstone's training digits: X (1438, 64) raw pixels 0..16, y (1438,) int labels 0..9."""
    return load_digits()
