"""fit's output: a progress bar redrawn in place on a terminal, one line per epoch
elsewhere (Keras' `utils/progbar.py`)."""

from __future__ import annotations

import sys
import time
from typing import cast

from .. import config

__all__ = ["Progress", "format_logs"]


def _format_value(v) -> str:
    return f"{v:.4f}" if v == 0 or abs(v) >= 1e-3 or v != v else f"{v:.4e}"


def format_logs(logs) -> str:
    keys = sorted(k for k in logs if not k.startswith("val_"))
    keys += sorted(k for k in logs if k.startswith("val_"))
    return " - ".join(f"{k}: {_format_value(logs[k])}" for k in keys)


def _format_step_time(seconds: float) -> str:
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


def _format_eta(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    if seconds >= 60:
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{seconds}s"


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _live(stream) -> bool:
    """Whether a bar can be redrawn in place on `stream`: a terminal, or a Jupyter
    kernel's output (which honours "\\r" as Keras relies on)."""
    return _isatty(stream) or type(stream).__module__.startswith("ipykernel")


class Progress:
    """fit's output: a progress bar redrawn in place ("\\r") when verbose=1 and stdout is a
    terminal or a Jupyter notebook, otherwise (verbose=2, or verbose=1 into a file or pipe)
    one line per epoch. Its look: `deepcore.config.set_progress_style`."""

    interval = 0.1  # seconds between two redraws of the bar (and the target chunk length)
    width = 30

    def __init__(self, verbose: int, epochs: int, steps: int | None):
        # steps None: not known yet (a generator's first epoch; Keras shows "n/Unknown")
        self.stream = sys.stdout
        self.verbose, self.epochs, self.steps = verbose, epochs, steps
        self.live = verbose == 1 and _live(self.stream)
        self.keras3 = config.get_progress_style() == "keras3"
        self.shown = 0

    def _write(self, text: str):
        self.stream.write(text)
        self.stream.flush()

    def _line(self, text: str):
        # overwrite the previous bar; pad with spaces when the new line is shorter
        pad = max(self.shown - len(text), 0)
        self._write("\r" + text + " " * pad)
        self.shown = len(text)

    def _bar(self, done: int) -> str:
        if self.steps is None:
            return f"{done:>7}/Unknown"
        if self.keras3:  # bold count, then 20 "━": green done, grey to do
            steps, width = max(self.steps, 1), 20
            filled = int(width * min(done, steps) / steps)
            return (
                f"\x1b[1m{done:>{len(str(steps))}}/{steps}\x1b[0m "
                f"\x1b[32m{'━' * filled}\x1b[0m\x1b[37m{'━' * (width - filled)}\x1b[0m"
            )
        steps = max(self.steps, 1)
        digits = len(str(steps))
        filled = int(self.width * min(done, steps) / steps)
        if done < steps:
            bar = "=" * max(filled - 1, 0) + (">" if filled else "") + "." * (self.width - filled)
        else:
            bar = "=" * self.width
        return f"{done:>{digits}}/{steps} [{bar}]"

    def epoch_begin(self, epoch: int):
        self.start = self.last = time.perf_counter()
        self.shown = 0
        if self.live:
            self._write(f"Epoch {epoch + 1}/{self.epochs}\n")
            self._line(self._bar(0))

    def update(self, done: int, logs=None):
        """Redraws the bar after `done` batches, at most once per `interval` seconds."""
        if not self.live:
            return
        now = time.perf_counter()
        known = self.steps is not None
        steps = cast(int, self.steps)  # (read only when known)
        if now - self.last < self.interval and (not known or done < steps):
            return
        self.last = now
        text = self._bar(done)
        per_step = (now - self.start) / max(done, 1)
        if self.keras3:
            left = per_step * max(steps - done, 0) if known else now - self.start
            text += f" \x1b[1m{_format_eta(left)}\x1b[0m {_format_step_time(per_step)}"
        elif known:
            text += f" - ETA: {_format_eta(per_step * max(steps - done, 0))}"
        if logs:
            text += " - " + format_logs(logs)
        self._line(text)

    def epoch_end(self, epoch: int, done: int, seconds: float, logs):
        if not self.verbose:
            return
        stats = f"{seconds:.0f}s - {_format_step_time(seconds / max(done, 1))}"
        if logs:
            stats += " - " + format_logs(logs)
        if self.live:
            if self.keras3:
                stats = stats.replace(" - ", " ", 1)
            self._line(f"{self._bar(done)} {'' if self.keras3 else '- '}{stats}")
            self._write("\n")
        else:
            digits = len(str(self.steps))
            self._write(
                f"Epoch {epoch + 1}/{self.epochs} - {done:>{digits}}/{self.steps} - {stats}\n"
            )
