"""Entry point: `python -m autograder VERB ...`."""
import sys

from .cli import run

sys.exit(run())
