"""The exporter of the cohort pass writes what nbconvert's NotebookExporter writes, and fails where it fails, without copying the notebook."""
from __future__ import annotations

import copy
import logging
from pathlib import Path

import nbformat
import pytest
from nbconvert.exporters import NotebookExporter

from autograder.nbgrader_integration.owned_exporter import OwnedNotebookExporter

pytestmark = pytest.mark.nbgrader

SOURCE = Path(__file__).resolve().parents[1] / "source" / "gradient_backward" / "gradient_backward.ipynb"


def _outputs(nb, resources):
    """A step like the kit's: outputs as plain dicts and NotebookNodes, metadata replaced."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": f"line {i}\nmore\n"},
                               nbformat.v4.new_output("execute_result", data={"text/plain": "1.5"})]
        cell["metadata"] = {"trusted": True, "tags": ["a"]}
    nb["metadata"] = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                      "signature": "x"}
    return nb, resources


def _extra_property(nb, resources):
    nb.cells[0]["unknown_field"] = 1          # not in the strict schema, allowed by the relaxed one
    return nb, resources


def _broken(nb, resources):
    nb.cells[0]["cell_type"] = "nonsense"     # invalid under either schema
    return nb, resources


def _convert(cls, path: Path, steps, optimistic=True):
    exporter = cls(optimistic_validation=optimistic)
    for step in steps:
        exporter.register_preprocessor(step, enabled=True)
    try:
        output, resources = exporter.from_filename(str(path), resources={"unique_key": "nb"})
    except Exception as e:  # noqa: BLE001 - the outcome compared is the exception itself
        return type(e), str(e)[:300]
    return output, dict(resources, metadata=dict(resources["metadata"]))


@pytest.mark.parametrize("optimistic", [True, False])
@pytest.mark.parametrize("steps", [[], [_outputs], [_outputs, _extra_property], [_outputs, _broken]],
                         ids=["none", "outputs", "extra-property", "broken"])
def test_the_owned_exporter_writes_and_fails_as_nbconverts_does(steps, optimistic, caplog):
    """For the released notebook through steps that leave it valid, strictly invalid or invalid,
    does the exporter return nbconvert's bytes and resources, or raise its error, and log the
    same errors?"""
    logs = {}
    for cls in (NotebookExporter, OwnedNotebookExporter):
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            outcome = _convert(cls, SOURCE, steps, optimistic)
        logs[cls] = (outcome, sorted(r.getMessage()[:80] for r in caplog.records))
    assert logs[NotebookExporter] == logs[OwnedNotebookExporter]
    if steps and steps[-1] is _broken:
        assert issubclass(logs[NotebookExporter][0][0], nbformat.ValidationError)
    if steps and steps[-1] is _extra_property:
        assert any("Notebook JSON is invalid" in m for m in logs[NotebookExporter][1])


def test_the_owned_exporter_copies_nothing(monkeypatch):
    """Does a conversion deep-copy no notebook node at all (nbconvert copies it four times)?"""
    copies = []
    original = nbformat.NotebookNode.__deepcopy__

    def counted(self, memo):
        if "cells" in self:
            copies.append(1)
        return original(self, memo)

    monkeypatch.setattr(nbformat.NotebookNode, "__deepcopy__", counted)
    _convert(NotebookExporter, SOURCE, [_outputs])
    assert len(copies) == 4
    copies.clear()
    _convert(OwnedNotebookExporter, SOURCE, [_outputs])
    assert copies == []
