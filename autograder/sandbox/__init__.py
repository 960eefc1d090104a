"""The sandbox: the launcher (host side), the supervisor and job processes inside it (inside.py), and their wire format (wire.py)."""
from .launcher import DESCRIPTIONS, Limits, Sandbox, SandboxError, detect_level

__all__ = ["DESCRIPTIONS", "Limits", "Sandbox", "SandboxError", "detect_level"]
