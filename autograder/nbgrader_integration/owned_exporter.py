"""OwnedNotebookExporter: nbconvert's NotebookExporter for a notebook it reads itself, without the copies and repeated checks that protect a caller's notebook."""
from __future__ import annotations

import copy
import json
import os

import nbformat
from nbconvert.exporters import NotebookExporter
from nbformat import validator
from nbformat.v4.nbjson import BytesEncoder
from nbformat.v4.rwbase import split_lines, strip_transient


class OwnedNotebookExporter(NotebookExporter):
    """`from_file` as NotebookExporter does it (same steps, checks, errors and bytes), on the notebook it has just read, in place."""
    # nbconvert deep-copies the notebook four times per conversion (from_notebook_node, _preprocess,
    # normalize, writes) so that a caller's notebook is never changed. The notebook from_file
    # reads is nobody else's and is dropped once written: the copies (all NotebookNodes, lists and
    # plain values, copied to the same tree) change nothing. nbconvert also checks the result
    # twice: against the relaxed schema after the last step (raising) and the strict one in
    # nbformat.writes (logging). A notebook valid against the strict schema is valid against the
    # relaxed one, so the strict check runs once; only a notebook that fails it takes nbconvert's
    # own two checks, with their error and log line.

    def from_file(self, file_stream, resources=None, **kw):
        if not self._preprocessors or self.nbformat_version != 4:
            return super().from_file(file_stream, resources=resources, **kw)
        nb = nbformat.read(file_stream, as_version=4)   # validated as nbconvert reads it
        resources = self._init_resources(resources)
        if "language" in nb["metadata"]:
            resources["language"] = nb["metadata"]["language"].lower()
        nb, resources, strictly_valid = self._preprocess_owned(nb, resources)
        meta = resources.get("metadata", {})
        notebook_name = os.path.join(meta.get("path", ""), meta.get("name", ""))
        self._nb_metadata[notebook_name] = copy.deepcopy(nb.metadata)   # what writes leaves unstripped
        resources["output_suffix"] = ".v4" if nb.nbformat != 4 else ".nbconvert"
        if strictly_valid:
            output = _writes_in_place(nb)
        else:
            output = nbformat.writes(nb, version=4)   # checks again and logs the error, as nbconvert
        if not output.endswith("\n"):
            output = output + "\n"
        return output, resources

    def _preprocess_owned(self, nb, resources):
        """Exporter._preprocess without copying the notebook (the same normalisation, steps and
        checks); also says whether the result passes nbformat.writes' strict check."""
        resources = copy.deepcopy(resources)
        version, version_minor = validator.get_version(nb)
        validator._normalize(nb, version, version_minor, True,
                             relax_add_props=False, strip_invalid_metadata=False)
        for preprocessor in self._preprocessors:
            nb, resources = preprocessor(nb, resources)
            if not self.optimistic_validation:
                self._validate_preprocessor(nb, preprocessor)
        try:
            nbformat.validate(nb)
            strictly_valid = True
        except nbformat.ValidationError:
            strictly_valid = False
        if self.optimistic_validation and not strictly_valid:
            self._validate_preprocessor(nb, preprocessor)   # raises, and logs, as nbconvert does
        return nb, resources, strictly_valid


def _writes_in_place(nb) -> str:
    """nbformat.v4's JSONWriter.writes, splitting lines in the notebook itself instead of a copy."""
    nb = strip_transient(split_lines(nb))
    return json.dumps(nb, cls=BytesEncoder, indent=1, sort_keys=True, separators=(",", ": "),
                      ensure_ascii=False)
