#!/usr/bin/env bash
# The grading step of the student-repository workflow (classroom.yml); the kit's tests run it too.
# Grades the pushed notebook with `python -m autograder grade NB --json`, then writes the job
# summary, the step outputs (`result` for GitHub Classroom's reporter, `points`) and results.json.
set -euo pipefail
KIT_DIR="${KIT_DIR:?set KIT_DIR to the grading kit checkout}"
PY="${KIT_PYTHON:-$KIT_DIR/.venv/bin/python}"
SUBMISSION_DIR="${SUBMISSION_DIR:-${GITHUB_WORKSPACE:-$PWD}}"
RESULTS_JSON="${RESULTS_JSON:-${RUNNER_TEMP:-/tmp}/results.json}"

cd "$KIT_DIR"
# The kit runs from its checkout, never installed: PYTHONPATH puts this copy first.
PYTHONPATH="$KIT_DIR${PYTHONPATH:+:$PYTHONPATH}" \
    "$PY" -m autograder.classroom_runtime --submission "$SUBMISSION_DIR" --results "$RESULTS_JSON"
