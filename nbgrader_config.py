"""nbgrader configuration of the course; the repository root is the course directory."""
import os

c = get_config()  # noqa: F821  (provided by traitlets when nbgrader loads this file)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "gradient_backward_course"

# --- autograde, collect, exchange (autograder/nbgrader_integration/; see docs/instructors.md) --
# The kit's package sits next to this file; nbgrader's console script does not put it on sys.path.
import sys  # noqa: E402
if c.CourseDirectory.root not in sys.path:
    sys.path.insert(0, c.CourseDirectory.root)
# nbgrader calls the `alembic` command when it creates gradebook.db: it lives next to this Python.
if os.path.dirname(sys.executable) not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])

# No kernel ever runs student code here: the sandboxed engine grades, these steps copy its scores.
c.Autograde.sanitize_preprocessors = [
    "autograder.nbgrader_integration.clean_submission.CleanSubmission",        # student HTML bleached, odd metadata and duplicate ids as the engine reads them
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "autograder.nbgrader_integration.restore_grade_cells.RestoreGradeCells",   # forged flags reset, deleted test cells back
    "autograder.nbgrader_integration.overwrite_cells.CachedOverwriteCells",    # nbgrader's OverwriteCells, source cells read once per run
    "autograder.nbgrader_integration.check_cell_metadata.CheckCellMetadata",  # nbgrader's checks, schema compiled once
]
c.Autograde.autograde_preprocessors = [
    "autograder.nbgrader_integration.engine_grades.EngineGrades",   # replaces Execute: engine result -> cell outputs
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "autograder.nbgrader_integration.save_auto_grades.BatchedSaveAutoGrades",  # nbgrader's SaveAutoGrades, one transaction per notebook
    "nbgrader.preprocessors.AssignLatePenalties",
    "autograder.nbgrader_integration.check_cell_metadata.CheckCellMetadata",  # nbgrader's checks, schema compiled once
]
c.OverwriteCells.add_missing_cells = True
# nbconvert validates the whole notebook after every preprocessor (about 15% of each student's
# autograde time); once, after the last one, checks the same notebook that is written.
c.Exporter.optimistic_validation = True

# Feedback pages are rendered for the student from autograded/: bleached again (older notebooks there).
c.GenerateFeedback.preprocessors = [
    "autograder.nbgrader_integration.clean_submission.CleanSubmission",
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# Canvas "Download submissions" archives: <student>_[late_]<canvasid>_<fileid>_<name>.ipynb
# (`make collect` reads the archive itself; this plugin is for a hand-run `nbgrader zip_collect`)
c.ZipCollectApp.collector_plugin = "autograder.nbgrader_integration.canvas_collector.CanvasCollector"
# Exchange collect copies regular files only from the student-writable inbound folder (docs/instructors.md)
c.ExchangeFactory.collect = "autograder.nbgrader_integration.safe_exchange_collect.SafeExchangeCollect"

# The exchange folder shared by instructors and students: <course>/exchange for a course on one machine;
# on a JupyterHub, set NBGRADER_EXCHANGE to the shared folder (docs/instructors.md).
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE", os.path.join(c.CourseDirectory.root, "exchange"))
if "NBGRADER_EXCHANGE" not in os.environ:
    # nbgrader only warns ("exchange ... does not exist") and the Assignment List fails without it.
    os.makedirs(c.Exchange.root, exist_ok=True)

# Formgrader and feedback pages: MathJax inlined from the kit instead of a CDN, long lines wrapped.
# nbconvert finds autograder/nbgrader_templates/nbconvert/templates/base/mathjax.html.j2 before its own
# through JUPYTER_PATH (the feedback and formgrader exporters reset their own template settings).
import autograder as _kit  # noqa: E402
_templates = os.path.join(os.path.dirname(_kit.__file__), "nbgrader_templates")
if _templates not in os.environ.get("JUPYTER_PATH", "").split(os.pathsep):
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [_templates, os.environ.get("JUPYTER_PATH")]))

# --- release (generate_assignment; autograder/nbgrader_integration/part_stubs.py) --------------
# nbgrader's default pipeline with PartStubs right after ClearSolutions, before any checksum is taken,
# so the stub of each solution cell names its part and what to write.
from nbgrader import preprocessors as _nbg  # noqa: E402
from autograder.nbgrader_integration.part_stubs import CODE_STUB as _CODE_STUB, PartStubs as _PartStubs  # noqa: E402
c.ClearSolutions.code_stub = {"python": _CODE_STUB}
c.GenerateAssignment.preprocessors = [
    _nbg.IncludeHeaderFooter, _nbg.InstantiateTests, _nbg.LockCells, _nbg.ClearSolutions, _PartStubs,
    _nbg.ClearOutput, _nbg.CheckCellMetadata, _nbg.ComputeChecksums, _nbg.SaveCells,
    _nbg.ClearHiddenTests, _nbg.ClearMarkScheme, _nbg.ComputeChecksums, _nbg.CheckCellMetadata,
]
