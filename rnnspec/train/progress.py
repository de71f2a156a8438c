"""Progress output: a live ``\\r`` status line on a terminal, one summary line
per log interval otherwise (logs, CI, pipes)."""
from __future__ import annotations

import sys
import time
from typing import Callable, Optional, TextIO

Log = Callable[[str], None]


def _eta(seconds: float) -> str:
    if seconds != seconds or seconds < 0 or seconds > 1e7:
        return "?"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    def __init__(self, total: int, *, log: Log, live: Optional[bool] = None, stream: Optional[TextIO] = None,
                 unit: str = "tok") -> None:
        self.total = total
        self.log = log
        self.stream = stream or sys.stdout
        if live is None:
            try:
                live = self.stream.isatty() and log is print
            except (AttributeError, ValueError):
                live = False
        self.live = bool(live)
        self.unit = unit
        self._last_draw = 0.0
        self._shown = False

    def update(self, step: int, loss: float, rate: float, elapsed: float, start_step: int) -> None:
        """Called every step; redraws the live line at most 10 times a second."""
        if not self.live:
            return
        now = time.perf_counter()
        if now - self._last_draw < 0.1 and step < self.total:
            return
        self._last_draw = now
        done = step - start_step
        left = (self.total - step) * (elapsed / done) if done > 0 else float("nan")
        width = 24
        filled = int(width * step / max(self.total, 1))
        bar = "#" * filled + "-" * (width - filled)
        text = f"\r[{bar}] {step}/{self.total}  loss {loss:.4f}  {rate:,.0f} {self.unit}/s  eta {_eta(left)} "
        self.stream.write(text)
        self.stream.flush()
        self._shown = True

    def line(self, msg: str) -> None:
        """A permanent line (a log summary, a validation result)."""
        if self.live and self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False
        self.log(msg)

    def close(self) -> None:
        if self.live and self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False
