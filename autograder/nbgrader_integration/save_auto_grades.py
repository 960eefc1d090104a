"""BatchedSaveAutoGrades: nbgrader's SaveAutoGrades with one query per table and one commit per notebook, instead of a query and a commit per cell."""
from __future__ import annotations

from nbgrader import utils
from nbgrader.api import BaseCell, Comment, Gradebook, Grade, MissingEntry
from nbgrader.preprocessors import NbGraderPreprocessor, SaveAutoGrades


class BatchedSaveAutoGrades(SaveAutoGrades):
    """SaveAutoGrades' scores and comments, for the whole notebook in one transaction."""
    # The per-cell queries and commits were the largest share of the nbgrader pass. One commit
    # also means a crash mid-notebook leaves the notebook's previous grades, not half of each.

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        self.notebook_id, self.assignment_id = info["notebook"], info["assignment"]
        self.student_id, self.db_url = info["student"], info["db_url"]
        self.gradebook = Gradebook(self.db_url)
        with self.gradebook:
            submitted = self.gradebook.find_submission_notebook(
                self.notebook_id, self.assignment_id, self.student_id)
            self._grades = self._by_cell(Grade, submitted.id)
            self._comments = self._by_cell(Comment, submitted.id)
            nb, resources = NbGraderPreprocessor.preprocess(self, nb, resources)
            self.gradebook.db.commit()
        return nb, resources

    def _by_cell(self, table, notebook_id: str) -> dict:
        rows = (self.gradebook.db.query(table, BaseCell.name)
                .join(BaseCell, BaseCell.id == table.cell_id)
                .filter(table.notebook_id == notebook_id))
        return {name: row for row, name in rows}

    def _add_score(self, cell, resources) -> None:
        # nbgrader's rule: an existing manual score, or no auto score, needs a grader
        grade = self._row(self._grades, cell)
        grade.auto_score, _ = utils.determine_grade(cell, self.log)
        grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None

    def _add_comment(self, cell, resources) -> None:
        comment = self._row(self._comments, cell)
        unchanged = cell.metadata.nbgrader.get("checksum", None) == utils.compute_checksum(cell)
        comment.auto_comment = "No response." if unchanged and not utils.is_task(cell) else None

    @staticmethod
    def _row(rows: dict, cell):
        name = cell.metadata["nbgrader"]["grade_id"]
        if name not in rows:
            raise MissingEntry()
        return rows[name]
