"""SafeExchangeCollect: `nbgrader collect` that copies regular files only from the student-writable inbound folder."""
from __future__ import annotations

import fnmatch
import os
import stat
from pathlib import Path

from nbgrader.exchange.default.collect import ExchangeCollect

from ..notebook import MAX_BYTES
from ..safe_files import Skipped, copy_regular_tree, id_problem, shown
from .gradebook_api import set_student_names


def _owned_by_someone_else(uid: int, student: str) -> bool:
    """True when the student has an OS account and the folder belongs to another one. Hubs whose
    students share one uid (containers) have no account per student: nbgrader's warning stays."""
    try:
        import pwd
        return pwd.getpwnam(student).pw_uid != uid
    except (ImportError, KeyError):
        return False


class SafeExchangeCollect(ExchangeCollect):
    """`nbgrader collect` for the JupyterHub exchange, copying regular files only, never a link or through one."""
    # The inbound folder is student-writable, so a submission is copied file by file, regular
    # files only, within nbgrader's size caps; a submission whose id is not a safe id is skipped.

    def init_src(self):
        super().init_src()
        kept = []
        for rec in self.src_records:
            path = os.path.join(self.inbound_path, rec["filename"])
            why = None
            problem = id_problem(rec["username"])
            if problem:      # hub user names such as alice@uni.edu are fine; markup or escapes are not
                why = f"the student id is not a safe id (it {problem})"
            else:
                st = os.lstat(path)
                if not stat.S_ISDIR(st.st_mode):
                    why = "a symbolic link or a file, not a submission folder: never followed"
                elif self.check_owner and _owned_by_someone_else(st.st_uid, rec["username"]):
                    why = (f"made by another account (uid {st.st_uid}) than {rec['username']}'s: "
                           "a student submitting in someone else's name")
            if why:
                self.log.warning("Skipped inbound %s: %s", shown(rec["filename"]), why)
                self.skipped.append(Skipped(rec["filename"], why))
            else:
                kept.append(rec)
        self.src_records = kept

    @property
    def skipped(self) -> list[Skipped]:
        if not hasattr(self, "_skipped"):
            self._skipped = []
        return self._skipped

    def do_copy(self, src, dest, log=None):
        ignore = list(self.coursedir.ignore or [])
        cap = min(MAX_BYTES, int(self.coursedir.max_file_size or 0) * 1000 or MAX_BYTES)
        dir_cap = int(self.coursedir.max_dir_size or 0) * 1000 or 64 * 2**20
        copied, skipped = copy_regular_tree(Path(src), Path(dest), max_file_bytes=cap, max_bytes=dir_cap)
        for rel in list(copied):
            if any(fnmatch.fnmatch(part, pat) for part in Path(rel).parts for pat in ignore):
                (Path(dest) / rel).unlink()
                copied.remove(rel)
        for s in skipped:
            self.log.warning("Skipped %s in %s: %s", shown(s.what), shown(os.path.basename(src)), s.reason)
        self.skipped.extend(skipped)
        sid = os.path.basename(os.path.dirname(os.path.abspath(dest)))
        try:
            set_student_names(Path(self.coursedir.root), {sid: (sid, "")})
        except Exception as exc:  # noqa: BLE001 - a name is a nicety; the copy is what matters
            self.log.warning("could not record %s in the gradebook: %s", shown(sid), exc)
