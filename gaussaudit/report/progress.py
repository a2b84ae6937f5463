"""A progress bar on stderr for long scans: rows read, rows/s and ETA while
streaming, then a spinner with the stage name (tests, calibration)."""
from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

_STAGE_NAMES = {
    "reading": "reading rows",
    "calibrating": "calibrating against Gaussian surrogates",
}


class _RowsPerSecond(ProgressColumn):
    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        if not speed and task.elapsed:  # too few updates for rich's windowed estimate
            speed = task.completed / task.elapsed
        if not speed or task.total is None:
            return Text("")
        return Text(f"{_si(speed)} rows/s", style="progress.data.speed")


class _Rows(ProgressColumn):
    def render(self, task) -> Text:
        if task.total is None:
            return Text("")
        return Text(f"{int(task.completed):,}/{int(task.total):,} rows", style="progress.download")


class _EtaOrElapsed(ProgressColumn):
    """Time left while rows stream; time spent in a stage with no row count."""

    _remaining, _elapsed = TimeRemainingColumn(), TimeElapsedColumn()

    def render(self, task) -> Text:
        if task.total is None:
            return self._elapsed.render(task)
        return Text("ETA ", style="progress.remaining") + self._remaining.render(task)


def _si(value: float) -> str:
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f}{unit}"
    return f"{value:.0f}"


class TerminalProgress:
    """A :class:`gaussaudit.progress.Progress` that draws on stderr with rich.

    Use as a context manager around the audit; the bar disappears when done,
    so the report that follows stands alone.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=12),
            TaskProgressColumn(),
            _Rows(),
            _RowsPerSecond(),
            _EtaOrElapsed(),
            console=self.console,
            transient=True,
        )
        self._task = None

    def __enter__(self) -> "TerminalProgress":
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def stage(self, name: str, total: int | None = None) -> None:
        if self._task is not None:
            self._progress.refresh()  # draw the finished stage once before it gives way
            self._progress.update(self._task, visible=False)
            self._progress.stop_task(self._task)
        label, _, key = name.rpartition(" · ")  # "label · stage" from LabelledProgress
        what = _STAGE_NAMES.get(key, key)
        description = f"{label}: {what}" if label else what
        self._task = self._progress.add_task(description, total=total)

    def advance(self, n: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, n)
