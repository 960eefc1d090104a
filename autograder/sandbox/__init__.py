"""The sandbox: a bwrap'd warm zygote (launcher.py) and the harness that runs beside student code (inside.py)."""
from .launcher import DESCRIPTIONS, Limits, Sandbox, SandboxError, detect_level

__all__ = ["DESCRIPTIONS", "Limits", "Sandbox", "SandboxError", "detect_level"]
