"""bpkit: build backpropagation yourself, one notebook at a time."""

__version__ = "0.1.0"
