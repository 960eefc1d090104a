"""CleanSubmission: student notebooks made safe to render for someone else (formgrader, feedback pages)."""
from __future__ import annotations

import base64
import binascii
import re
import uuid

from nbconvert.preprocessors import Preprocessor
from nbconvert.preprocessors.sanitize import SanitizeHTML
from traitlets import Bool

from ..notebook import deduplicated_ids, nbgrader_meta

# What an output may carry into a page: plain text and pixels; HTML and markdown only bleached.
_KEEP = {"text/plain", "image/png", "image/jpeg", "image/gif"}
_BLEACH = {"text/html", "text/markdown"}
_IMAGES = {"image/png", "image/jpeg", "image/gif"}
_SAFE_WORD = re.compile(r"^[\w.:+-]{1,64}$")       # tags, kernel names, languages
_CELL_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")      # nbformat 4.5's own rule for cell ids
_BLEACHED: dict[tuple[str, str], str] = {}            # (settings, text) -> bleached text
_BLEACHED_MAX = 4096


def _b64_ok(data) -> bool:
    """Image data is pasted into an <img src="data:..."> attribute: base64 only, nothing else."""
    if isinstance(data, list):
        data = "".join(x for x in data if isinstance(x, str))
    if not isinstance(data, str):
        return False
    try:
        base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


class CleanSubmission(Preprocessor):
    """Bleaches a student notebook's markdown, raw cells, outputs and metadata before nbgrader renders or reads it."""
    # First of nbgrader's sanitize preprocessors (nbgrader_config.py), and first when feedback
    # is generated. nbgrader's templates render markdown, raw cells and outputs as they are (they
    # ignore HTMLExporter.sanitize_html), so a student's `<img onerror=...>` would run on the
    # instructor's Jupyter origin in the formgrader. Here it becomes text, before anything renders.
    #
    # It also treats malformed nbgrader metadata as absent (nbgrader would crash on it) and applies
    # the kit's one rule for duplicated grade_ids (notebook.deduplicated_ids), so nbgrader keeps the
    # same cell the engine grades.

    enabled = Bool(True, help="nbconvert preprocessors are off by default; this one must always run").tag(config=True)

    def __init__(self, **kw):
        super().__init__(**kw)
        self._bleach = SanitizeHTML(parent=self)
        b = self._bleach   # what sanitize_html_tags reads
        self._settings = repr((sorted(b.tags), sorted(b.attributes.items()) if isinstance(b.attributes, dict)
                               else b.attributes, b.strip, b.strip_comments, sorted(b.styles)))

    def bleach(self, text) -> str:
        text = "".join(text) if isinstance(text, list) else str(text or "")
        # Every student's notebook carries the released markdown: bleach (an HTML parse) runs once
        # per distinct text and settings in this process, the same function of both.
        key = (self._settings, text)
        clean = _BLEACHED.get(key)
        if clean is None:
            # a lone ">" can never open a tag: keep it, so markdown quotes stay quotes
            clean = self._bleach.sanitize_html_tags(text).replace("&gt;", ">")
            if len(_BLEACHED) >= _BLEACHED_MAX:
                _BLEACHED.clear()
            _BLEACHED[key] = clean
        return clean

    def preprocess(self, nb, resources):
        cells = [c for c in nb.get("cells", []) if isinstance(c, dict) and isinstance(c.get("cell_type"), str)]
        ids = deduplicated_ids(cells)
        seen: set[str] = set()
        for number, (cell, keep) in enumerate(zip(cells, ids), start=1):
            md = cell.get("metadata")
            if not isinstance(md, dict):
                cell["metadata"] = md = {}
            if "nbgrader" in md and (keep is None or nbgrader_meta(cell) is None):
                self.log.warning("Cell %d: malformed or duplicated nbgrader metadata dropped "
                                 "(the engine ignores it too)", number)
                del md["nbgrader"]
            self._clean_cell(cell, seen)
        nb["cells"] = cells
        nb["metadata"] = self._clean_nb_metadata(nb.get("metadata"))
        return nb, resources

    def _clean_cell(self, cell, seen: set[str]) -> None:
        cid = cell.get("id")
        if cid is not None and (not isinstance(cid, str) or not _CELL_ID.match(cid) or cid in seen):
            cell["id"] = cid = uuid.uuid4().hex[:8]
        if isinstance(cid, str):
            seen.add(cid)
        md = cell["metadata"]
        tags = md.get("tags")
        if tags is not None:
            md["tags"] = [t for t in tags if isinstance(t, str) and _SAFE_WORD.match(t)] \
                if isinstance(tags, list) else []
        for key in [k for k in md if k not in ("nbgrader", "tags", "deletable", "editable", "trusted")]:
            del md[key]      # jupyter/collapsed/scrolled/name...: nothing a grader needs, all rendered somewhere
        if cell["cell_type"] in ("markdown", "raw"):
            cell["source"] = self.bleach(cell.get("source", ""))
            if cell["cell_type"] == "raw":
                md.pop("format", None)
                md.pop("raw_mimetype", None)
            atts = cell.get("attachments")
            if atts is not None:
                cell["attachments"] = {k: {m: v for m, v in a.items() if m in _IMAGES and _b64_ok(v)}
                                       for k, a in atts.items()
                                       if isinstance(a, dict) and isinstance(k, str) and _SAFE_WORD.match(k)} \
                    if isinstance(atts, dict) else {}
        elif cell["cell_type"] == "code":
            outputs = cell.get("outputs")
            cell["outputs"] = [o for o in (self._clean_output(o) for o in outputs) if o is not None] \
                if isinstance(outputs, list) else []
        else:
            cell["cell_type"], cell["source"] = "raw", self.bleach(cell.get("source", ""))

    def _clean_output(self, out):
        if not isinstance(out, dict):
            return None
        kind = out.get("output_type")
        if kind == "stream":                # escaped by every template (ansi2html)
            return {"output_type": "stream", "name": "stderr" if out.get("name") == "stderr" else "stdout",
                    "text": "".join(out["text"]) if isinstance(out.get("text"), list) else str(out.get("text", ""))}
        if kind == "error":
            tb = out.get("traceback")
            return {"output_type": "error", "ename": str(out.get("ename", ""))[:200],
                    "evalue": str(out.get("evalue", ""))[:2000],
                    "traceback": [str(x) for x in tb] if isinstance(tb, list) else []}
        if kind not in ("display_data", "execute_result") or not isinstance(out.get("data"), dict):
            return None
        data = {}
        for mime, value in out["data"].items():
            if mime in _BLEACH:
                data[mime] = self.bleach(value)
            elif mime in _IMAGES and _b64_ok(value):
                data[mime] = value
            elif mime == "text/plain":
                data[mime] = value if isinstance(value, (str, list)) else str(value)
        if not data:
            return None
        clean = {"output_type": kind, "data": data, "metadata": {}}   # metadata lands in <img width=...>
        if kind == "execute_result":
            n = out.get("execution_count")
            clean["execution_count"] = n if isinstance(n, int) and not isinstance(n, bool) else None
        return clean

    @staticmethod
    def _clean_nb_metadata(md) -> dict:
        """Only what nbconvert needs to pick a lexer; every value a safe word."""
        md = md if isinstance(md, dict) else {}
        out = {}
        for key, fields in (("kernelspec", ("name", "display_name", "language")),
                            ("language_info", ("name", "pygments_lexer", "file_extension", "mimetype"))):
            sub = md.get(key)
            if isinstance(sub, dict):
                out[key] = {f: sub[f] for f in fields if isinstance(sub.get(f), str)
                            and re.match(r"^[\w. /+()-]{1,64}$", sub[f])}
        return out
