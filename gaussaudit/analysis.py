"""Everything the audit computes on the prepared sample: per-feature tests,
projections, whitening, Mahalanobis norms, multivariate tests, and the
calibrated null built by running the same analysis on Gaussian surrogates."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from gaussaudit.progress import Progress, SilentProgress
from gaussaudit.prep.whiten import CovarianceBasis, covariance_basis, whiten
from gaussaudit.stats._blocks import parallel_map
from gaussaudit.stats.calibration import NullBand, null_band
from gaussaudit.stats.multivariate import (
    EnergyResult,
    HenzeZirklerResult,
    MahalanobisResult,
    MardiaResult,
    energy_test,
    henze_zirkler,
    mahalanobis_from_d2,
    mardia,
)
from gaussaudit.stats.normality import FeatureNormality, feature_normality
from gaussaudit.stats.projections import ProjectionResult, projection_normality
from gaussaudit.stats.qq import QQFeature, qq_samples

#: Fewest subsample rows per tested dimension in the multivariate tests.
MV_ROWS_PER_DIM = 5
_MAHALANOBIS_COLUMNS = 8192


@dataclass(frozen=True)
class MultivariateResult:
    """Mardia, Henze-Zirkler and energy tests on a seeded row subsample.

    ``dim`` dimensions were tested: the whole space, or the top principal
    components (``explained`` = their share of variance) when d is large.
    """

    n: int
    dim: int
    source_dim: int
    explained: float
    mardia: MardiaResult
    henze_zirkler: HenzeZirklerResult
    energy: EnergyResult


@dataclass(frozen=True)
class SampleAnalysis:
    features: FeatureNormality
    feature_space: str
    effective_rank: int | None
    random: ProjectionResult | None
    pca: ProjectionResult | None
    mahalanobis: MahalanobisResult | None
    multivariate: MultivariateResult | None
    notes: tuple[str, ...]
    qq: tuple[QQFeature, ...] = ()


def _needs_basis(config, full: bool) -> bool:
    return bool(config.whiten or config.pca_projections or (full and (config.mahalanobis or config.mv_sample)))


def analyse(tested: np.ndarray, config, *, directions: np.ndarray | None, full: bool = True,
            progress: Progress | None = None) -> SampleAnalysis:
    """Run the configured analyses on feature-major prepared data (d × n).

    ``full=False`` skips what calibration does not use (Mahalanobis norms and
    the multivariate tests, which carry p-values of their own). ``progress``
    hears the name of each stage as it starts.
    """
    d, n = tested.shape
    progress = progress or SilentProgress()
    notes: list[str] = []
    basis = None
    if _needs_basis(config, full):
        progress.stage("covariance")
        basis = covariance_basis(tested)

    if config.whiten:
        coords = whiten(tested, config.whiten, basis)
        space = f"{config.whiten}-whitened"
        if basis.rank < d:
            notes.append(f"whitening kept {basis.rank} of {d} directions (the rest have ~zero variance)")
    else:
        coords, space = tested, "coordinates"
    progress.stage("per-feature tests")
    features = feature_normality(coords, axis=1, threads=config.threads, device=config.device)
    qq = qq_samples(coords, features) if full else ()

    random = None
    if directions is not None:
        progress.stage("random projections")
        random = projection_normality(tested, directions, "random", threads=config.threads, keep_qq=full,
                                      device=config.device)

    pca = None
    if config.pca_projections and basis.rank:
        k = min(config.pca_projections, basis.rank)
        progress.stage("principal projections")
        pca = projection_normality(tested, basis.eigenvectors[:, :k], "pca", threads=config.threads,
                                   explained=float(basis.explained[k - 1]), keep_qq=full, device=config.device)

    mahal = None
    multivariate = None
    if full and config.mahalanobis:
        if n - basis.rank - 1 > 0:
            progress.stage("Mahalanobis norms")
            mahal = mahalanobis_from_d2(_squared_mahalanobis(tested, basis), basis.rank)
        else:
            notes.append(f"Mahalanobis test skipped: rank {basis.rank} needs more than {basis.rank + 1} rows, got {n}")
    if full and config.mv_sample:
        progress.stage("multivariate tests")
        multivariate = _multivariate(tested, basis, config, notes)
    return SampleAnalysis(features, space, basis.rank if basis else None, random, pca, mahal, multivariate,
                          tuple(notes), qq)


def _squared_mahalanobis(tested: np.ndarray, basis: CovarianceBasis) -> np.ndarray:
    """D² of every sample (column) in the rank-r eigenbasis.

    The r × d × n product runs in float32, half the time of float64: D² comes
    out to ~1e-7 relative, far below what the KS test on n values resolves
    (1/n). Columns go a block at a time, so no centred copy of the whole sample
    is made.
    """
    r = basis.rank
    scale = (basis.eigenvectors[:, :r] / np.sqrt(basis.eigenvalues[:r])).astype(np.float32)
    mean = basis.mean.astype(np.float32)[:, None]
    n = tested.shape[1]
    d2 = np.empty(n)
    for start in range(0, n, _MAHALANOBIS_COLUMNS):
        centred = tested[:, start : start + _MAHALANOBIS_COLUMNS].astype(np.float32)
        centred -= mean
        scores = scale.T @ centred
        scores *= scores
        d2[start : start + _MAHALANOBIS_COLUMNS] = scores.sum(axis=0, dtype=np.float64)
    return d2


def _multivariate(tested: np.ndarray, basis: CovarianceBasis, config, notes: list[str]) -> MultivariateResult | None:
    d, n = tested.shape
    m = min(config.mv_sample, n)
    rng = np.random.default_rng([config.seed, 2])
    rows = np.sort(rng.choice(n, size=m, replace=False)) if m < n else np.arange(n)
    by_rows = max(1, m // MV_ROWS_PER_DIM)
    p = min(basis.rank, config.mv_dims, by_rows)
    if p < 1:
        notes.append("multivariate tests skipped: the data have zero covariance")
        return None
    if p < min(basis.rank, config.mv_dims):
        notes.append(f"d = {d} is near or above the multivariate subsample ({m} rows): "
                     f"tested the top {p} principal components instead ({MV_ROWS_PER_DIM}+ rows per dimension)")
    elif p < d:
        notes.append(f"multivariate tests on the top {p}/{d} principal components (--mv-dims)")
    y = (basis.eigenvectors[:, :p].T @ tested[:, rows]).T
    return MultivariateResult(
        n=m,
        dim=p,
        source_dim=d,
        explained=float(basis.explained[p - 1]) if p < d else 1.0,
        mardia=mardia(y),
        henze_zirkler=henze_zirkler(y),
        energy=energy_test(y, replicates=config.energy_replicates, seed=config.seed, threads=config.threads),
    )


# ----------------------------------------------------------------------------
# summaries shared by the observed data and the surrogates


def _mean(values: np.ndarray, ok: np.ndarray) -> float:
    return float(np.mean(values[ok])) if ok.any() else float("nan")


def calibrated_metrics(analysis: SampleAnalysis, norm_cv: float) -> dict[str, float]:
    """The metrics the calibrated null covers, by their JSON names."""
    f = analysis.features
    ok = ~f.constant
    out = {
        "norm_cv": norm_cv,
        "ad.mean": _mean(f.ad.statistic, ok),
        "ad.pass_fraction": _mean(f.ad.passes().astype(float), ok),
        "dp.mean_p": _mean(f.dp.pvalue, ok),
        "dp.pass_fraction": _mean((f.dp.pvalue > 0.05).astype(float), ok),
    }
    for proj in (analysis.random, analysis.pca):
        if proj is not None:
            out[f"projections.{proj.kind}.ad.mean"] = proj.ad_mean
            out[f"projections.{proj.kind}.dp.mean_p"] = proj.dp_mean_p
    return out


@dataclass(frozen=True)
class CalibrationResult:
    """Null bands of every calibrated metric, and the calibrated verdict.

    The null: R Gaussian samples with the raw sample's mean and covariance, the
    same n and d, each prepared and analysed exactly as the data were.
    Calibrated verdict: Gaussian iff the mean A² is at most the null's 95th
    percentile and the mean DP p-value at least the null's 5th.
    """

    replicates: int
    metrics: dict[str, NullBand]

    @property
    def gaussian(self) -> bool:
        ad, dp = self.metrics["ad.mean"], self.metrics["dp.mean_p"]
        return bool(ad.observed <= ad.null_high and dp.observed >= dp.null_low)


def calibrate(raw: np.ndarray, config, observed: dict[str, float], directions: np.ndarray | None) -> CalibrationResult:
    """Run the analysis on ``config.calibrate`` Gaussian surrogates of ``raw``
    (feature-major raw rows of the sample) and place ``observed`` in their null.

    Surrogates share the covariance factor and the random directions, and run
    on a thread pool (each on its own seeded stream, so results do not depend
    on the number of threads).
    """
    d, n = raw.shape
    basis = covariance_basis(raw)
    factor = basis.eigenvectors[:, : basis.rank] * np.sqrt(basis.eigenvalues[: basis.rank])
    streams = np.random.SeedSequence([config.seed, 3]).spawn(config.calibrate)
    inner = _single_threaded(config)

    def surrogate(stream) -> dict[str, float]:
        z = np.random.default_rng(stream).standard_normal((basis.rank, n))
        x = factor @ z
        x += basis.mean[:, None]
        norms = np.sqrt(np.einsum("ij,ij->j", x, x))
        cv = float(norms.std() / norms.mean())
        if config.normalize:
            x /= np.where(norms > 0, norms, 1.0)
        return calibrated_metrics(analyse(x, inner, directions=directions, full=False), cv)

    null = parallel_map(surrogate, streams, config.threads)
    bands = {name: null_band([s[name] for s in null], value) for name, value in observed.items()}
    return CalibrationResult(replicates=config.calibrate, metrics=bands)


def _single_threaded(config):
    # Surrogates already run in parallel; nested pools would only add overhead.
    return replace(config, threads=1)
