#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (in /autograder/source).
# It installs bubblewrap (the sandbox) and the kit's pinned Python environment into source/.venv.
set -euo pipefail
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export DEBIAN_FRONTEND=noninteractive

apt-get update -q
apt-get install -y -q --no-install-recommends bubblewrap ca-certificates python3 python3-venv

# The kit needs Python >= 3.11 (tomllib). Gradescope's Ubuntu 24.04 image has 3.12; on 22.04,
# Ubuntu's own python3.11 package is used.
PY=python3
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    apt-get install -y -q --no-install-recommends python3.11 python3.11-venv
    PY=python3.11
fi

"$PY" -m venv "$SRC/.venv"
"$SRC/.venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
# torch's CPU build (the "+cpu" pin in constraints.txt) lives on PyTorch's own index.
"$SRC/.venv/bin/python" -m pip install -q --disable-pip-version-check \
    --extra-index-url https://download.pytorch.org/whl/cpu \
    -r "$SRC/requirements.txt" -c "$SRC/constraints.txt"

# Fail the image build now, not the first student's submission, if the engine cannot import.
cd "$SRC" && "$SRC/.venv/bin/python" -c 'import torch, autograder.engine, autograder.gradescope_runtime'
# The hidden inputs and autograd references, computed once into the image (.kit/cache), not by every submission.
"$SRC/.venv/bin/python" -m autograder.gradescope_runtime warm --root "$(dirname "$SRC")"
command -v bwrap >/dev/null || echo "NOTE: bwrap missing: submissions will run with weaker isolation" >&2
