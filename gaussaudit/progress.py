"""How long-running library calls report progress, without printing anything.

``audit`` and friends take an optional ``progress`` object and call two
methods on it; the CLI passes one that draws a bar on stderr
(:mod:`gaussaudit.report.progress`), the library default draws nothing.
"""
from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receiver of progress events.

    ``stage(name, total)`` starts a stage: ``total`` rows for the reading pass,
    ``None`` for a stage with no natural count. ``advance(n)`` reports ``n``
    more rows done in the current stage.
    """

    def stage(self, name: str, total: int | None = None) -> None: ...

    def advance(self, n: int) -> None: ...


class SilentProgress:
    """A :class:`Progress` that ignores every event (the library default)."""

    def stage(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, n: int) -> None:
        pass


class LabelledProgress:
    """Passes events on with stage names prefixed by ``label`` and " · "
    (``compare`` and ``track`` tell which input is being audited)."""

    def __init__(self, progress: Progress, label: str) -> None:
        self.progress, self.label = progress, label

    def stage(self, name: str, total: int | None = None) -> None:
        self.progress.stage(f"{self.label} · {name}", total)

    def advance(self, n: int) -> None:
        self.progress.advance(n)
