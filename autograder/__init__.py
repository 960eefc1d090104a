"""Sandboxed autograding engine of the gradient_backward kit."""
__version__ = "0.1.0"
