"""Start-up trims for the trusted side: imported before nbformat, it skips what grading never uses."""
import sys

# jsonschema checks the "iri" format with rfc3987_syntax, which compiles an Earley grammar at
# import (about 2 CPU seconds, paid by every grading process through nbformat's validator).
# No nbformat or nbgrader schema uses that format, and jsonschema skips the checker when the
# module is missing: mark it missing unless something imported it already.
# The kit's venv does the same for every process at start-up (`kit_lean.pth`, see Makefile):
# nbgrader's and jupyter's own commands too.
sys.modules.setdefault("rfc3987_syntax", None)
