"""Progress of a cohort run: a tqdm bar on a terminal, a few log lines in CI and in logs."""
from __future__ import annotations

import logging
import os
import sys
import time

log = logging.getLogger("autograder.batch")


def bar_wanted(mode: str = "auto", stream=None) -> bool:
    """`on`/`off` force it; `auto` draws a bar only on an interactive terminal outside CI."""
    if mode == "on":
        return True
    if mode == "off":
        return False
    stream = stream or sys.stderr
    return not os.environ.get("CI") and hasattr(stream, "isatty") and stream.isatty()


class Progress:
    """Counts finished submissions; draws a bar or logs about every tenth of the way."""

    def __init__(self, total: int, *, mode: str = "auto", done: int = 0, label: str = "grading"):
        self.total, self.done, self.label = total, done, label
        self.started = time.monotonic()
        self._first, self._first_at = done, None
        self._next_log = self._step_after(done)
        self._bar = None
        if bar_wanted(mode) and total:
            from tqdm import tqdm
            self._bar = tqdm(total=total, initial=done, desc=label, unit="nb", file=sys.stderr,
                             dynamic_ncols=True, smoothing=0.1)
        else:
            log.info("%s %d submissions (%d already graded)", label, total, done)

    def _step_after(self, n: int) -> int:
        step = max(1, self.total // 10)
        return (n // step + 1) * step

    def advance(self, note: str = "") -> None:
        self.done += 1
        if self._first_at is None:
            # workers pay their start-up before the first result: the rate is measured after it
            self._first_at, self._first = time.monotonic(), self.done
        if self._bar is not None:
            self._bar.update(1)
            if note:
                self._bar.set_postfix_str(note, refresh=False)
        elif self.done >= self._next_log or self.done == self.total:
            self._next_log = self._step_after(self.done)
            log.info("%s: %d/%d done, ETA %s", self.label, self.done, self.total, self.eta())

    def eta(self) -> str:
        graded = self.done - self._first
        left = self.total - self.done
        if left <= 0:
            return "0s"
        if graded <= 0 or self._first_at is None:
            return "?"
        return f"{(time.monotonic() - self._first_at) / graded * left:.0f}s"

    def note(self, message: str) -> None:
        """A line that must not be torn by the bar (a retry, a worker restart)."""
        if self._bar is not None:
            self._bar.write(message, file=sys.stderr)
        else:
            log.warning("%s", message)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        log.info("%s finished: %d/%d in %.1fs", self.label, self.done, self.total,
                 time.monotonic() - self.started)
