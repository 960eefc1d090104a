"""CheckCellMetadata: nbgrader's check of every cell's nbgrader metadata, with its JSON schema compiled once rather than once per cell, and a metadata value that passed not checked against it again."""
from __future__ import annotations

import contextlib
import json

import jsonschema
from jsonschema.exceptions import best_match
from nbgrader.nbgraderformat import common
from nbgrader.preprocessors import CheckCellMetadata as _NbgraderCheckCellMetadata

_VALIDATORS: dict[str, object] = {}
_PASSED: set = set()          # (schema, metadata) pairs found valid in this process
_PASSED_MAX = 10_000


class _Uncacheable(Exception):
    """A value `_canonical` does not describe exactly: it is validated every time."""


def _canonical(value):
    """A hashable value equal for two metadata values only if jsonschema sees them alike
    (types included: True is not 1, 1 is not 1.0)."""
    kind = type(value)
    if value is None or kind in (str, int, bool):
        return kind.__name__, value
    if kind is float:
        return "float", repr(value)
    if isinstance(value, dict):
        if not all(type(k) is str for k in value):
            raise _Uncacheable
        return "dict", tuple(sorted((k, _canonical(v)) for k, v in value.items()))
    if kind is list:
        return "list", tuple(_canonical(v) for v in value)
    raise _Uncacheable


def _validate(instance, schema) -> None:
    """`jsonschema.validate` without checking the schema itself again: that check, repeated for
    each cell, is most of nbgrader's per-notebook cost. Same errors, raised the same way."""
    key = json.dumps(schema, sort_keys=True)
    # Cells carry the same metadata in every student's notebook (OverwriteCells restores it from
    # the source) and are checked twice per notebook: a metadata value that passed once passes
    # again (the check reads nothing else). Any other value is checked, and fails, as before.
    try:
        seen = (key, _canonical(instance))
    except _Uncacheable:
        seen = None
    if seen is not None and seen in _PASSED:
        return
    validator = _VALIDATORS.get(key)
    if validator is None:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        validator = _VALIDATORS[key] = cls(schema)
    error = best_match(validator.iter_errors(instance))
    if error is not None:
        raise error
    if seen is not None:
        if len(_PASSED) >= _PASSED_MAX:
            _PASSED.clear()
        _PASSED.add(seen)


class _CompiledJsonschema:
    """What nbgrader's metadata validator sees as `jsonschema` while the check runs."""
    validate = staticmethod(_validate)

    def __getattr__(self, name):
        return getattr(jsonschema, name)


@contextlib.contextmanager
def _compiled_schemas():
    saved = common.jsonschema
    common.jsonschema = _CompiledJsonschema()
    try:
        yield
    finally:
        common.jsonschema = saved


class CheckCellMetadata(_NbgraderCheckCellMetadata):
    """nbgrader's CheckCellMetadata (schema version, grade ids, points, cell types), the schema compiled once per process, each passing metadata value checked against it once."""

    def preprocess(self, nb, resources):
        with _compiled_schemas():
            return super().preprocess(nb, resources)
