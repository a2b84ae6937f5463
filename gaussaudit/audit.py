"""``audit(source, config) -> AuditReport``: the library API the CLI is a thin layer over.

Stages (DESIGN.md): one streaming pass over the source (io → streaming.py:
every-row partial states — norm moments, per-feature moments — and the seeded
sample gathered into a feature-major buffer) → per-feature tests, projections
and joint tests on the sample (analysis.py, stats) → summaries and the verdict
rule (here) → rendering (report).
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Mapping

import numpy as np
from threadpoolctl import threadpool_limits

from gaussaudit.analysis import PRENORMALISED_CV, MultivariateResult, NullCalibration, analyse
from gaussaudit.config import AuditConfig, configured
from gaussaudit.errors import GaussAuditError
from gaussaudit.io.sources import dataset_options, open_dataset
from gaussaudit.io.validation import check_nonfinite, check_row_count
from gaussaudit.prep import sample_indices
from gaussaudit.progress import Progress, SilentProgress
from gaussaudit.stats import FeatureNormality
from gaussaudit.stats.drift import SpectrumSummary
from gaussaudit.stats.headline import HeadlineTest
from gaussaudit.stats.histogram import StreamingHistogram
from gaussaudit.stats.multivariate import MahalanobisResult
from gaussaudit.stats.projections import ProjectionResult, random_directions
from gaussaudit.stats.qq import QQFeature  # noqa: F401  (part of the report API)
from gaussaudit.stats.running import MomentsSummary
from gaussaudit.stats.sphere import UniformityResult
from gaussaudit.stats.summaries import DP_ALPHA, SummaryAttributes, paper_rule, summarise  # noqa: F401  (DP_ALPHA: API)
from gaussaudit.streaming import check_buffer_fits, read_pass, sample_dtype


@dataclass(frozen=True)
class Condition:
    """One clause of a verdict rule, with the value it was judged on."""

    name: str
    value: float
    threshold: float
    comparison: str  # "<" or ">"
    passed: bool
    if_passed: str
    if_failed: str


@dataclass(frozen=True)
class Verdict:
    gaussian: bool
    rule: str
    conditions: tuple[Condition, ...]

    @property
    def reasons(self) -> list[str]:
        """One sentence per condition that failed, or why it passed."""
        failed = [c for c in self.conditions if not c.passed]
        shown = failed or self.conditions
        return [_reason(c) for c in shown]


def _reason(c: Condition) -> str:
    op = c.comparison if c.passed else {"<": "≥", ">": "≤"}[c.comparison]
    return f"{c.name} = {c.value:.4g} {op} {c.threshold:g}: {c.if_passed if c.passed else c.if_failed}"


def paper_verdict(metrics: Mapping[str, float]) -> Verdict:
    """The paper's rule on a column's summaries (:func:`~gaussaudit.stats.summaries.paper_rule`):
    Gaussian iff mean A² < 0.752 and mean DP p-value > 0.05."""
    gaussian, clauses = paper_rule(metrics)
    conditions = tuple(Condition(s.rule_name, value, s.rule.threshold, s.rule.comparison, passed, s.rule.if_passed,
                                 s.rule.if_failed) for s, value, passed in clauses)
    return Verdict(gaussian=gaussian, rule="paper", conditions=conditions)


@dataclass(frozen=True)
class PaperColumn(SummaryAttributes):
    """One column of the paper's Table 2: the per-feature summaries of either
    the unnormalised or the normalised rows (``metrics``, by
    :data:`~gaussaudit.stats.summaries.SUMMARIES` key, each also an attribute:
    ``ad_mean``…), and the paper's rule on them."""

    normalized: bool
    metrics: Mapping[str, float]
    verdict: Verdict

    @classmethod
    def of(cls, features: FeatureNormality, normalized: bool) -> "PaperColumn":
        metrics = summarise(features)
        return cls(normalized, metrics, paper_verdict(metrics))


@dataclass(frozen=True)
class WorstFeature:
    feature: int
    value: float


@dataclass(frozen=True)
class AuditReport(SummaryAttributes):
    """Everything an audit found. ``to_dict()`` gives the versioned JSON report.

    Summaries leave out constant features (listed in ``constant_features``);
    per-feature arrays in ``features`` keep every feature, NaN where constant.
    """

    paths: list[str]
    layouts: list[str]
    dtype: str
    n_total: int
    n_used: int
    dim: int
    constant_features: np.ndarray
    nonfinite_rows_dropped: int
    zero_norm_rows: int
    config: AuditConfig
    norm_mean: float
    norm_std: float
    norm_cv: float
    features: FeatureNormality
    #: The per-feature summaries of the tested rows by key ("ad.mean",
    #: "dp.pass_fraction"…, :data:`~gaussaudit.stats.summaries.SUMMARIES`); each
    #: is also an attribute (``report.ad_mean``).
    metrics: Mapping[str, float]
    skewness_worst: WorstFeature
    excess_kurtosis_worst: WorstFeature
    worst_ad_features: list[WorstFeature]
    verdict: Verdict
    seconds: float
    feature_space: str = "coordinates"
    effective_rank: int | None = None
    projections_random: ProjectionResult | None = None
    projections_pca: ProjectionResult | None = None
    multivariate: MultivariateResult | None = None
    calibration: NullCalibration | None = None
    notes: tuple[str, ...] = ()
    #: Raw row norms of every finite row, binned while streaming (figures, terminal).
    norm_histogram: StreamingHistogram | None = None
    #: Best, median and worst feature by A², for QQ plots.
    qq_features: tuple[QQFeature, ...] = ()
    #: Per-feature mean, std, skewness and excess kurtosis of every finite row
    #: (prepared as the tests' rows are), accumulated while streaming.
    moments: MomentsSummary | None = None
    #: The paper's Table 2 pair: "unnormalised" and "normalised" columns.
    paper_columns: dict | None = None
    #: Rayleigh and Bingham tests of uniformity of the normalised rows.
    uniformity: UniformityResult | None = None
    #: What ``gaussaudit extract`` recorded in the input files (model, pretrained
    #: tag, checkpoint SHA-256…): one dict per distinct record, none for other files.
    provenance: tuple[dict, ...] = ()
    #: Rotation-invariant summaries of the tested rows' covariance spectrum
    #: (participation ratio, entropy rank, top share); None when nothing needed the covariance.
    spectrum: SpectrumSummary | None = None
    #: The eigenvalues behind ``spectrum``: of the tested rows' covariance (ddof 1),
    #: decreasing, at most ``dim`` of them (the nonzero ones when rows < dim); the
    #: spectrum figure draws them. None when ``spectrum`` is.
    spectrum_eigenvalues: np.ndarray | None = None
    #: The CV of the row norms a Gaussian with the raw tested rows' mean μ and covariance Σ
    #: has, to first order: ½√(4μᵀΣμ + 2 tr Σ²)/(‖μ‖² + tr Σ), 1/√(2·PR) when μ = 0
    #: (analysis.gaussian_norm_cv), to set beside ``norm_cv``. None when ``spectrum`` is,
    #: or when the rows arrived L2-normalised.
    norm_cv_gaussian: float | None = None
    #: SHA-256 of the tested rows (rounded to float32, row-major): two reports with
    #: the same value tested the same rows.
    sample_sha256: str = ""

    @property
    def mahalanobis(self) -> MahalanobisResult | None:
        """The Mahalanobis test of the raw rows (part of the multivariate tests)."""
        return None if self.multivariate is None else self.multivariate.mahalanobis

    @property
    def tests(self) -> dict:
        """The headline tests by question ("raw", "normalised"); empty with calibrate=0."""
        return {} if self.calibration is None else self.calibration.tests

    @property
    def question(self) -> str:
        """The question the scan asks: "normalised" when rows are L2-normalised
        (or arrived so: then the raw rows are not there to ask about), else "raw"."""
        prenormalised = self.calibration is not None and self.calibration.prenormalised
        return "normalised" if self.config.normalize or prenormalised else "raw"

    @property
    def test(self) -> HeadlineTest | None:
        """The headline test of the question the scan asks (None with calibrate=0)."""
        return self.tests.get(self.question)

    @property
    def n_tested(self) -> int:
        """Features the tests ran on (every non-constant feature, or whitened coordinate)."""
        return int(np.count_nonzero(~self.features.constant))

    def to_dict(self, per_feature: bool = False) -> dict:
        """The JSON report (schema ``gaussaudit.report/1``, see docs/json-schema.md)."""
        from gaussaudit.report.json import report_to_dict

        return report_to_dict(self, per_feature=per_feature)


def _scale_notes(exponent: int) -> tuple[str, ...]:
    if not exponent:
        return ()
    return (f"every value was multiplied by 2^{exponent} (exact) before the arithmetic: at their scale "
            f"(|x| up to ~{2.0 ** -exponent:.0e}) squares and fourth powers overflow or underflow. Every test is "
            "scale-free; the row norms shown are of the rescaled rows.",)


def _unit_norm_notes(cv: float, dtype) -> tuple[str, ...]:
    if not cv < PRENORMALISED_CV:
        return ()
    return (f"the rows are already unit-norm ({np.dtype(dtype).name}, every norm the same): the norm CV says nothing "
            "about the model, and the tests of unnormalised rows equal those of the normalised ones: they describe "
            "these unit rows, not the embeddings before normalisation.",)


def rows_fingerprint(tested: np.ndarray) -> str:
    """SHA-256 of feature-major ``tested`` rows as row-major little-endian float32:
    the same rows read from a float32 or a float64 copy give the same digest."""
    rows = np.ascontiguousarray(tested.T, dtype="<f4")
    return hashlib.sha256(rows.tobytes()).hexdigest()


def _worst(values: np.ndarray, tested: np.ndarray) -> WorstFeature:
    masked = np.where(tested, np.abs(values), -np.inf)
    j = int(np.argmax(masked))
    return WorstFeature(j, float(values[j]))


def audit(source, config: AuditConfig | None = None, *, progress: Progress | None = None, client=None,
          **options) -> AuditReport:
    """Audit embeddings for Gaussianity as in *InfoNCE Induces Gaussian Distribution*.

    Parameters
    ----------
    source : path, list of paths, or 2-D array
        ``.npy`` / ``.npz`` / ``.parquet`` files, folders of shards (read
        recursively, in natural order) or globs, all read as one dataset; or an
        ``(n, d)`` array already in memory.
    config : AuditConfig, optional
        Options; keyword arguments override its fields (``sample=0``, ``seed=1``…).
    progress : Progress, optional
        Receives the reading pass's row counts and the stages that follow
        (:mod:`gaussaudit.progress`); silent by default.
    client : distributed.Client, optional
        Read the shards on this Dask cluster's workers, where they lie (each
        opens its own files, local or remote); only each shard's partial state
        and its rows of the sample reach this process. The report is identical,
        bit for bit, to the one made here (:mod:`gaussaudit.cluster`).

    Returns
    -------
    AuditReport

    Raises
    ------
    GaussAuditError
        Bad input or options, with a message naming the file and the problem.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussaudit import audit
    >>> x = np.random.default_rng(0).standard_normal((2000, 64))
    >>> report = audit(x)
    >>> report.verdict.gaussian, report.n_used, report.dim
    (True, 2000, 64)
    """
    started = time.perf_counter()
    config = configured(config, AuditConfig, options, "audit")
    if config.threads is None:
        return _audit(source, config, progress or SilentProgress(), client, started)
    # ``threads`` bounds BLAS as well: our pools hold it to one thread each while they
    # run, but the products and eigendecompositions between them would use every core
    with threadpool_limits(limits=config.threads, user_api="blas"):
        return _audit(source, config, progress or SilentProgress(), client, started)


def _audit(source, config: AuditConfig, progress: Progress, client, started: float) -> AuditReport:
    dataset = open_dataset(source, **{name: getattr(config, name, None) for name in dataset_options()})
    n_total, dim = dataset.n_rows, dataset.dim
    # The buffer is checked before the index is drawn: an index of 9e8 rows alone is 7 GB.
    n_chosen = n_total if config.sample == 0 else min(config.sample, n_total)
    check_buffer_fits(n_chosen, dim, sample_dtype(dataset.dtype), config.sample,
                      dataset.paths[0] if len(dataset.paths) == 1 else f"the {len(dataset.paths)} input files")
    chosen = sample_indices(n_total, config.sample, config.seed)
    streamed = read_pass(dataset, chosen, normalize=config.normalize, threads=config.threads, progress=progress,
                         client=client)
    every_row = streamed.stats
    check_nonfinite(every_row.nonfinite_rows, every_row.first_nonfinite, config.drop_nonfinite)
    tested, tested_norms = streamed.tested, streamed.tested_norms
    filled = tested.shape[1]

    name = dataset.paths[0] if len(dataset.paths) == 1 else f"the {len(dataset.paths)} input files"
    if every_row.nonfinite_rows:
        check_row_count(filled, name, after=f" left after dropping {every_row.nonfinite_rows} with non-finite values")
    norms = every_row.norms.result()

    all_constant = GaussAuditError(
        f"{name}: every one of the {dim} features is constant over the {filled} rows tested; "
        "there is nothing to test."
    )
    if np.all(np.ptp(tested, axis=1) == 0):
        raise all_constant
    directions = random_directions(dim, config.projections, config.seed) if config.projections else None
    analysis = analyse(tested, config, directions=directions, norms=tested_norms, progress=progress)
    result = analysis.features
    ok = ~result.constant
    if not ok.any():  # constant up to rounding (scipy's cut-off), though not bit for bit
        raise all_constant
    order = np.argsort(-np.where(ok, result.ad.statistic, -np.inf), kind="stable")[:5]
    # The paper's Table 2 pair; its rule is judged on the unnormalised column, as in its Table 1.
    columns = {name: PaperColumn.of(features, name == "normalised") for name, features in analysis.pair.items()}
    return AuditReport(
        paths=dataset.paths,
        layouts=dataset.layouts,
        provenance=tuple(dataset.provenance),
        dtype=str(dataset.dtype),
        n_total=n_total,
        n_used=filled,
        dim=dim,
        constant_features=np.flatnonzero(result.constant),
        nonfinite_rows_dropped=every_row.nonfinite_rows,
        zero_norm_rows=every_row.zero_norm_rows,
        config=config,
        norm_mean=norms.mean,
        norm_std=norms.std,
        norm_cv=norms.cv,
        features=result,
        metrics=summarise(result),
        skewness_worst=_worst(result.dp.skewness, ok),
        excess_kurtosis_worst=_worst(result.dp.excess_kurtosis, ok),
        worst_ad_features=[WorstFeature(int(j), float(result.ad.statistic[j])) for j in order if ok[j]],
        verdict=columns["unnormalised"].verdict,
        seconds=time.perf_counter() - started,
        feature_space=analysis.feature_space,
        effective_rank=analysis.effective_rank,
        projections_random=analysis.random,
        projections_pca=analysis.pca,
        multivariate=analysis.multivariate,
        calibration=analysis.calibration,
        notes=(dataset.notes + _scale_notes(streamed.scale_exponent) + _unit_norm_notes(norms.cv, dataset.dtype)
               + analysis.notes),
        norm_histogram=every_row.norm_histogram,
        moments=every_row.moments.result(),
        qq_features=analysis.qq,
        paper_columns=columns,
        uniformity=analysis.uniformity,
        spectrum=analysis.spectrum,
        spectrum_eigenvalues=analysis.eigenvalues,
        norm_cv_gaussian=analysis.norm_cv_gaussian,
        sample_sha256=rows_fingerprint(tested),
    )
