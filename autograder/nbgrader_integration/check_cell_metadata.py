"""CheckCellMetadata: nbgrader's check of every cell's nbgrader metadata, with its JSON schema compiled once rather than once per cell."""
from __future__ import annotations

import contextlib
import json

import jsonschema
from jsonschema.exceptions import best_match
from nbgrader.nbgraderformat import common
from nbgrader.preprocessors import CheckCellMetadata as _NbgraderCheckCellMetadata

_VALIDATORS: dict[str, object] = {}


def _validate(instance, schema) -> None:
    """`jsonschema.validate` without checking the schema itself again: that check, repeated for
    each cell, is most of nbgrader's per-notebook cost. Same errors, raised the same way."""
    key = json.dumps(schema, sort_keys=True)
    validator = _VALIDATORS.get(key)
    if validator is None:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        validator = _VALIDATORS[key] = cls(schema)
    error = best_match(validator.iter_errors(instance))
    if error is not None:
        raise error


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
    """nbgrader's CheckCellMetadata (schema version, grade ids, points, cell types), the schema compiled once per process."""

    def preprocess(self, nb, resources):
        with _compiled_schemas():
            return super().preprocess(nb, resources)
