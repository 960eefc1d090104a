# Every workflow step of the gradient_backward kit. `make` runs the main job (demo).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ASSIGNMENT := gradient_backward
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.DEFAULT_GOAL := demo
.PHONY: demo test test-fast release lab clean distclean check-bwrap collect autograde feedback export samples

# --- environment -----------------------------------------------------------------------
$(STAMP): requirements.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt -c constraints.txt
	$(BIN)/pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	@# autograder/lean.py's trim for every process of this venv (nbgrader, jupyter, nbconvert):
	@# each would otherwise compile an unused grammar for a second at start-up.
	@echo 'import sys; sys.modules.setdefault("rfc3987_syntax", None)' > "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/kit_lean.pth"
	@touch $@

check-bwrap:
	@command -v bwrap >/dev/null || echo "NOTE: bubblewrap (bwrap) is not installed: student code will run with weaker isolation. Install it with: sudo apt-get install bubblewrap" >&2

# --- main job --------------------------------------------------------------------------
demo: $(STAMP) check-bwrap release
	$(BIN)/python -m autograder demo

# --- tests -----------------------------------------------------------------------------
# Everything: sandbox red team, nbgrader, the browser; the 15 slowest tests are listed at the end.
# On two pytest-xdist workers: most tests wait on subprocesses (sandboxes, kernels, nbgrader), so
# two run side by side; tests sharing a course or an engine stay together on one worker, in order,
# and the longest groups are handed out first (tests/conftest.py).
TEST_WORKERS ?= 2
test: $(STAMP) check-bwrap
	$(BIN)/python -m pytest -q tests --durations=15 -n $(TEST_WORKERS) --dist loadgroup

# The inner loop (under a minute): no engine or sandbox, no nbgrader, no browser, nothing slow.
FAST_TESTS := not sandbox and not slow and not nbgrader and not browser
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q tests -m "$(FAST_TESTS)" --durations=5

# --- nbgrader workflow -----------------------------------------------------------------
# The source notebook is the source of truth: edit it in JupyterLab (Create Assignment panel), then
# release. Its invariants (ids, markers, stubs) are tested on the notebook itself (tests/test_notebook_source.py).
release: $(STAMP)
	$(BIN)/nbgrader generate_assignment $(ASSIGNMENT) --force --log-level=WARN

# An LMS download (Canvas "Download Submissions" zip) -> submitted/ (docs/instructors.md).
ARCHIVE ?= samples/canvas_download.zip
collect: $(STAMP) release
	$(BIN)/python -m autograder collect $(ARCHIVE) $(ASSIGNMENT)

# Engine grades everything in parallel, then nbgrader autograde per student; rerun resumes.
autograde: $(STAMP)
	$(BIN)/python -m autograder autograde $(ASSIGNMENT) --jobs $(JOBS)

feedback: $(STAMP)
	$(BIN)/nbgrader generate_feedback $(ASSIGNMENT) --force --log-level=WARN
	@echo "feedback pages: feedback/<student>/$(ASSIGNMENT)/$(ASSIGNMENT).html"

# Per-part grades (build/grades.csv) and nbgrader's own export with late penalties.
export: $(STAMP)
	$(BIN)/python -m autograder gradebook --csv build/grades.csv
	$(BIN)/nbgrader export --to build/nbgrader_grades.csv --log-level=WARN

# Rebuild the bundled sample class (samples/canvas_download.zip, committed).
samples: $(STAMP) release
	$(BIN)/python samples/build_samples.py

# Jupyter refuses to run as root without --allow-root (containers, CI machines).
lab: $(STAMP)
	$(BIN)/jupyter lab --no-browser --ServerApp.root_dir=$(CURDIR) $(if $(filter 0,$(shell id -u)),--allow-root)

clean:
	rm -rf submitted autograded feedback downloaded gradebook.db gradebook.db.bak* .kit build

distclean: clean
	rm -rf $(VENV)

# --- benchmark: (a) one cold submission, (b) a class, (c) a cohort, through the kit's own commands,
# side by side with stock nbgrader autograde and nbconvert --execute (prints, never asserts).
# Small: make bench BENCH_N=20 BENCH_N1=5 BENCH_REPS=1 BENCH_SAMPLE=2 BENCH_STOCK=1
# Before/after in one run: BENCH_BEFORE=/path/to/another/checkout of the kit.
.PHONY: bench
BENCH_N ?= 300
BENCH_N1 ?= 40
BENCH_JOBS ?= 2
BENCH_REPS ?= 3
BENCH_SAMPLE ?= 8
BENCH_STOCK ?= 4
BENCH_BEFORE ?=
bench: $(STAMP) check-bwrap
	$(BIN)/python bench/run.py --n $(BENCH_N) --n1 $(BENCH_N1) --jobs $(BENCH_JOBS) --reps $(BENCH_REPS) \
		--sample $(BENCH_SAMPLE) --stock-sample $(BENCH_STOCK) $(if $(BENCH_BEFORE),--before $(BENCH_BEFORE))

# --- cohort report and Gradescope bundle (docs/gradescope.md) ----------------------------
.PHONY: report gradescope
# One self-contained HTML page from gradebook.db and .kit/results.
report: $(STAMP)
	$(BIN)/python -m autograder report --assignment $(ASSIGNMENT) --out build/report.html

# build/autograder.zip for Gradescope; VISIBILITY=after_published holds results back.
VISIBILITY ?= visible
gradescope: $(STAMP)
	$(BIN)/python -m autograder gradescope --out build/autograder.zip --visibility $(VISIBILITY)
