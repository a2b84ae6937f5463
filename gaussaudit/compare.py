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


def find_steps(paths: Sequence[str | os.PathLike], is_step=None) -> list[tuple[int, str]]:
    """``(step, path)`` for every input, ordered by step (numerically).

    A file is one step. A folder holds the steps: each supported file directly
    in it, and each subfolder (read as a folder of shards), must carry a number
    in its name. Globs expand the same way. Names starting with ``.`` or ``_``
    are ignored, as in scan. ``is_step`` (a folder → bool), when given, picks
    folders named on their own that are one step rather than a folder of steps
    (:func:`track_pairs`: a folder holding A or B).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise GaussAuditError("track needs at least one file or folder.")
    found: list[str] = []
    for raw in paths:
        text = str(raw) if isinstance(raw, RemotePath) else os.fspath(raw)
        path = RemotePath(text) if is_url(text) else Path(text)
        if path.is_dir() and is_step is not None and is_step(path):
            found.append(text)
        elif path.is_dir():
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


# ----------------------------------------------------------------------------
# track --pairs: the paired-embedding measurements (gaussaudit pairs) along training

TRACK_PAIRS_SCHEMA = "gaussaudit.track-pairs/1"


@dataclass(frozen=True)
class PairsPoint:
    """One step of :func:`track_pairs`: the step folder, its two files, their measurements."""

    step: int
    path: str
    a: str
    b: str
    report: object  # gaussaudit.pairs.PairsReport


@dataclass(frozen=True)
class PairsTrack:
    """:func:`gaussaudit.pairs.audit_pairs` of each step, in step order; steps that
    could not be measured (a side missing, unreadable, rows that do not pair) are
    listed in ``skipped``, not fatal."""

    a: str
    b: str
    points: list[PairsPoint]
    skipped: list[SkippedStep] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """``{"schema": "gaussaudit.track-pairs/1", "settings", "points": [{"step", "path", "a", "b",
        "n_total", "n", "dim", "pairs": {...as gaussaudit pairs...}}], "skipped": [...]}``."""
        points = []
        for p in self.points:
            doc = p.report.to_dict()
            points.append({"step": p.step, "path": p.path, "a": p.a, "b": p.b, "n_total": doc["n_total"],
                           "n": doc["n"], "dim": doc["dim"], "pairs": doc["pairs"]})
        return {
            "schema": TRACK_PAIRS_SCHEMA,
            "settings": {"a": self.a, "b": self.b, **self.settings},
            "points": points,
            "skipped": [{"step": s.step, "path": s.path, "error": s.error} for s in self.skipped],
        }


def check_pair_names(pairs: Sequence[str]) -> tuple[str, str]:
    """The two names of ``track --pairs A B``: each a file (or folder of shards) inside
    every step folder, given relative to it, and not the same one twice.

    Examples
    --------
    >>> check_pair_names(["view1.npy", "view2.npy"])
    ('view1.npy', 'view2.npy')
    """
    flag = option_name("pairs")
    if isinstance(pairs, (str, os.PathLike)) or len(pairs) != 2:
        raise GaussAuditError(f"{flag} takes two names, A and B: the files each step folder holds, row i of A "
                              "pairing with row i of B (view1.npy view2.npy).")
    a, b = (os.fspath(name) for name in pairs)
    for name in (a, b):
        if not name.strip():
            raise GaussAuditError(f"{flag} was given an empty name; give the two files each step folder holds.")
        if name.startswith("-"):
            raise GaussAuditError(f"{flag} takes two file names, A and B; got {name!r}, an option: give both "
                                  f"names right after {flag}.")
        if os.path.isabs(name) or is_url(name) or ".." in Path(name).parts:
            raise GaussAuditError(f"{flag} {name}: names a file inside each step folder, relative to it "
                                  "(view1.npy, img_emb/); not a path of its own.")
    if os.path.normpath(a) == os.path.normpath(b):
        raise GaussAuditError(f"{flag} names {a} twice; give the two sides of each pair, A and B "
                              "(view1.npy view2.npy).")
    return a, b


def find_pair_steps(paths: Sequence[str | os.PathLike], a: str, b: str) -> list[tuple[int, str]]:
    """:func:`find_steps` for :func:`track_pairs`: a folder named on its own that holds
    ``a`` or ``b`` is one step; any other folder holds the step folders."""
    return find_steps(paths, is_step=lambda folder: (folder / a).exists() or (folder / b).exists())


def track_pairs(paths: Sequence[str | os.PathLike], pairs: Sequence[str], *, temperature: float = 0.1,
                t: float = 2.0, sample: int = 10000, uniformity_sample: int = 5000, seed: int = 0,
                **options) -> PairsTrack:
    """The paired-embedding measurements of :func:`gaussaudit.pairs.audit_pairs`
    (alignment, uniformity beside the uniform-sphere value, ‖m̂‖², the η² bound,
    the modality gap) at each step of a training run: whether alignment plateaus
    while uniformity still improves (the paper's Assumption 1).

    Parameters
    ----------
    paths : sequence of paths
        Step folders (``step_1200/``…), a folder of them, or globs; the step is
        the last number in each name, as in :func:`track` (:func:`find_steps`).
    pairs : (str, str)
        The two names every step folder holds, A and B (``("view1.npy", "view2.npy")``,
        ``("image.parquet", "text.parquet")``): row i of A pairs with row i of B.
    temperature, t, sample, uniformity_sample, seed, options
        As :func:`gaussaudit.pairs.audit_pairs`, for every step.

    Returns
    -------
    PairsTrack
        Points in step order. A step that is not a folder, lacks A or B, or whose
        pairs cannot be measured is recorded in ``skipped`` with the reason.

    Raises
    ------
    GaussAuditError
        Bad names or options, or no step could be measured.
    """
    from gaussaudit.pairs import audit_pairs, check_pair_options

    a_name, b_name = check_pair_names(pairs)
    # bad options fail here, once, not as a skip of every step
    check_pair_options(temperature=temperature, t=t, sample=sample, uniformity_sample=uniformity_sample, seed=seed,
                       **options)
    points, skipped = [], []
    for step, step_path in find_pair_steps(paths, a_name, b_name):
        folder = RemotePath(step_path) if is_url(step_path) else Path(step_path)
        try:
            if not folder.is_dir():
                raise GaussAuditError(f"{step_path}: is a file; with {option_name('pairs')} each step is a folder "
                                      f"holding {a_name} and {b_name}.")
            missing = [name for name in (a_name, b_name) if not (folder / name).exists()]
            if missing:
                raise GaussAuditError(f"{step_path}: has no {' and no '.join(missing)} (the step folder must hold "
                                      f"both {a_name} and {b_name}).")
            a, b = str(folder / a_name), str(folder / b_name)
            report = audit_pairs([a], [b], temperature=temperature, t=t, sample=sample,
                                 uniformity_sample=uniformity_sample, seed=seed, **options)
            points.append(PairsPoint(step, step_path, a, b, report))
        except GaussAuditError as exc:
            skipped.append(SkippedStep(step, step_path, str(exc)))
    if not points:
        first = skipped[0]
        raise GaussAuditError(f"none of the {len(skipped)} steps could be measured; step {first.step}: {first.error}")
    settings = {"temperature": float(temperature), "t": float(t), "sample": sample,
                "uniformity_sample": uniformity_sample, "seed": seed}
    return PairsTrack(a_name, b_name, points, skipped, settings)
