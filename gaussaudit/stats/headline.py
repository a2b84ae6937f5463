"""The headline test: one level-α Monte Carlo test per question, with the
multiplicity of features handled by calibrating one aggregate statistic
against Gaussian surrogates.

Two questions, two nulls (DESIGN.md):

- **raw** — "is it Gaussian?": H0 = the rows are i.i.d. N(μ, Σ).
- **normalised** — "does it look like normalised Gaussian data?": H0 = the
  rows are x/‖x‖ with x i.i.d. N(μ, Σ) (uniform on the sphere when μ = 0 and
  Σ ∝ I). Normalised coordinates are Beta-like at small d and never jointly
  Gaussian, so they are judged against this null, never against the plain
  Gaussian.

The statistic (:func:`centred_statistics`, one function of the data and all
surrogates together) is the truncated product [1]_ −log Π_{p ≤ 0.05} p of the
D'Agostino–Pearson K² of every non-constant coordinate and every random
projection, after each feature's skewness and kurtosis z-scores are centred on
their mean over the data and the surrogates. It reacts to a few strongly
non-Gaussian features and to a small departure shared by many;
the features are correlated and the p-values only approximate at small n (and
far from uniform for normalised rows at small d), which is why its null is not
taken from a formula but simulated: R surrogates, each n rows of
N(μ̂, Σ̂) (the sample's mean and covariance) prepared as the data were. The
p-value is the Monte Carlo rank (1 + #{T*_b ≥ T}) / (R + 1) [2]_, which gives a
test of exact level α when (R + 1)·α is an integer and the surrogates are
exchangeable with the data; plugging in μ̂, Σ̂ makes it a parametric bootstrap,
whose size tests/test_headline_size.py measures by simulation.

The surrogates' seed is derived from the data (and the user's seed), so a
report is reproducible bit for bit, yet the null draws differ between data
sets: with one fixed seed for every data set the level would hold only on
average over seeds, not for the one seed a user runs.

References
----------
.. [1] Zaykin, D. V., Zhivotovsky, L. A., Westfall, P. H. & Weir, B. S. (2002).
       Truncated product method for combining P-values. Genet. Epidemiol. 22,
       170-185.
.. [2] Davison, A. C. & Hinkley, D. V. (1997). *Bootstrap Methods and their
       Application*, Cambridge, §4.2 (Monte Carlo tests; Barnard 1963).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from gaussaudit.stats._blocks import parallel_map
from gaussaudit.stats.normality import _dp_result, is_constant

QUESTIONS = ("raw", "normalised")
NULLS = {
    "raw": "rows i.i.d. N(mean, covariance) with the sample's mean and covariance",
    "normalised": "rows x/‖x‖ with x i.i.d. N(mean, covariance), the sample's raw mean and covariance",
}
STATISTIC = ("truncated product (tau 0.05) of the D'Agostino-Pearson K^2 of the coordinates and random "
             "projections, each feature's skewness and kurtosis z-scores centred on their mean over the data "
             "and the surrogates")
_ROWS_PER_BLOCK = 32


def check_replicates(replicates: int, alpha: float) -> str | None:
    """Why ``replicates`` surrogates cannot give a level-``alpha`` Monte Carlo
    test with a 90 % null band, or None when they can.

    The test rejects when at most (R + 1)·α − 1 surrogates reach the statistic,
    which has probability exactly α only when (R + 1)·α is a whole number; the
    band from the j-th smallest to the j-th largest surrogate covers a new
    Gaussian sample with probability exactly 90 % when j = (R + 1)/20 is one.

    Examples
    --------
    >>> check_replicates(19, 0.05) is None, check_replicates(39, 0.05) is None
    (True, True)
    >>> check_replicates(50, 0.05)
    '(R + 1) must be a multiple of 20 (R = 19, 39, 59, 99, 199, ...) for the 5% level and the 90% null band; got R = 50'
    """
    step = replicate_step(alpha)
    if replicates < 1 or (replicates + 1) % step:
        examples = ", ".join(str(k * step - 1) for k in (1, 2, 3, 5, 10))
        return (f"(R + 1) must be a multiple of {step} (R = {examples}, ...) for the {100 * alpha:g}% level "
                f"and the 90% null band; got R = {replicates}")
    return None


def replicate_step(alpha: float) -> int:
    """Smallest R + 1 that is a multiple of 20 (the 90 % band) with (R + 1)·α whole.

    Examples
    --------
    >>> replicate_step(0.05), replicate_step(0.01), replicate_step(0.1)
    (20, 100, 20)
    """
    return math.lcm(20, _level_denominator(alpha))


def exact_level(replicates: int, alpha: float) -> bool:
    """Whether R Monte Carlo replicates give a test of level exactly ``alpha``:
    (R + 1)·α a whole number.

    Examples
    --------
    >>> exact_level(19, 0.05), exact_level(49, 0.05), exact_level(99, 0.01)
    (True, False, True)
    """
    return (replicates + 1) % _level_denominator(alpha) == 0


def _level_denominator(alpha: float) -> int:
    return Fraction(alpha).limit_denominator(10_000).denominator


def row_moments(x: np.ndarray, scale: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Mean and central moments m2, m3, m4 of each row of ``x`` (d × n), rows
    optionally multiplied column-wise by ``scale`` first.

    float32 arithmetic in row blocks, sums in float64, and the float32 centring
    error corrected exactly: these are the surrogates' statistics, so they
    must be cheap, and the data are put through the very same function.
    """
    d, n = x.shape
    out = np.empty((4, d))
    s32 = None if scale is None else scale.astype(np.float32)
    for start in range(0, d, _ROWS_PER_BLOCK):
        block = x[start : start + _ROWS_PER_BLOCK]
        if s32 is not None:
            block = block * s32
        elif block.dtype != np.float32:
            block = block.astype(np.float32)
        mean = block.mean(axis=1, dtype=np.float64)
        c = block - mean.astype(np.float32)[:, None]
        # float32 sums along rows are pairwise (relative error ~1e-6)
        r = c.sum(axis=1, dtype=np.float64) / n  # what float32 centring left over
        c2 = c * c
        s2 = c2.sum(axis=1) / n
        c *= c2
        s3 = c.sum(axis=1) / n
        c2 *= c2
        s4 = c2.sum(axis=1) / n
        s2, s3, s4 = (s.astype(np.float64) for s in (s2, s3, s4))
        # moments about the true mean from those about the float32 one
        m2 = s2 - r * r
        m3 = s3 - 3 * r * s2 + 2 * r**3
        m4 = s4 - 4 * r * s3 + 6 * r * r * s2 - 3 * r**4
        out[:, start : start + len(block)] = mean + r, np.maximum(m2, 0.0), m3, m4
    return tuple(out)


def dp_statistics(x: np.ndarray, scale: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """D'Agostino skewness and kurtosis z-scores (2 × d), DP p-values, skewness and excess kurtosis of each row
    (NaN where the row is constant), from :func:`row_moments`."""
    mean, m2, m3, m4 = row_moments(x, scale)
    res = _dp_result(m2, m3, m4, is_constant(mean, m2), x.shape[1])
    return np.stack([res.z_skewness, res.z_kurtosis]), res.pvalue, res.skewness, res.excess_kurtosis


def truncated_product(k2, tau: float = 0.05) -> float:
    """Zaykin et al.'s truncated product statistic −log Π_{p ≤ τ} p over the
    features' D'Agostino-Pearson p-values p = exp(−K²/2), written in K² so that
    no p-value underflows: Σ_{K² ≥ −2 log τ} K²/2. NaN entries are left out.

    It grows with the number of features that fail at level τ and with how
    far they fail: a few strongly non-Gaussian features and a small departure
    shared by many both raise it, and, unlike Higher Criticism, its null has no
    heavy tail when the features' p-values are not uniform (normalised
    coordinates at small d).

    Examples
    --------
    >>> truncated_product([0.5, 1.0, 10.0, 20.0])   # p = e^-5, e^-10 pass τ = 0.05
    15.0
    >>> truncated_product([0.5, 1.0])
    0.0
    """
    k2 = np.asarray(k2, dtype=np.float64)
    k2 = k2[np.isfinite(k2)]
    return float(0.5 * k2[k2 >= -2.0 * np.log(tau)].sum())


@dataclass(frozen=True)
class ViewStatistics:
    """What one prepared sample (the data or a surrogate) yields for one question.

    ``z`` holds the D'Agostino skewness and kurtosis z-scores of every
    coordinate and projection (2 × m); ``statistic`` is filled in by
    :func:`centred_statistics` once the data and every surrogate are in.
    """

    z: np.ndarray
    dp_mean_p: float
    dp_pass_fraction: float
    skewness_median_abs: float
    excess_kurtosis_median_abs: float


def _view(coord: tuple[np.ndarray, ...], z_proj: np.ndarray | None, alpha: float) -> ViewStatistics:
    z, p_coord, skew, kurt = coord
    tested = np.isfinite(p_coord)
    pc, skew, kurt = p_coord[tested], skew[tested], kurt[tested]
    pooled = z if z_proj is None else np.concatenate([z, z_proj], axis=1)
    return ViewStatistics(
        z=pooled,
        dp_mean_p=float(np.mean(pc)) if pc.size else float("nan"),
        dp_pass_fraction=float(np.mean(pc > alpha)) if pc.size else float("nan"),
        skewness_median_abs=float(np.median(np.abs(skew))) if pc.size else float("nan"),
        excess_kurtosis_median_abs=float(np.median(np.abs(kurt))) if pc.size else float("nan"),
    )


def view_statistics(raw: np.ndarray, directions: np.ndarray | None, alpha: float = 0.05) -> tuple[dict[str, ViewStatistics], float]:
    """Both questions' statistics of one raw sample ``raw`` (d × n, feature-major),
    and the CV of its row norms.

    Constant coordinates (NaN p-values) are left out; ``directions`` (d × k) are the random projections, tested on the
    raw rows for the raw question and on the normalised rows for the other
    (the projection of x/‖x‖ is the projection of x divided by ‖x‖).
    """
    x = raw if raw.dtype == np.float32 else raw.astype(np.float32)
    norms = np.sqrt(np.einsum("ij,ij->j", x, x, dtype=np.float64))
    inv = 1.0 / np.where(norms > 0, norms, 1.0)
    projected = None if directions is None else directions.astype(np.float32).T @ x
    out = {}
    for question, scale in (("raw", None), ("normalised", inv)):
        z_proj = None if projected is None else dp_statistics(projected, scale)[0]
        out[question] = _view(dp_statistics(x, scale), z_proj, alpha)
    cv = float(norms.std() / norms.mean()) if norms.mean() > 0 else float("nan")
    return out, cv


@dataclass(frozen=True)
class GaussianNull:
    """N(mean, factor·factorᵀ) in float32: the surrogates' law, fitted to a sample."""

    mean: np.ndarray
    factor: np.ndarray
    n: int

    @classmethod
    def fit(cls, basis, n: int) -> "GaussianNull":
        """From a :class:`~gaussaudit.prep.whiten.CovarianceBasis` of the raw sample.

        The sample covariance S spreads the spectrum (Marchenko-Pastur): its
        tr S² overstates tr Σ², so surrogates drawn from S would have too
        small a participation ratio — too wide a norm shell, and normalised
        coordinates further from Gaussian than the data's law gives (at
        n = 10,000, d = 768 the surrogates' norm CV came out 4 % high). So S
        is shrunk toward its mean eigenvalue on the non-constant features,
        (1 − ρ)S + ρ·λ̄·P, with ρ chosen to keep tr S and to match the unbiased
        Gaussian estimate of tr Σ² (Wishart moments:
        E tr S² = (1 + 1/m) tr Σ² + (tr Σ)²/m, E (tr S)² = (tr Σ)² + 2 tr Σ²/m,
        m = n − 1). Constant features stay constant.
        """
        lam = np.clip(basis.eigenvalues, 0.0, None)
        vectors = basis.eigenvectors
        variances = (vectors**2) @ lam
        live = variances > (1e-7 * np.abs(basis.mean)) ** 2 + 1e-300
        live &= variances > 1e-12 * max(float(variances.max()), 1e-300)
        d_live = max(int(live.sum()), 1)
        m = max(basis.n - 1, 1)
        t1, t2 = float(lam.sum()), float(np.sum(lam**2))
        iso = t1 * t1 / d_live
        target = (t2 - t1 * t1 / m) / (1 + 1 / m - 2 / m**2) if m > 2 else t2
        target = min(max(target, iso), t2)
        rho = 1.0 - np.sqrt((target - iso) / (t2 - iso)) if t2 > iso * (1 + 1e-12) else 1.0
        shrunk = (1 - rho) * lam + rho * t1 / d_live
        factor = vectors * np.sqrt(shrunk)
        factor[~live] = 0.0
        keep = shrunk > 0
        return cls(mean=basis.mean.astype(np.float32),
                   factor=np.ascontiguousarray(factor[:, keep], dtype=np.float32), n=n)

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """One surrogate sample, feature-major (d × n) float32."""
        z = rng.standard_normal((self.factor.shape[1], self.n), dtype=np.float32)
        x = self.factor @ z
        x += self.mean[:, None]
        return x


def centred_statistics(views: list[ViewStatistics], tau: float = 0.05) -> np.ndarray:
    """The headline statistic of each of the R + 1 samples (the data first).

    Each feature's skewness and kurtosis z-scores are centred on their mean
    over all R + 1 samples, which estimates what the null gives: 0 for raw
    Gaussian rows, but for normalised rows at small d the coordinates'
    kurtosis sits well below a Gaussian's, and data can be off in either
    direction (normalised i.i.d. Laplace rows look *more* Gaussian than
    normalised Gaussian ones). The statistic is then the truncated product
    (:func:`truncated_product`) of K² = Δz_s² + Δz_k². Centring on all R + 1
    samples treats them alike, so the Monte Carlo test stays exact.
    """
    z = np.stack([v.z for v in views])  # (R + 1, 2, m)
    finite = np.isfinite(z)
    # a feature constant in every sample has no centre; its K² stays NaN and is left out
    count = finite.sum(axis=0)
    centre = np.where(finite, z, 0.0).sum(axis=0) / np.maximum(count, 1)
    k2 = np.sum((z - centre) ** 2, axis=1)
    # The truncated product is 0 whenever no feature fails at τ, which at small
    # d happens in a good share of samples; ties with the data count against it
    # in the Monte Carlo p-value, so the test fell below its level. The mean K²
    # breaks them: a second key, scaled under 1e-6, far below any difference in
    # the truncated product (each failing feature adds at least −log τ ≈ 3).
    mean_k2 = np.array([np.nanmean(row) if np.isfinite(row).any() else 0.0 for row in k2])
    return np.array([truncated_product(row, tau) for row in k2]) + 1e-6 * mean_k2 / (1.0 + mean_k2)


def data_seed(seed: int, *arrays: np.ndarray) -> np.random.SeedSequence:
    """A seed that depends on the user's ``seed`` and on the data (through
    ``arrays``, e.g. the sample's mean and covariance spectrum)."""
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return np.random.SeedSequence([int(seed), 4, int.from_bytes(h.digest(), "little")])


@dataclass(frozen=True)
class HeadlineTest:
    """One question's level-α Monte Carlo test.

    ``p_value`` = (1 + #{surrogate statistic ≥ observed}) / (R + 1); the data
    are judged Gaussian (for this question) when ``p_value > alpha``.
    """

    question: str
    gaussian: bool
    alpha: float
    p_value: float
    statistic: float
    null: str
    replicates: int
    n: int
    null_statistics: np.ndarray

    @property
    def p_floor(self) -> float:
        """Smallest p-value R surrogates can give: 1/(R + 1)."""
        return 1.0 / (self.replicates + 1)


def monte_carlo_p(observed: float, null: np.ndarray) -> float:
    """(1 + #{null ≥ observed}) / (R + 1); a NaN observation gives 1.

    Examples
    --------
    >>> monte_carlo_p(19.0, np.arange(19.0))   # above every surrogate: the floor 1/(R + 1)
    0.05
    >>> monte_carlo_p(5.0, np.arange(19.0))    # 14 of 19 surrogates reach it
    0.75
    >>> monte_carlo_p(0.0, np.arange(19.0))
    1.0
    """
    null = np.asarray(null, dtype=np.float64)
    if not np.isfinite(observed) and observed != np.inf:
        return 1.0
    return float((1 + np.count_nonzero(~(null < observed))) / (null.size + 1))


def surrogate_statistics(null_model: GaussianNull, directions: np.ndarray | None, replicates: int, seed: np.random.SeedSequence, *, alpha: float = 0.05,
                         threads: int | None = None) -> list[tuple[dict[str, ViewStatistics], float]]:
    """:func:`view_statistics` of ``replicates`` surrogates drawn from
    ``null_model``, each on its own seeded stream (results do not depend on
    ``threads``)."""
    streams = seed.spawn(replicates)

    def one(stream):
        # SFC64: a third faster than PCG64 at drawing normals, the surrogates' main cost
        rng = np.random.Generator(np.random.SFC64(stream))
        return view_statistics(null_model.draw(rng), directions, alpha)

    return parallel_map(one, streams, threads)


def fit_projected_normal(u: np.ndarray, *, iterations: int = 100, tol: float = 1e-7):
    """Mean and covariance (μ, Σ) of a Gaussian whose normalised draws x/‖x‖
    have the law of the unit rows ``u`` (d × n, feature-major): the maximum
    likelihood fit of the projected normal, by EM with each row's lost norm as
    the missing datum, returned as a :class:`~gaussaudit.prep.whiten.CovarianceBasis`
    (scaled so that tr Σ + ‖μ‖² = 1; the scale is not identified).

    This is the normalised question's null fit when the rows arrive already
    normalised: the Gaussian fitted to unit rows is not one whose normalised
    draws look like them (its normalisation changes the shape of the spread and
    shrinks the mean), which made Gaussian directions fail the test 93-100 % of
    the time at d = 8.

    E-step: along the ray of u, x = r·u has density ∝ r^(d−1) exp(−a r²/2 + b r),
    a = uᵀΣ⁻¹u, b = uᵀΣ⁻¹μ; E[r | u] and E[r² | u] by quadrature on 81 points
    within ±10 standard deviations of the mode. M-step: μ = mean E[x | u],
    Σ = mean E[xxᵀ | u] − μμᵀ (Presnell, Morrison & Littell 1998, for d = 2).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((4, 20000)) * np.array([[3.0], [1.0], [1.0], [0.5]]) + np.array([[1.0], [0], [0], [0]])
    >>> fit = fit_projected_normal(x / np.linalg.norm(x, axis=0))
    >>> ratio = (fit.eigenvectors * fit.eigenvalues) @ fit.eigenvectors.T
    >>> bool(abs(ratio[0, 0] / ratio[3, 3] - 36) < 4), bool(abs(fit.mean[0] / np.sqrt(ratio[3, 3]) - 2) < 0.3)
    (True, True)
    """
    from gaussaudit.prep.whiten import CovarianceBasis, covariance_basis

    u = np.asarray(u, dtype=np.float64)
    d, n = u.shape
    start = covariance_basis(u)
    mu = start.mean.copy()
    cov = (start.eigenvectors * start.eigenvalues) @ start.eigenvectors.T
    grid = np.linspace(-10.0, 10.0, 81)
    for _ in range(iterations):
        values, vectors = np.linalg.eigh(cov)
        keep = values > values.max() * max(n, d) * np.finfo(np.float64).eps
        w = vectors[:, keep] / np.sqrt(values[keep])  # Σ^(-1/2) on the kept span
        su, sm = w.T @ u, w.T @ mu
        a = np.einsum("ij,ij->j", su, su)
        b = sm @ su
        mode = (b + np.sqrt(b * b + 4 * a * (d - 1))) / (2 * a)
        spread = 1.0 / np.sqrt(a + (d - 1) / mode**2)
        r = np.maximum(mode[:, None] + spread[:, None] * grid, 1e-300)
        log_f = (d - 1) * np.log(r) - 0.5 * a[:, None] * r * r + b[:, None] * r
        weight = np.exp(log_f - log_f.max(axis=1, keepdims=True))
        weight /= weight.sum(axis=1, keepdims=True)
        r1, r2 = (weight * r).sum(axis=1), (weight * r * r).sum(axis=1)
        new_mu = u @ r1 / n
        new_cov = (u * r2) @ u.T / n - np.outer(new_mu, new_mu)
        scale = np.trace(new_cov) + new_mu @ new_mu
        new_mu, new_cov = new_mu / np.sqrt(scale), new_cov / scale
        change = np.abs(new_cov - cov).max() + np.abs(new_mu - mu).max()
        mu, cov = new_mu, new_cov
        if change < tol:
            break
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values = np.clip(values[order], 0.0, None)
    rank = int(np.count_nonzero(values > values[0] * max(n, d) * np.finfo(np.float64).eps))
    return CovarianceBasis(mean=mu, eigenvalues=values, eigenvectors=vectors[:, order], rank=rank, n=n)
