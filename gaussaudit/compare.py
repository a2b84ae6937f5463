"""Several audits at once: ``compare`` (models side by side, the paper's table)
and ``track`` (one model along training, the paper's "Gaussianity tests along
training" figure). Both run :func:`gaussaudit.audit` with one config per input."""
from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from gaussaudit.audit import AuditConfig, AuditReport, audit
from gaussaudit.config import configured
from gaussaudit.errors import GaussAuditError, option_name
from gaussaudit.io.layouts import embedding_sets
from gaussaudit.io.readers import READERS
from gaussaudit.io.remote import RemotePath, is_url
from gaussaudit.io.sources import is_data_file, is_glob, is_ignored_name, natural_key
from gaussaudit.progress import LabelledProgress, Progress, SilentProgress

COMPARE_SCHEMA = "gaussaudit.compare/1"
TRACK_SCHEMA = "gaussaudit.track/1"

_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def _options(config: AuditConfig | None, options: dict) -> AuditConfig:
    return configured(config, AuditConfig, options, "audit")


# ----------------------------------------------------------------------------
# compare


@dataclass(frozen=True)
class LabelledReport:
    """One column of a comparison."""

    label: str
    report: AuditReport


@dataclass(frozen=True)
class Comparison:
    """Audits of several inputs with the same options, in the order given."""

    columns: list[LabelledReport]

    @property
    def labels(self) -> list[str]:
        return [c.label for c in self.columns]

    @property
    def reports(self) -> list[AuditReport]:
        return [c.report for c in self.columns]

    def to_dict(self, per_feature: bool = False) -> dict:
        """``{"schema": "gaussaudit.compare/1", "reports": [scan report + "label", ...]}``."""
        return {
            "schema": COMPARE_SCHEMA,
            "reports": [{"label": c.label, **c.report.to_dict(per_feature=per_feature)} for c in self.columns],
        }


def default_labels(sources: Sequence) -> list[str]:
    """Column labels: each input's file (or folder) name, or the path as given
    where two names collide; ``input N`` for in-memory arrays.

    Examples
    --------
    >>> default_labels(["runs/a/emb.npy", "runs/b/emb.npy", "clip.parquet"])
    ['runs/a/emb.npy', 'runs/b/emb.npy', 'clip.parquet']
    """
    names = [Path(s).name if isinstance(s, (str, os.PathLike)) else f"input {i}" for i, s in enumerate(sources, 1)]
    return [
        os.fspath(s) if names.count(name) > 1 and isinstance(s, (str, os.PathLike)) else name
        for s, name in zip(sources, names)
    ]


def check_labels(sources: Sequence, labels: Sequence[str] | None) -> list[str]:
    """The labels to use: the given ones (one per input, all different) or the defaults."""
    if not labels:
        labels = default_labels(sources)
    elif len(labels) != len(sources):
        raise GaussAuditError(
            f"{option_name('labels')} was given {len(labels)} times for {len(sources)} inputs; give one per input, "
            "in order, or none."
        )
    labels = [str(label) for label in labels]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise GaussAuditError(f"label {repeated[0]!r} names two inputs; each column needs its own ({option_name('labels')}).")
    return labels


def expand_embedding_sets(sources: Sequence, labels: Sequence[str] | None,
                          only: str | None) -> tuple[list, list[str] | None]:
    """Each source that is a clip-retrieval folder with several embedding sets
    becomes one input per set (labelled "FOLDER image", "FOLDER text") when no
    labels were given; the other sources stay as they are."""
    sources = list(sources)
    if labels:
        return sources, list(labels)
    expanded, names, any_set = [], [], False
    for source, label in zip(sources, default_labels(sources)):
        sets = embedding_sets(source, only)
        if sets:
            any_set = True
            expanded += [str(path) for _, path in sets]
            names += [f"{label} {name}" for name, _ in sets]
        else:
            expanded.append(source)
            names.append(label)
    return expanded, (names if any_set else None)


def compare(sources: Sequence, labels: Sequence[str] | None = None, config: AuditConfig | None = None,
            *, progress: Progress | None = None, client=None, **options) -> Comparison:
    """Audit each input with the same options: the paper's table, one column per input.

    Parameters
    ----------
    sources : sequence
        One entry per column: a path (file, folder of shards, glob), a list of
        paths read as one dataset, or an ``(n, d)`` array. A clip-retrieval
        folder with image and text embeddings is two columns (unless ``only``).
    labels : sequence of str, optional
        Column names, one per input; default the file names.
    config : AuditConfig, optional
        Options for every audit; keyword arguments override its fields.
    progress : Progress, optional
        Receives each audit's progress, stages prefixed with the label.
    client : distributed.Client, optional
        Read every input on this Dask cluster (see :func:`gaussaudit.audit`).

    Returns
    -------
    Comparison

    Raises
    ------
    GaussAuditError
        Bad options or any input that cannot be audited (naming it).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> result = compare([rng.standard_normal((500, 32)), rng.laplace(size=(500, 32))],
    ...                  labels=["gauss", "laplace"])
    >>> [(c.label, c.report.verdict.gaussian) for c in result.columns]
    [('gauss', True), ('laplace', False)]
    """
    sources = list(sources)
    if not sources:
        raise GaussAuditError("compare needs at least one input.")
    config = _options(config, options)
    sources, labels = expand_embedding_sets(sources, labels, config.only)
    labels = check_labels(sources, labels)
    progress = progress or SilentProgress()
    return Comparison([LabelledReport(label, audit(src, config, progress=LabelledProgress(progress, label),
                                                             client=client))
                       for label, src in zip(labels, sources)])


# ----------------------------------------------------------------------------
# track


@dataclass(frozen=True)
class TrackPoint:
    step: int
    path: str
    report: AuditReport


@dataclass(frozen=True)
class SkippedStep:
    """A step that could not be audited, and why (the GaussAuditError message)."""

    step: int
    path: str
    error: str


@dataclass(frozen=True)
class Track:
    """Audits along training, ordered by step; failed steps are listed, not fatal."""

    points: list[TrackPoint]
    skipped: list[SkippedStep] = field(default_factory=list)

    def to_dict(self, per_feature: bool = False) -> dict:
        """``{"schema": "gaussaudit.track/1", "points": [{"step", "path", scan report...}], "skipped": [...]}``."""
        return {
            "schema": TRACK_SCHEMA,
            "points": [
                {"step": p.step, "path": p.path, **p.report.to_dict(per_feature=per_feature)} for p in self.points
            ],
            "skipped": [{"step": s.step, "path": s.path, "error": s.error} for s in self.skipped],
        }


def step_of(path: str | os.PathLike) -> int:
    """The training step a file or folder name carries: its last number.

    Examples
    --------
    >>> step_of("emb_epoch50.npy"), step_of("runs/3/step_1200.parquet"), step_of("ckpt-2-step-0500")
    (50, 1200, 500)
    """
    name = Path(path).name
    stem = name[: -len(Path(name).suffix)] if Path(name).suffix.lower() in READERS else name
    found = _LAST_NUMBER.search(stem)
    if not found:
        raise GaussAuditError(
            f"{path}: its name carries no step number; track orders inputs by the last number in their "
            "names (emb_epoch50.npy, step_1200.parquet)."
        )
    return int(found.group(1))


def _is_candidate(path: Path) -> bool:
    return path.is_dir() and not is_ignored_name(path.name) or is_data_file(path)


def find_steps(paths: Sequence[str | os.PathLike]) -> list[tuple[int, str]]:
    """``(step, path)`` for every input, ordered by step (numerically).

    A file is one step. A folder holds the steps: each supported file directly
    in it, and each subfolder (read as a folder of shards), must carry a number
    in its name. Globs expand the same way. Names starting with ``.`` or ``_``
    are ignored, as in scan.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise GaussAuditError("track needs at least one file or folder.")
    found: list[str] = []
    for raw in paths:
        text = str(raw) if isinstance(raw, RemotePath) else os.fspath(raw)
        path = RemotePath(text) if is_url(text) else Path(text)
        if path.is_dir():
            children = sorted((c for c in path.iterdir() if _is_candidate(c)), key=lambda c: natural_key(c.name))
            if not children:
                raise GaussAuditError(
                    f"{text}: the folder holds no {', '.join(READERS)} files or step subfolders."
                )
            found.extend(str(c) for c in children)
        elif path.exists():
            found.append(text)
        elif is_glob(text.split("://", 1)[-1]):
            matches = (sorted((str(m) for m in path.glob()), key=natural_key) if isinstance(path, RemotePath)
                       else sorted(glob.glob(text), key=natural_key))
            matches = [m for m in matches if _is_candidate(RemotePath(m) if is_url(m) else Path(m))]
            if not matches:
                raise GaussAuditError(f"{text}: the pattern matches no {', '.join(READERS)} files or folders.")
            found.extend(matches)
        else:
            raise GaussAuditError(f"{text}: no such file or folder.")
    steps: dict[int, str] = {}
    for p in found:
        step = step_of(p)
        if step in steps:
            raise GaussAuditError(f"{p}: has step {step}, as does {steps[step]}; each step must be one input.")
        steps[step] = p
    return sorted(steps.items())


def track(paths: Sequence[str | os.PathLike], config: AuditConfig | None = None, *,
          progress: Progress | None = None, client=None, **options) -> Track:
    """Audit embeddings saved along training, ordered by the step in their names.

    Parameters
    ----------
    paths : sequence of paths
        Files (``emb_epoch50.npy``, ``step_1200.parquet``…), folders of such
        files or of step subfolders, or globs; see :func:`find_steps`.
    config : AuditConfig, optional
        Options for every audit; keyword arguments override its fields.
    progress : Progress, optional
        Receives each audit's progress, stages prefixed with the step.
    client : distributed.Client, optional
        Read every step on this Dask cluster (see :func:`gaussaudit.audit`).

    Returns
    -------
    Track
        Points in step order. A step whose audit fails (unreadable, too few
        rows…) is recorded in ``skipped`` with its message and left out.

    Raises
    ------
    GaussAuditError
        Bad options or names (no step number, a step twice), or no step could
        be audited.
    """
    config = _options(config, options)
    points, skipped = [], []
    for step, path in find_steps(paths):
        try:
            labelled = LabelledProgress(progress or SilentProgress(), f"step {step}")
            points.append(TrackPoint(step, path, audit(path, config, progress=labelled, client=client)))
        except GaussAuditError as exc:
            skipped.append(SkippedStep(step, path, str(exc)))
    if not points:
        first = skipped[0]
        raise GaussAuditError(f"none of the {len(skipped)} steps could be audited; step {first.step}: {first.error}")
    return Track(points, skipped)
