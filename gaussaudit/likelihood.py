"""The Gaussian model put to use: ``fit`` it to reference embeddings (one
streaming pass, any number of shards, bounded memory), then ``score`` new
embeddings with it: log-likelihood, squared Mahalanobis norm, its χ² p-value,
and an out-of-distribution flag at a chosen false-positive rate, calibrated on
reference rows held out of the fit (:mod:`gaussaudit.stats.gaussian_model`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from gaussaudit.config import AuditConfig, configured
from gaussaudit.errors import GaussAuditError, option_name, option_set
from gaussaudit.io.sources import source_label
from gaussaudit.io.validation import finite_rows
from gaussaudit.prep.normalize import l2_normalize
from gaussaudit.stats.gaussian_model import DEFAULT_RTOL, CovarianceState, GaussianModel, model_from_state

MODEL_SCHEMA = "gaussaudit.gaussian-model/1"
#: Held-out reference rows for the OOD calibration, at most (their Mahalanobis norms are stored in the model).
DEFAULT_HOLDOUT = 10_000


@dataclass(frozen=True)
class FittedModel:
    """A Gaussian model and what it was fitted on."""

    model: GaussianModel
    normalized: bool
    source: str
    #: the audit's headline tests of the fitted rows (JSON form), None when no audit ran
    verdict: dict | None = None
    notes: tuple[str, ...] = ()

    @property
    def gaussian(self) -> bool | None:
        """Whether the audit's headline test of the raw question found the rows Gaussian."""
        test = None if self.verdict is None else (self.verdict.get("tests") or {}).get(
            "normalised" if self.normalized else "raw")
        return None if test is None else bool(test.get("gaussian"))


def _prepared(chunk: np.ndarray, normalize: bool) -> np.ndarray:
    rows = np.asarray(chunk, dtype=np.float64)
    return l2_normalize(rows) if normalize else rows


def _rows(dataset, normalize: bool, drop_nonfinite: bool) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(global row indices, prepared finite rows, finite mask) per chunk, in row order."""
    for shard, local, start, chunk in dataset.chunks():
        ok = finite_rows(chunk, drop_nonfinite, shard.source, local)
        index = np.arange(start, start + len(chunk))
        yield index[ok], _prepared(chunk[ok], normalize), ok


def _open(source, config: AuditConfig):
    from gaussaudit.io.sources import dataset_options, open_dataset

    return open_dataset(source, **{name: getattr(config, name, None) for name in dataset_options()})


def fit(source, *, normalize: bool = False, holdout: int = DEFAULT_HOLDOUT, seed: int = 0, rtol: float = DEFAULT_RTOL,
        audit_config: AuditConfig | None = None, run_audit: bool = True, **options) -> FittedModel:
    """Fit N(μ, Σ) to every row of ``source`` but a seeded held-out set.

    Parameters
    ----------
    source : path, list of paths or 2-D array
        Reference embeddings, as ``audit`` takes them.
    normalize : bool, default False
        Model L2-normalised rows instead of the rows as given (scores then
        normalise too).
    holdout : int, default 10000
        Rows held out of the fit (a seeded uniform draw, at most a fifth of the
        rows) whose Mahalanobis norms calibrate the OOD flag; 0 = none (the flag
        then needs the χ² law).
    seed : int
        Seed of the held-out draw.
    rtol : float
        Eigenvalues at most ``rtol`` times the largest are dropped (rank kept).
    run_audit : bool, default True
        Audit the fitted rows too (``audit_config``), so the model file says
        whether a Gaussian describes them.
    options
        How the files are read: ``key``, ``column``, ``drop_nonfinite``…

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).standard_normal((3000, 8))
    >>> fitted = fit(x, holdout=500, run_audit=False)
    >>> fitted.model.n, fitted.model.rank, fitted.model.calibration.shape
    (2500, 8, (500,))
    """
    config = configured(None, AuditConfig, {"seed": seed, **options}, "fit")
    if isinstance(holdout, bool) or not isinstance(holdout, (int, np.integer)) or holdout < 0:
        raise GaussAuditError(f"{option_name('holdout')} must be a whole number, 0 or more; got {holdout!r}.")
    dataset = _open(source, config)
    n_total = dataset.n_rows
    kept_out = min(int(holdout), n_total // 5)
    notes = []
    if holdout and kept_out < holdout:
        notes.append(f"{kept_out} rows held out for the OOD calibration ({option_set('holdout', holdout)} asked; at "
                     f"most a fifth of the {n_total} rows)")
    from gaussaudit.prep import sample_indices

    held = sample_indices(n_total, kept_out, seed) if kept_out else np.empty(0, dtype=np.int64)
    held = np.arange(n_total) if held is None else held
    state = CovarianceState(dataset.dim)
    held_rows = []
    for index, rows, _ in _rows(dataset, normalize, config.drop_nonfinite):
        out = np.isin(index, held, assume_unique=True)
        state.update(rows[~out])
        if out.any():
            held_rows.append(rows[out])
    if state.count <= dataset.dim:
        notes.append(f"{state.count} rows for {dataset.dim} dimensions: the covariance is singular, the model keeps "
                     "the directions the rows span, and a row's distance off that span is not scored")
    model = model_from_state(state, rtol)
    if held_rows:
        model = model.with_calibration(np.concatenate(held_rows))
    if model.rank < dataset.dim:
        notes.append(f"the covariance has rank {model.rank} of {dataset.dim}: likelihoods and Mahalanobis norms are "
                     f"those of the {model.rank}-dimensional span (χ² with {model.rank} degrees of freedom)")
    verdict = None
    if run_audit:
        from gaussaudit.audit import audit

        cfg = configured(audit_config, AuditConfig, {"normalize": normalize, **options}, "fit")
        verdict = audit(source, cfg).to_dict()["verdict"]
    return FittedModel(model, normalize, source_label(source), verdict, tuple(notes))


@dataclass(frozen=True)
class Scores:
    """Per-row scores of embeddings under a Gaussian model (row = index in the input)."""

    row: np.ndarray
    log_likelihood: np.ndarray
    mahalanobis_sq: np.ndarray
    chi2_p: np.ndarray
    #: conformal p-value against the held-out reference rows (NaN when the model has none)
    ood_p: np.ndarray
    ood: np.ndarray
    fpr: float
    #: what the OOD flag rests on: "held-out reference rows (m = …)" or "the χ² law"
    flagged_by: str
    rows_dropped: int = 0

    @property
    def n(self) -> int:
        return int(self.row.shape[0])

    @property
    def share_flagged(self) -> float:
        return float(np.mean(self.ood)) if self.n else float("nan")

    def columns(self) -> dict[str, np.ndarray]:
        return {"row": self.row, "log_likelihood": self.log_likelihood, "mahalanobis_sq": self.mahalanobis_sq,
                "chi2_p": self.chi2_p, "ood_p": self.ood_p, "ood": self.ood}


def check_fpr(fpr) -> float:
    if isinstance(fpr, bool) or not isinstance(fpr, (int, float)) or not 0 < fpr < 1:
        raise GaussAuditError(f"{option_name('fpr')} must be a number between 0 and 1; got {fpr!r}.")
    return float(fpr)


def score_chunks(fitted: FittedModel, source, *, fpr: float = 0.01, **options):
    """Scores of ``source``'s rows, one :class:`Scores` per chunk (bounded memory)."""
    fpr = check_fpr(fpr)
    config = configured(None, AuditConfig, options, "score")
    dataset = _open(source, config)
    model = fitted.model
    if dataset.dim != model.dim:
        raise GaussAuditError(f"{source_label(source)}: rows of {dataset.dim} features, but the model was fitted to rows of "
                              f"{model.dim}.")
    m = model.calibration.shape[0]
    if m and (m + 1) * fpr < 1:
        raise GaussAuditError(f"{option_set('fpr', fpr)} is below what {m} held-out rows can calibrate (the smallest "
                              f"p-value is 1/{m + 1}); use an fpr of at least {1 / (m + 1):.2g}, or fit with a larger "
                              "holdout.")
    flagged_by = f"held-out reference rows (m = {m})" if m else "the χ² law"
    for index, rows, ok in _rows(dataset, fitted.normalized, config.drop_nonfinite):
        d2 = model.mahalanobis_sq(rows)
        p_ood = model.conformal_pvalue(d2) if m else np.full(len(d2), np.nan)
        chi2_p = model.chi2_pvalue(d2)
        yield Scores(index, model.log_likelihood(rows, d2), d2, chi2_p, p_ood,
                     (p_ood if m else chi2_p) <= fpr, fpr, flagged_by, int(np.count_nonzero(~ok)))


def score(fitted: FittedModel, source, *, fpr: float = 0.01, **options) -> Scores:
    """Every row's scores (in memory; :func:`score_chunks` streams them).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> fitted = fit(rng.standard_normal((5000, 8)), holdout=1000, run_audit=False)
    >>> same, shifted = score(fitted, rng.standard_normal((2000, 8))), score(fitted, rng.standard_normal((2000, 8)) + 1)
    >>> round(same.share_flagged, 3), round(shifted.share_flagged, 2)
    (0.008, 0.23)
    """
    parts = list(score_chunks(fitted, source, fpr=fpr, **options))
    if not parts:
        raise GaussAuditError(f"{source_label(source)}: no rows to score.")
    join = {name: np.concatenate([getattr(p, name) for p in parts])
            for name in ("row", "log_likelihood", "mahalanobis_sq", "chi2_p", "ood_p", "ood")}
    return Scores(**join, fpr=parts[0].fpr, flagged_by=parts[0].flagged_by,
                  rows_dropped=sum(p.rows_dropped for p in parts))


def ood_threshold(model: GaussianModel, fpr: float) -> float:
    """The squared Mahalanobis norm t past which :func:`score_chunks` flags a row at ``fpr``.

    With held-out reference rows the flag is the conformal p-value (1 + #{held-out ≥ d²})/(m + 1)
    ≤ fpr, which holds exactly when d² > t for t the held-out value that many places from the
    top (+inf when no p-value can be that small). Without them it is the χ² p-value ≤ fpr,
    i.e. d² ≥ t = the χ²_r upper-fpr quantile (to its rounding).

    Examples
    --------
    >>> import numpy as np
    >>> m = GaussianModel(np.zeros(1), np.ones(1), np.ones((1, 1)), 100, np.arange(1.0, 100.0))
    >>> ood_threshold(m, 0.05)                # (1 + 4)/100 ≤ 0.05: d² above the 5th largest of 99
    95.0
    """
    fpr = check_fpr(fpr)
    m = model.calibration.shape[0]
    if not m:
        from scipy import stats

        return float(stats.chi2.isf(fpr, model.rank))
    below = np.arange(m + 1)  # #{held-out < d²}: the p-value is (1 + m − below)/(m + 1), as conformal_pvalue
    flagged = np.flatnonzero((1 + (m - below)) / (m + 1) <= fpr)
    if not flagged.size:
        return float("inf")
    first = int(flagged[0])
    return float(model.calibration[first - 1]) if first else float("-inf")


@dataclass(frozen=True, eq=False)
class ScoreHistogram:
    """What the score figure draws: scored rows' d² binned on log10(d²), the held-out
    reference rows' on the same bins, the χ²_r law's share of each bin, the threshold."""

    #: bin edges on log10(d²), equal widths (a power of two)
    log10_edges: np.ndarray
    #: scored rows per bin (rows with d² = 0 have no log and are counted in ``zero``)
    counts: np.ndarray
    #: held-out reference rows per bin; None when the model has none
    reference_counts: np.ndarray | None
    #: P(χ²_r in the bin): the share a Gaussian model gives each bin
    chi2_shares: np.ndarray
    #: :func:`ood_threshold`
    threshold: float
    zero: int = 0


class ScoreSummary:
    """What the terminal and the JSON say about scored rows, accumulated chunk by
    chunk (bounded memory): counts, the share flagged, and quantiles of the
    log-likelihood and Mahalanobis norm from mergeable histograms."""

    def __init__(self, fitted: FittedModel, fpr: float):
        from gaussaudit.stats.histogram import StreamingHistogram

        self.fitted, self.fpr = fitted, fpr
        self.rows = self.flagged = self.dropped = 0
        self.flagged_by = ""
        self.log_likelihood = StreamingHistogram()
        self.mahalanobis_sq = StreamingHistogram()
        #: log10 of the positive d² (the score figure: d² spans decades when rows are far out)
        self.log10_mahalanobis_sq = StreamingHistogram()
        self.zero_mahalanobis_sq = 0

    def add(self, part: Scores) -> Scores:
        self.rows += part.n
        self.flagged += int(np.count_nonzero(part.ood))
        self.dropped += part.rows_dropped
        self.flagged_by = part.flagged_by
        self.log_likelihood.update(part.log_likelihood)
        self.mahalanobis_sq.update(part.mahalanobis_sq)
        positive = part.mahalanobis_sq[part.mahalanobis_sq > 0]
        self.zero_mahalanobis_sq += int(np.count_nonzero(part.mahalanobis_sq == 0))
        self.log10_mahalanobis_sq.update(np.log10(positive))
        return part

    @property
    def threshold(self) -> float:
        """:func:`ood_threshold` of the model at this summary's fpr."""
        return ood_threshold(self.fitted.model, self.fpr)

    def histogram(self, bins: int = 60) -> ScoreHistogram:
        """The scored rows' d² on at most ``bins`` equal bins of log10(d²) (fewer when the
        grid's power-of-two widths allow), spanning the held-out reference rows' d² too."""
        from scipy import stats

        from gaussaudit.stats.histogram import StreamingHistogram

        model = self.fitted.model
        cal = model.calibration[model.calibration > 0]
        reference = StreamingHistogram().update(np.log10(cal)) if cal.size else StreamingHistogram()
        # one grid for both: the merged state's, coarsened to the display's width
        grid = self.log10_mahalanobis_sq.merge(reference).coarsened(bins)
        if grid.width == 0.0:  # no positive d² anywhere
            return ScoreHistogram(np.zeros(0), np.zeros(0, dtype=np.int64), None, np.zeros(0), self.threshold,
                                  self.zero_mahalanobis_sq)
        counts = self.log10_mahalanobis_sq.at_width(grid.width)
        on_grid = np.zeros(len(grid.counts), dtype=np.int64)
        if counts.counts.size:
            offset = counts.start - grid.start
            on_grid[offset : offset + len(counts.counts)] = counts.counts
        edges = grid.edges
        # the merged grid holds both sets of counts: the reference rows' are the rest
        ref_counts = (grid.counts - on_grid) if model.calibration.shape[0] else None
        chi2 = np.diff(stats.chi2.cdf(10.0 ** edges, model.rank)) if edges.size > 1 else np.zeros(0)
        return ScoreHistogram(edges, on_grid, ref_counts, chi2, self.threshold, self.zero_mahalanobis_sq)

    @property
    def share_flagged(self) -> float:
        return self.flagged / self.rows if self.rows else float("nan")

    def quantiles(self, histogram) -> dict[str, float]:
        return {f"q{int(q * 100):02d}": float(histogram.quantile(q)) for q in (0.01, 0.05, 0.5, 0.95, 0.99)}

    def to_dict(self) -> dict:
        m = self.fitted.model
        return {"schema": "gaussaudit.scores/1", "rows": self.rows, "rows_dropped": self.dropped, "fpr": self.fpr,
                "flagged": self.flagged, "share_flagged": self.share_flagged, "flagged_by": self.flagged_by,
                "model": {"source": self.fitted.source, "n": m.n, "dim": m.dim, "rank": m.rank,
                          "normalized": self.fitted.normalized, "holdout": int(m.calibration.shape[0]),
                          "gaussian": self.fitted.gaussian},
                "log_likelihood": self.quantiles(self.log_likelihood),
                "mahalanobis_sq": {**self.quantiles(self.mahalanobis_sq), "chi2_df": m.rank,
                                   "ood_threshold": _finite_or_none(self.threshold),
                                   "histogram": self._histogram_dict()}}

    def _histogram_dict(self) -> dict:
        h = self.histogram()
        return {"log10_edges": [float(e) for e in h.log10_edges], "counts": h.counts.tolist(),
                "reference_counts": None if h.reference_counts is None else h.reference_counts.tolist(),
                "zero": h.zero}


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def model_arrays(fitted: FittedModel) -> dict[str, np.ndarray]:
    """What a model file holds (``io.models.save_model`` writes it as .npz)."""
    from gaussaudit import __version__

    m = fitted.model
    meta = {"schema": MODEL_SCHEMA, "gaussaudit_version": __version__, "source": fitted.source,
            "normalized": fitted.normalized, "n": m.n, "dim": m.dim, "rank": m.rank, "verdict": fitted.verdict,
            "notes": list(fitted.notes)}
    return {"mean": m.mean, "eigenvalues": m.eigenvalues, "eigenvectors": m.eigenvectors,
            "calibration": m.calibration, "meta": np.array(json.dumps(meta))}


def model_from_arrays(arrays: dict[str, np.ndarray], source: str) -> FittedModel:
    """The inverse of :func:`model_arrays`, checked (a GaussAuditError naming ``source``)."""
    try:
        meta = json.loads(str(arrays["meta"][()]))
        mean, values, vectors = (np.asarray(arrays[k], dtype=np.float64) for k in ("mean", "eigenvalues", "eigenvectors"))
        calibration = np.asarray(arrays["calibration"], dtype=np.float64)
    except (KeyError, ValueError, TypeError):
        raise GaussAuditError(f"{source}: is not a gaussaudit Gaussian model (make one with `gaussaudit fit`).") from None
    if meta.get("schema") != MODEL_SCHEMA:
        raise GaussAuditError(f"{source}: model schema {meta.get('schema')!r}; this gaussaudit reads {MODEL_SCHEMA}.")
    d = mean.shape[0] if mean.ndim == 1 else -1
    if (d < 1 or values.ndim != 1 or vectors.shape != (d, values.shape[0]) or not np.all(values > 0)
            or not all(np.isfinite(a).all() for a in (mean, values, vectors, calibration))):
        raise GaussAuditError(f"{source}: the model's arrays are damaged (shapes or values inconsistent).")
    model = GaussianModel(mean, values, vectors, int(meta.get("n", 0)), np.sort(calibration))
    return FittedModel(model, bool(meta.get("normalized")), str(meta.get("source", "")), meta.get("verdict"),
                       tuple(meta.get("notes", ())))
