"""The `gradescope` verb: builds autograder.zip, the kit and Gradescope's two scripts (the runtime inside: gradescope_runtime.py)."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from . import rubric as rubric_mod
from .gradescope_runtime import CONFIG, DEFAULTS
from .notebook import grading_copy
from .rubric import KIT_ROOT
from .safe_files import atomic_write

TEMPLATES = KIT_ROOT / "gradescope"
# what the bundle carries besides the two scripts: the grading code and what it reads
KIT_FILES = ("requirements.txt", "constraints.txt", "pyproject.toml")
KIT_DIRS = ("autograder", "assignments")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)       # fixed, so two builds of the same kit are the same bytes


def _bundle_files(kit: Path, source_dir: Path) -> list[tuple[Path, str]]:
    """(file on disk, name in the zip) for everything the bundle holds, sorted."""
    files = [(TEMPLATES / "setup.sh", "setup.sh"), (TEMPLATES / "run_autograder", "run_autograder")]
    files += [(kit / f, f) for f in KIT_FILES]
    for folder in (*(kit / d for d in KIT_DIRS), source_dir):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and ".ipynb_checkpoints" not in path.parts \
                    and path.suffix != ".pyc":
                files.append((path, path.relative_to(kit).as_posix()))
    return sorted(files, key=lambda f: f[1])


def build(out: Path, *, config: dict | None = None, kit: Path = KIT_ROOT) -> Path:
    """Write autograder.zip: setup.sh and run_autograder at its root, the kit beside them."""
    cfg = {**DEFAULTS, **(config or {})}
    source_dir = rubric_mod.load(cfg["assignment"]).source.parent
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        source_nb = rubric_mod.load(cfg["assignment"]).source.resolve()
        for path, name in _bundle_files(kit, source_dir):
            data = path.read_bytes()
            if path.resolve() == source_nb:
                # the instructor's notebook without its solutions and hidden tests: grading needs
                # only its locked cells and ids, and nothing a student could point a link at
                # may hold an answer
                data = grading_copy(data)
            elif path.suffix == ".ipynb":
                continue        # no other notebook (a scratch copy with answers) leaves the kit
            _add(z, name, data, executable=name in ("setup.sh", "run_autograder"))
        _add(z, CONFIG, (json.dumps(cfg, indent=1, sort_keys=True) + "\n").encode())
    atomic_write(out, buf.getvalue(), mode=0o644)
    return out


def _add(z: zipfile.ZipFile, name: str, data: bytes, *, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, _ZIP_TIME)
    info.external_attr = ((0o755 if executable else 0o644) | 0o100000) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(info, data)


def main(*, out: str = "build/autograder.zip", visibility: str | None = None,
         test_visibility: str | None = None) -> int:
    config = {k: v for k, v in (("visibility", visibility), ("test_visibility", test_visibility)) if v}
    path = build(Path(out), config=config)
    print(path)
    return 0
