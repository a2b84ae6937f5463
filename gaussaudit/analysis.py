"""Everything the audit computes on the prepared sample: per-feature tests of
both preparations (the paper's Table 2 pair), projections, whitening, the joint
tests of the raw rows, uniformity of the normalised rows, and the headline
tests with their null bands, from Gaussian surrogates prepared as the data were."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaussaudit.errors import option_name, option_set
from gaussaudit.prep.whiten import CovarianceBasis, covariance_basis, whiten
from gaussaudit.progress import Progress, SilentProgress
from gaussaudit.stats.calibration import NullBand, null_band
from gaussaudit.stats.drift import SpectrumSummary, spectrum_summary
from gaussaudit.stats.headline import (
    INNER_DRAWS,
    NULLS,
    QUESTIONS,
    REFIT_EM_ITERATIONS,
    GaussianNull,
    HeadlineTest,
    centred_statistics,
    common_normals,
    data_seed,
    fit_projected_normal,
    monte_carlo_p,
    refit_centre,
    refits_centres,
    sample_shell_cv,
    surrogate_statistics,
    views_and_moments,
)
from gaussaudit.stats.multivariate import (
    EnergyResult,
    HenzeZirklerResult,
    MahalanobisResult,
    MardiaResult,
    henze_zirkler,
    joint_monte_carlo,
    mardia,
)
from gaussaudit.stats.normality import FeatureNormality, feature_normality
from gaussaudit.stats.projections import ProjectionResult, projection_normality
from gaussaudit.stats.qq import QQFeature, qq_samples
from gaussaudit.stats.sphere import UniformityResult, uniformity_from_moments
from gaussaudit.stats.summaries import SUMMARIES

#: Fewest subsample rows per tested dimension in the multivariate tests.
MV_ROWS_PER_DIM = 5


@dataclass(frozen=True)
class MultivariateResult:
    """Mardia, Henze-Zirkler, energy and Mahalanobis tests of the *raw* rows, on
    a seeded row subsample.

    ``dim`` dimensions were tested: the whole space, or the top principal
    components of the raw rows (``explained`` = their share of variance) when
    d is large. ``mahalanobis`` is None with ``--no-mahalanobis``.
    """

    n: int
    dim: int
    source_dim: int
    explained: float
    mardia: MardiaResult
    henze_zirkler: HenzeZirklerResult
    energy: EnergyResult
    mahalanobis: MahalanobisResult | None = None


@dataclass(frozen=True)
class NullCalibration:
    """The headline tests and the null bands, from one set of Gaussian surrogates.

    ``tests`` holds one :class:`~gaussaudit.stats.headline.HeadlineTest` per
    question ("raw", "normalised"); ``bands[question][metric]`` where the
    data's value of each metric falls among the surrogates' (all at the
    test's own n, on the same rows); ``norm_cv`` the band of the norm CV.
    ``prenormalised``: the rows arrived L2-normalised, so only the normalised
    question is asked (its null fitted to the directions,
    :func:`~gaussaudit.stats.headline.fit_projected_normal`) and there is no
    norm CV band.
    """

    replicates: int
    n: int
    tests: dict
    bands: dict
    norm_cv: NullBand | None
    norm_cv_formula: float
    prenormalised: bool = False

    @property
    def coverage(self) -> float:
        """Share of Gaussian samples each band holds (exactly, for exchangeable surrogates)."""
        return next(iter(next(iter(self.bands.values())).values())).coverage


@dataclass(frozen=True)
class SampleAnalysis:
    features: FeatureNormality
    feature_space: str
    effective_rank: int | None
    random: ProjectionResult | None
    pca: ProjectionResult | None
    multivariate: MultivariateResult | None
    notes: tuple[str, ...]
    qq: tuple[QQFeature, ...] = ()
    #: The paper's Table 2 pair: per-feature tests of the "unnormalised" and
    #: the "normalised" rows (coordinates, never whitened).
    pair: dict | None = None
    uniformity: UniformityResult | None = None
    calibration: NullCalibration | None = None
    #: Rotation-invariant summaries of the tested rows' covariance spectrum.
    spectrum: SpectrumSummary | None = None
    #: That covariance's eigenvalues, decreasing (at most d of them; the spectrum figure).
    eigenvalues: np.ndarray | None = None
    #: CV of ‖x‖ a Gaussian with the raw tested rows' mean and covariance has, to first
    #: order (:func:`gaussian_norm_cv`); None with ``spectrum``, or when the rows arrived
    #: L2-normalised.
    norm_cv_gaussian: float | None = None


def _needs_basis(config) -> bool:
    # mv_sample and calibrate need the raw rows' basis; the uniformity tests come with this one
    return bool(config.whiten or config.pca_projections or config.mv_sample or config.calibrate)


def analyse(tested: np.ndarray, config, *, directions: np.ndarray | None, norms: np.ndarray,
            progress: Progress | None = None) -> SampleAnalysis:
    """Run the configured analyses on feature-major prepared data (d × n).

    ``norms`` are the raw norms of the tested rows: with them the raw and the
    normalised rows are both at hand (one multiplies the other column by
    column), so each question gets the rows it is about. ``progress`` hears the
    name of each stage as it starts.
    """
    d, n = tested.shape
    progress = progress or SilentProgress()
    notes: list[str] = []
    norms = np.asarray(norms, dtype=np.float64)
    safe = np.where(norms > 0, norms, 1.0)
    # tested × to_raw = raw rows; tested × to_normalised = normalised rows
    to_raw = norms if config.normalize else None
    to_normalised = None if config.normalize else 1.0 / safe
    basis = raw_basis = None
    if _needs_basis(config):
        progress.stage("covariance")
        basis = covariance_basis(tested)
    test_rows = _test_rows(n, config)
    if config.mv_sample or config.calibrate:
        # The raw rows' covariance (joint tests, surrogates) from the headline
        # test's rows: the surrogates then fit the very rows they are compared with.
        raw_basis = (covariance_basis(tested[:, test_rows], scale=None if to_raw is None else to_raw[test_rows])
                     if config.normalize or len(test_rows) < n else basis)

    if config.whiten:
        coords = whiten(tested, config.whiten, basis)
        space = f"{config.whiten}-whitened"
        if basis.rank < d:
            notes.append(f"whitening kept {basis.rank} of {d} directions (the rest have ~zero variance)")
    else:
        coords, space = tested, "coordinates"
    progress.stage("per-feature tests")
    features = feature_normality(coords, axis=1, threads=config.threads, device=config.device)
    # The coordinates of the other preparation, and of this one when whitening replaced them.
    other = feature_normality(tested, axis=1, threads=config.threads, device=config.device,
                              scale=to_raw if config.normalize else to_normalised)
    plain = features if not config.whiten else feature_normality(tested, axis=1, threads=config.threads,
                                                                 device=config.device)
    pair = {"unnormalised": other if config.normalize else plain, "normalised": plain if config.normalize else other}
    qq = qq_samples(coords, features)

    random = None
    if directions is not None:
        progress.stage("random projections")
        random = projection_normality(tested, directions, "random", threads=config.threads, keep_qq=True,
                                      device=config.device)

    pca = None
    if config.pca_projections and basis.rank:
        k = min(config.pca_projections, basis.rank)
        progress.stage("principal projections")
        pca = projection_normality(tested, basis.eigenvectors[:, :k], "pca", threads=config.threads,
                                   explained=float(basis.explained[k - 1]), keep_qq=True, device=config.device)

    multivariate = None
    if config.mv_sample:
        progress.stage("multivariate tests")
        multivariate = _multivariate(tested, to_raw, raw_basis, config, notes)
    elif config.mahalanobis:
        notes.append("Mahalanobis test skipped: it runs on the multivariate subsample "
                     f"({option_set('mv_sample', 0)})")

    uniformity = None
    if basis is not None:
        sphere = basis if config.normalize else covariance_basis(tested, scale=to_normalised)
        uniformity = uniformity_from_moments(sphere.mean, sphere.eigenvalues, sphere.eigenvectors, n)

    calibration = None
    if config.calibrate:
        progress.stage("calibrating")
        calibration = _calibrate(tested, norms, raw_basis, directions, config, test_rows)
    spectrum = spectrum_summary(basis.eigenvalues) if basis is not None else None
    expected_cv = None
    if basis is not None and not arrived_normalised(norms):  # no Gaussian has the CV 0 of unit rows
        expected_cv = gaussian_norm_cv(basis) if not config.normalize else rows_gaussian_norm_cv(tested, to_raw)
    return SampleAnalysis(features, space, basis.rank if basis else None, random, pca, multivariate,
                          tuple(notes), qq, pair, uniformity, calibration, spectrum,
                          None if basis is None else np.asarray(basis.eigenvalues, dtype=np.float64), expected_cv)


def _multivariate(tested: np.ndarray, to_raw: np.ndarray | None, basis: CovarianceBasis, config,
                  notes: list[str]) -> MultivariateResult | None:
    """The joint tests ask "is it Gaussian?" of the raw rows (normalised rows lie
    on a sphere and are never jointly Gaussian), in the raw rows' top PCs."""
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
        notes.append(f"multivariate tests on the top {p}/{d} principal components of the raw rows "
                     f"({option_name('mv_dims')})")
    sub = tested[:, rows].astype(np.float64)
    if to_raw is not None:
        sub *= to_raw[rows]
    y = (basis.eigenvectors[:, :p].T @ sub).T
    # the raw rows, not y: an eigenvector's sign is the LAPACK build's choice
    seed = data_seed(config.seed, sub[:, : min(m, 64)])
    energy, mahal = joint_monte_carlo(y, replicates=config.energy_replicates, seed=seed, threads=config.threads)
    return MultivariateResult(
        n=m,
        dim=p,
        source_dim=d,
        explained=float(basis.explained[p - 1]) if p < d else 1.0,
        mardia=mardia(y),
        henze_zirkler=henze_zirkler(y),
        energy=energy,
        mahalanobis=mahal if config.mahalanobis else None,
    )


def _test_rows(n: int, config) -> np.ndarray:
    """The headline test's rows: a seeded subsample of at most ``test_sample``."""
    m = min(config.test_sample, n) if config.test_sample else n
    if m >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng([config.seed, 5]).choice(n, size=m, replace=False))


def _calibrate(tested: np.ndarray, norms: np.ndarray, raw_basis: CovarianceBasis, directions, config,
               rows: np.ndarray) -> NullCalibration:
    """The headline tests: the data's statistics on ``rows`` (at most
    ``config.test_sample`` tested rows), against ``config.calibrate`` surrogates of
    that size from N(raw mean, raw covariance), each prepared both ways."""
    m = len(rows)
    raw = tested[:, rows].astype(np.float32)
    if config.normalize:
        raw *= norms[rows].astype(np.float32)
    observed, observed_cv, moments = views_and_moments(raw, directions, config.alpha)
    prenormalised = arrived_normalised(norms[rows])
    if prenormalised:
        # The raw rows are gone: only the normalised question can be asked, and
        # its null is fitted to the directions themselves.
        u = tested[:, rows] / np.where(norms[rows] > 0, norms[rows], 1.0)
        null_basis, questions = fit_projected_normal(u), ("normalised",)
    else:
        null_basis, questions = raw_basis, QUESTIONS
    null_model = GaussianNull.fit(null_basis, m)
    seed = data_seed(config.seed, null_basis.mean, null_basis.eigenvalues)
    refit, base, centres = None, None, None
    if refits_centres(tested.shape[0], m):
        # each sample's normalised z-scores centred on its own refitted null (refit_centre)
        if prenormalised:
            def refit(x):
                # a few EM steps from the surrogate's own generator (REFIT_EM_ITERATIONS)
                u = x / np.linalg.norm(x, axis=0)
                return GaussianNull.fit(fit_projected_normal(u, start=null_basis, iterations=REFIT_EM_ITERATIONS), m)
        else:
            def refit(x):
                return GaussianNull.fit(covariance_basis(x), m)
        base = common_normals(seed.spawn(1)[0], INNER_DRAWS, null_model.factor.shape[0], m)
    null = surrogate_statistics(null_model, directions, config.calibrate, seed, alpha=config.alpha,
                                threads=config.threads, refit=refit, base=base)
    if refit is not None:
        centres = [refit_centre(null_model, base, directions)] + [s.centre for s in null]
    tests, bands = {}, {}
    for question in questions:
        stats = [s.views[question] for s in null]
        everything = centred_statistics([observed[question], *stats],
                                        centres=centres if question == "normalised" else None)
        observed_t, values = float(everything[0]), everything[1:]
        p = monte_carlo_p(observed_t, values)
        tests[question] = HeadlineTest(question=question, gaussian=bool(p > config.alpha), alpha=config.alpha,
                                       p_value=p, statistic=observed_t, null=NULLS[question],
                                       replicates=config.calibrate, n=m, null_statistics=values)
        bands[question] = {"statistic": null_band(values, observed_t)}
        bands[question].update({name: null_band([getattr(s, attr) for s in stats], getattr(observed[question], attr))
                                for name, attr in BAND_METRICS.items()})
    if prenormalised:  # no Gaussian has a norm CV of 0: there is nothing to compare
        cv_band, cv_formula = None, float("nan")
    else:
        # the pivot CV − (the CV a Gaussian fitted to the same rows predicts), see sample_shell_cv
        shell = sample_shell_cv(raw, moments)
        cv_band = null_band([shell + s.norm_cv - s.shell_cv for s in null], observed_cv)
        cv_formula = gaussian_norm_cv(raw_basis)
    return NullCalibration(replicates=config.calibrate, n=m, tests=tests, bands=bands, norm_cv=cv_band,
                           norm_cv_formula=cv_formula, prenormalised=prenormalised)


#: Norm CV below which rows are taken to have arrived L2-normalised (float32
#: rounding of unit rows gives ~1e-7; an isotropic Gaussian in 10⁵ dimensions 0.002).
PRENORMALISED_CV = 1e-4


def arrived_normalised(norms: np.ndarray) -> bool:
    """Whether the rows came already L2-normalised (every norm the same)."""
    mean = float(np.mean(norms))
    return mean > 0 and float(np.std(norms)) < PRENORMALISED_CV * mean


#: Summaries with a null band: their band's JSON name → the ViewStatistics
#: attribute the surrogates give it (named as the summary's attribute).
BAND_METRICS = {s.band: s.attr for s in SUMMARIES if s.band is not None}


def _first_order_norm_cv(mean_sq: float, trace: float, trace_sq: float, mean_cov_mean: float) -> float:
    # ‖x‖² = ‖μ‖² + 2μᵀz + zᵀz, z ~ N(0, Σ): mean ‖μ‖² + tr Σ, variance 4μᵀΣμ + 2 tr Σ²;
    # CV(‖x‖) ≈ ½ CV(‖x‖²) (the delta method: ‖x‖ = √‖x‖²)
    expected = mean_sq + trace
    return 0.5 * float(np.sqrt(4 * mean_cov_mean + 2 * trace_sq)) / expected if expected > 0 else float("nan")


def gaussian_norm_cv(basis: CovarianceBasis) -> float:
    """CV of ‖x‖ for x ~ N(μ, Σ), to first order: ½·√(4μᵀΣμ + 2 tr Σ²)/(‖μ‖² + tr Σ);
    1/√(2·PR) when μ = 0, with PR = (tr Σ)²/tr Σ² the participation ratio."""
    lam = basis.eigenvalues
    along = basis.eigenvectors.T @ basis.mean
    return _first_order_norm_cv(float(basis.mean @ basis.mean), float(lam.sum()), float(np.sum(lam**2)),
                                float(np.sum(lam * along**2)))


#: Samples per block of :func:`rows_gaussian_norm_cv`'s covariance sums.
_CV_BLOCK = 4096


def rows_gaussian_norm_cv(x_fm: np.ndarray, scale: np.ndarray | None = None) -> float:
    """:func:`gaussian_norm_cv` of the mean and covariance (ddof 1) of feature-major
    rows (each sample multiplied by ``scale`` first, as in
    :func:`~gaussaudit.prep.whiten.covariance_basis`), from the traces alone: no
    eigendecomposition, so O(n·d·min(n, d)) and nothing cubic.

    Examples
    --------
    >>> x = np.random.default_rng(0).standard_normal((50, 4000))   # d = 50, N(0, I)
    >>> round(float(rows_gaussian_norm_cv(x) * np.sqrt(2 * 50)), 1)  # the CV ≈ 1/√(2d)
    1.0
    """
    d, n = x_fm.shape
    if n < 2:
        return float("nan")
    scale = None if scale is None else np.asarray(scale, dtype=np.float64)

    def block(start: int) -> np.ndarray:
        b = np.asarray(x_fm[:, start : start + _CV_BLOCK], dtype=np.float64)
        return b if scale is None else b * scale[start : start + _CV_BLOCK]

    mean = sum(block(s).sum(axis=1) for s in range(0, n, _CV_BLOCK)) / n
    if n < d:  # the n × n Gram matrix of the centred samples has the covariance's nonzero spectrum
        centred = np.concatenate([block(s) for s in range(0, n, _CV_BLOCK)], axis=1) - mean[:, None]
        gram = centred.T @ centred / (n - 1)
        trace, trace_sq = float(np.trace(gram)), float(np.sum(gram * gram))
        along = centred.T @ mean
        mean_cov_mean = float(along @ along) / (n - 1)
    else:
        cov = np.zeros((d, d))
        for s in range(0, n, _CV_BLOCK):
            b = block(s) - mean[:, None]
            cov += b @ b.T
        cov /= n - 1
        trace, trace_sq, mean_cov_mean = float(np.trace(cov)), float(np.sum(cov * cov)), float(mean @ cov @ mean)
    return _first_order_norm_cv(float(mean @ mean), trace, trace_sq, mean_cov_mean)


