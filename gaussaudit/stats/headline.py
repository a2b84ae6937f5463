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
their mean over the data and the surrogates (for the normalised question at
small d, on what each sample's own refitted null expects: :func:`refit_centre`).
It reacts to a few strongly non-Gaussian features and to a small departure
shared by many; the features are correlated and the p-values only approximate
at small n (and far from uniform for normalised rows at small d), which is why
its null is not taken from a formula but simulated: R surrogates, each n rows of
N(μ̂, Σ̂) (the sample's mean and covariance) prepared as the data were. The
p-value is the Monte Carlo rank (1 + #{T*_b ≥ T}) / (R + 1) [2]_, which gives a
test of exact level α when (R + 1)·α is an integer and the surrogates are
exchangeable with the data; plugging in μ̂, Σ̂ makes it a parametric bootstrap,
whose size tests/test_headline_size.py measures by simulation.

The surrogates' seed is derived from the data (and the user's seed), so a
report is reproducible (across machines too: see :func:`data_seed`), yet the
null draws differ between data sets: with one fixed seed for every data set the
level would hold only on average over seeds, not for the one seed a user runs.

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
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import cached_property

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
             "and the surrogates (for the normalised question at d <= 256 with 2+ rows a dimension: on what "
             "each sample's own refitted null expects)")
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


def row_moments(x: np.ndarray, scale: np.ndarray | None = None, rows_per_block: int = _ROWS_PER_BLOCK) -> tuple[np.ndarray, ...]:
    """Mean and central moments m2, m3, m4 of each row of ``x`` (d × n), rows
    optionally multiplied column-wise by ``scale`` first.

    float32 arithmetic in row blocks, sums in float64, and the float32 centring
    error corrected exactly: these are the surrogates' statistics, so they
    must be cheap, and the data are put through the very same function.
    Each row's sums are its own, whatever ``rows_per_block`` (memory only).
    """
    d, n = x.shape
    out = np.empty((4, d))
    s32 = None if scale is None else scale.astype(np.float32)
    for start in range(0, d, rows_per_block):
        block = x[start : start + rows_per_block]
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
    return _dp_from_moments(row_moments(x, scale), x.shape[1])


def _dp_from_moments(moments: tuple[np.ndarray, ...], n: int) -> tuple[np.ndarray, ...]:
    mean, m2, m3, m4 = moments
    res = _dp_result(m2, m3, m4, is_constant(mean, m2), n)
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


def views_and_moments(raw: np.ndarray, directions: np.ndarray | None, alpha: float = 0.05,
                      questions: tuple[str, ...] = ("raw", "normalised")):
    """Both questions' statistics of one raw sample ``raw`` (d × n, feature-major),
    the CV of its row norms, and the raw rows' :func:`row_moments` (None when
    the raw question is not asked).

    Constant coordinates (NaN p-values) are left out; ``directions`` (d × k) are the random projections, tested on the
    raw rows for the raw question and on the normalised rows for the other
    (the projection of x/‖x‖ is the projection of x divided by ‖x‖).
    """
    x = raw if raw.dtype == np.float32 else raw.astype(np.float32)
    norms = np.sqrt(np.einsum("ij,ij->j", x, x, dtype=np.float64))
    inv = 1.0 / np.where(norms > 0, norms, 1.0)
    projected = None if directions is None else directions.astype(np.float32).T @ x
    out, moments = {}, None
    for question, scale in (("raw", None), ("normalised", inv)):
        if question not in questions:
            continue
        z_proj = None if projected is None else dp_statistics(projected, scale)[0]
        coord_moments = row_moments(x, scale)
        if scale is None:
            moments = coord_moments
        out[question] = _view(_dp_from_moments(coord_moments, x.shape[1]), z_proj, alpha)
    cv = float(norms.std() / norms.mean()) if norms.mean() > 0 else float("nan")
    return out, cv, moments


def shell_cv(mean_sq: float, trace: float, trace_sq: float, mean_spread: float) -> float:
    """CV of ‖x‖ for x ~ N(μ, Σ), to first order, from ‖μ‖², tr Σ, tr Σ² and
    μᵀΣμ: ½·√(4μᵀΣμ + 2 tr Σ²)/(‖μ‖² + tr Σ) (the delta method on ‖x‖²,
    whose mean is ‖μ‖² + tr Σ and variance 4μᵀΣμ + 2 tr Σ²)."""
    total = mean_sq + trace
    return 0.5 * float(np.sqrt(max(4 * mean_spread + 2 * trace_sq, 0.0))) / total if total > 0 else float("nan")


def _mean_terms(x: np.ndarray, moments: tuple[np.ndarray, ...]) -> tuple[float, float, float]:
    """‖μ̂‖², tr Ŝ and μ̂ᵀŜμ̂ of a feature-major sample from its :func:`row_moments`, in O(n·d)."""
    n = x.shape[1]
    mean, m2 = moments[0], moments[1]
    along = mean.astype(x.dtype) @ x
    return float(mean @ mean), float(m2.sum()) * n / max(n - 1, 1), float(along.var(ddof=1, dtype=np.float64))


def sample_shell_cv(x: np.ndarray, moments: tuple[np.ndarray, ...]) -> float:
    """:func:`shell_cv` at the sample's own mean and covariance (``x`` d × n,
    feature-major, with its :func:`row_moments`): the norm CV a Gaussian fitted
    to these very rows predicts.

    The norm-CV band compares the data with surrogates through the pivot
    CV − sample_shell_cv: the data's CV and its fitted covariance come from the
    same rows and move together (a sample whose top components came out large
    has both a wider shell and a larger tr Ŝ²), so the CV itself, compared
    with surrogates' CVs, fell inside their range 95 % of the time, not 90 %.
    """
    mean_sq, trace, spread = _mean_terms(x, moments)
    xc = x - moments[0].astype(x.dtype)[:, None]
    gram = (xc @ xc.T) if x.shape[0] <= x.shape[1] else (xc.T @ xc)  # same nonzero spectrum
    trace_sq = float(np.sum(np.square(gram, dtype=np.float64))) / max(x.shape[1] - 1, 1) ** 2
    return shell_cv(mean_sq, trace, trace_sq, spread)


@dataclass(frozen=True)
class GaussianNull:
    """N(mean, factor·factorᵀ) in float32: the surrogates' law, fitted to a sample."""

    mean: np.ndarray
    factor: np.ndarray
    n: int
    #: Fitted to fewer rows than dimensions (a row-space basis): the shrinkage's
    #: isotropic part, this standard deviation on every ``live`` feature, is drawn
    #: apart, as the factor spans only the rows' directions.
    iso: float = 0.0
    live: np.ndarray | None = None

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
        if vectors.shape[1] < vectors.shape[0]:
            # (1 − ρ)S + ρλ̄I with S known on its nonzero span only: the first term
            # through the factor, the second drawn on every live feature.
            factor = vectors * np.sqrt((1 - rho) * lam)
            factor[~live] = 0.0
            return cls(mean=basis.mean.astype(np.float32), factor=np.ascontiguousarray(factor, dtype=np.float32),
                       n=n, iso=float(np.sqrt(rho * t1 / d_live)), live=live)
        shrunk = (1 - rho) * lam + rho * t1 / d_live
        factor = vectors * np.sqrt(shrunk)
        factor[~live] = 0.0
        keep = shrunk > 0
        return cls(mean=basis.mean.astype(np.float32),
                   factor=np.ascontiguousarray(factor[:, keep], dtype=np.float32), n=n)

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """One surrogate sample, feature-major (d × n) float32."""
        return self.draw_with_normals(rng)[0]

    def draw_with_normals(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One surrogate sample x = F z + μ and the normals z it was made from."""
        z = rng.standard_normal((self.factor.shape[1], self.n), dtype=np.float32)
        x = self.factor @ z
        if self.iso:
            x += self.iso * self.live[:, None] * rng.standard_normal(x.shape, dtype=np.float32)
        x += self.mean[:, None]
        return x, z

    def shell_cv(self, x: np.ndarray, z: np.ndarray, moments: tuple[np.ndarray, ...]) -> float:
        """:func:`sample_shell_cv` of a surrogate x = F z + μ, from its
        :func:`row_moments` and z, in O(n·d + k²) instead of the O(n·d·k) of
        the sample's own covariance.

        With Ŝ = F S_z Fᵀ, tr Ŝ² = tr(G S_z G S_z), G = FᵀF. Splitting S_z into
        its diagonal D and the rest E, tr(G D G D) is exact and the rest is
        replaced by its expectation, E tr(G E G E) = Σ_{a≠b}(G_ab² + G_aa G_bb)/(n − 1)
        (the cross term has mean 0); what that leaves out has a relative size of
        about √2/n, far below the CV's own sampling noise (about 1/√n).
        ‖μ̂‖², tr Ŝ and μ̂ᵀŜμ̂ are exact.
        """
        if self.iso:  # z is not all of x; with fewer rows than dimensions the direct form is cheap
            return sample_shell_cv(x, moments)
        n = x.shape[1]
        mean_sq, trace, spread = _mean_terms(x, moments)
        sums = z.sum(axis=1, dtype=np.float64)
        squares = np.einsum("ij,ij->i", z, z).astype(np.float64)
        diag = (squares - sums * sums / n) / max(n - 1, 1)
        g2, off = self.gram_terms
        trace_sq = float(diag @ g2 @ diag) + off / max(n - 1, 1)
        return shell_cv(mean_sq, trace, trace_sq, spread)

    @cached_property
    def gram_terms(self) -> tuple[np.ndarray, float]:
        """(G∘G, Σ_{a≠b}(G_ab² + G_aa G_bb)) of G = FᵀF, computed once."""
        g = self.factor.T.astype(np.float64) @ self.factor.astype(np.float64)
        g2 = g * g
        diag = np.diag(g)
        return g2, float(g2.sum() - np.sum(diag**2) + diag.sum() ** 2 - np.sum(diag**2))


def centred_statistics(views: list[ViewStatistics], tau: float = 0.05,
                       centres: list[np.ndarray] | None = None) -> np.ndarray:
    """The headline statistic of each of the R + 1 samples (the data first).

    Each feature's skewness and kurtosis z-scores are centred on their mean
    over all R + 1 samples, which estimates what the null gives: 0 for raw
    Gaussian rows, but for normalised rows at small d the coordinates'
    kurtosis sits well below a Gaussian's, and data can be off in either
    direction (normalised i.i.d. Laplace rows look *more* Gaussian than
    normalised Gaussian ones). The statistic is then the truncated product
    (:func:`truncated_product`) of K² = Δz_s² + Δz_k². Centring on all R + 1
    samples treats them alike, so the Monte Carlo test stays exact.

    ``centres`` (one 2 × m array a sample, from :func:`refit_centre`) centres
    each sample on its own refitted null instead.
    """
    z = np.stack([v.z for v in views])  # (R + 1, 2, m)
    if centres is not None:
        centre = np.stack(centres)
    else:
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
    ``arrays``, e.g. the sample's mean and covariance spectrum).

    Each array is rounded to a millionth of its largest magnitude before it is
    hashed: its last bits depend on the BLAS/LAPACK build and the CPU's vector
    unit (summation order), and hashing them made the surrogates, and so the
    p-values, differ between machines on the same data (a size test passed on
    one machine and failed on another).

    Examples
    --------
    >>> a = np.array([1.0, 2.0, 3.0])
    >>> data_seed(0, a).entropy == data_seed(0, a * (1 + 1e-13)).entropy
    True
    """
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.asarray(a, dtype=np.float64).ravel()
        scale = float(np.max(np.abs(a), initial=0.0)) if np.isfinite(a).all() else 0.0
        quantised = np.round(a / (scale * 1e-6)) if scale > 0 else np.nan_to_num(a)
        h.update(np.ascontiguousarray(quantised, dtype=np.int64 if scale > 0 else np.float64).tobytes())
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


@dataclass(frozen=True)
class Surrogate:
    """What one surrogate yields: both questions' statistics, its norm CV, the
    norm CV a Gaussian refitted to it predicts (:func:`sample_shell_cv`), and,
    when the normalised question's centres are refitted, the centre of its
    own refitted null (:func:`refit_centre`)."""

    views: dict[str, ViewStatistics]
    norm_cv: float
    shell_cv: float
    centre: np.ndarray | None = None


#: When each sample's normalised z-scores are centred on its own refitted null
#: (:func:`refit_centre`): d ≤ REFIT_MAX_DIM and at least REFIT_ROWS_PER_DIM
#: rows a dimension; otherwise on the pooled mean. The bias the refit removes
#: shrinks as the normalised coordinates become Gaussian (slowly: with the
#: participation ratio, not d), its cost grows like d². Measured at α = 0.05
#: on the size grid's anisotropic Gaussians (benchmarks/bench_refit_centres.py,
#: 300-400 replicates, rate and mean p, which is 0.525 for an exact test),
#: pooled → refit with :func:`coupled_factor` and INNER_DRAWS = 2:
#: d = 256, n = 2,000: 2.7 % (0.584) → 3.0 % (0.525); n = 10,000 (200
#: replicates): 3.0 % (0.558) → 6.0 % (0.530); pre-normalised rows, d = 256,
#: n = 2,000 (114 replicates, the EM run to convergence): 1.8 % → 4.4 % (0.517).
#: Smaller d, with earlier refits: d = 8, n = 2,000: 1.3 % → 5.2 %; d = 16,
#: n = 200: 2.8 % → 4.8 %. Below 2 rows a dimension (not measured) the
#: centring stays pooled. Above d = 256 (the default scan's d = 768 among
#: them) it stays pooled for its cost: a refit per surrogate costs a d × d
#: covariance, its eigendecomposition and the draws. The audit's time, refit
#: over pooled (one thread, one run, interleaved; anisotropic rows, raw and
#: pre-normalised input): d = 256, n = 2,000: 2.3× (0.61 → 1.41 s) and 3.5×
#: (0.87 → 3.06 s); n = 10,000: 1.9× and 3.2×; d = 64, n = 10,000: 1.4× and 2.7×.
REFIT_MAX_DIM = 256
REFIT_ROWS_PER_DIM = 2
#: Draws behind each refitted centre. With :func:`coupled_factor`'s factors the
#: draws' Monte Carlo error cancels between samples, and 2 draws gave the size
#: that 8 did (anisotropic d = 16, n = 200, 400 replicates: 4.8 % both, mean
#: p 0.519 and 0.536). Through eigenvector factors it did not cancel: 8 draws
#: gave 3.3 % there, and 80 were needed for 4.5 %.
INNER_DRAWS = 2
#: EM steps of a surrogate's own projected-normal fit (pre-normalised input),
#: started from the fit the surrogate was drawn from: each step shrank the
#: distance to the converged fit about 7-fold, and after 2 the refitted centres
#: were within 0.4 % of their spread between surrogates of the converged fit's
#: (d = 256, n = 2,000), at under half its cost.
REFIT_EM_ITERATIONS = 2
#: float32 values of the draws :func:`refit_centre` puts through row_moments at once.
_REFIT_BLOCK_VALUES = 1 << 20


def refits_centres(d: int, n: int) -> bool:
    """Whether a sample of n rows in d dimensions gets refitted centres (see REFIT_MAX_DIM)."""
    return d <= REFIT_MAX_DIM and n >= REFIT_ROWS_PER_DIM * d


def common_normals(seed: np.random.SeedSequence, inner: int, d: int, n: int) -> np.ndarray:
    """The base normals (inner × d × n, float32) every sample's refitted null
    draws its centre from: common random numbers, so that samples' centres
    differ by their fits, not by the draws."""
    rng = np.random.Generator(np.random.SFC64(seed))
    return rng.standard_normal((inner, d, n), dtype=np.float32)


def coupled_factor(fit: GaussianNull) -> GaussianNull:
    """``fit`` with its factor replaced by the Cholesky factor of its covariance
    (lower triangular, d × d): the same law, drawn through a factor that moves
    continuously with the fit.

    Why: :func:`refit_centre` draws every sample's centre from the same common
    normals so that the centres' Monte Carlo errors cancel between samples. An
    eigenvector factor defeats that: where eigenvalues are close (a 1/k
    spectrum's tail at d = 256, n = 2,000: gaps far below the eigenvectors'
    sampling error) each sample's eigenvectors come out in their own random
    rotation, so close fits made unrelated draws, and the test was conservative
    (anisotropic d = 32, n = 200, 8 draws a centre: 6.8 % with eigenvector
    factors — high and noisy — 4.5 % with this one; benchmarks/bench_refit_centres.py).
    Constant features (zero rows of the factor) stay constant; an isotropic
    part drawn apart (``iso``) becomes part of the factor.

    Examples
    --------
    >>> import numpy as np
    >>> f = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]], dtype=np.float32)
    >>> g = coupled_factor(GaussianNull(mean=np.zeros(3, np.float32), factor=f, n=10))
    >>> g.factor.shape, bool(np.allclose(g.factor @ g.factor.T, f @ f.T, atol=1e-6))
    ((3, 3), True)
    """
    f = fit.factor.astype(np.float64)
    live = np.any(f != 0, axis=1) if not fit.iso else fit.live
    cov = f[live] @ f[live].T
    if fit.iso:  # the isotropic part drawn apart (fewer rows than dimensions) joins the covariance
        cov[np.diag_indices_from(cov)] += fit.iso**2
    # A fit from n ≥ 2d rows is positive definite; the jitter (far below float32's
    # resolution of the draws) only guards the factorisation against rounding.
    jitter = 1e-10 * np.trace(cov) / max(cov.shape[0], 1)
    lower = np.zeros((f.shape[0], f.shape[0]))
    lower[np.ix_(live, live)] = np.linalg.cholesky(cov + jitter * np.eye(cov.shape[0]))
    return replace(fit, factor=np.ascontiguousarray(lower, dtype=np.float32), iso=0.0, live=None)


def refit_centre(fit: GaussianNull, base: np.ndarray, directions: np.ndarray | None) -> np.ndarray:
    """The mean normalised-question z-scores (2 × features) of draws from
    ``fit`` made from the common ``base`` normals: what that sample's own
    fitted null expects.

    Why: the normalised coordinates' skewness and kurtosis depend on μ and Σ
    (at small d strongly: x_j/‖x‖ is Beta-like), and the data's own z-scores
    sit closer to the null fitted to the data than a surrogate's do, since the
    data and its fit come from the same rows. Centring every sample on the
    pooled mean — the data's fit for all — therefore judged each surrogate
    against its generator's parameters and the data against its own, and the
    test was conservative. Centring each sample (data and surrogates alike) on
    its own refitted null is the parametric bootstrap done in full. The draws go
    through :func:`coupled_factor`'s factor, so that close fits make close draws.
    """
    fit = coupled_factor(fit)
    k, d = fit.factor.shape[1], fit.factor.shape[0]
    inner, n = base.shape[0], base.shape[2]
    turned = None if directions is None else directions.astype(np.float32).T
    m = d + (0 if turned is None else turned.shape[0])
    # The draws' normalised coordinates and projections go through row_moments
    # together, a group of draws at a time (about 4 MB): the same float32
    # arithmetic row by row as one views_and_moments call a draw (the centres are
    # bit-identical), without the per-call overhead, which at small n, where
    # there are many draws, was most of an audit's time.
    group = max(1, min(inner, _REFIT_BLOCK_VALUES // (m * n)))
    z = []
    for first in range(0, inner, group):
        b = base[first : first + group, :k]
        rows = np.empty((b.shape[0], m, n), dtype=np.float32)
        np.matmul(fit.factor, b, out=rows[:, :d])
        rows[:, :d] += fit.mean[:, None]
        norms = np.sqrt(np.einsum("cij,cij->cj", rows[:, :d], rows[:, :d], dtype=np.float64))
        if turned is not None:
            np.matmul(turned, rows[:, :d], out=rows[:, d:])
        rows *= (1.0 / np.where(norms > 0, norms, 1.0)).astype(np.float32)[:, None, :]
        moments = row_moments(rows.reshape(-1, n), rows_per_block=max(_ROWS_PER_BLOCK, (1 << 16) // n))
        z.append(_dp_from_moments(moments, n)[0].reshape(2, b.shape[0], m))
    return np.concatenate(z, axis=1).mean(axis=1)


def surrogate_statistics(null_model: GaussianNull, directions: np.ndarray | None, replicates: int,
                         seed: np.random.SeedSequence, *, alpha: float = 0.05, threads: int | None = None,
                         refit=None, base: np.ndarray | None = None) -> list[Surrogate]:
    """:func:`views_and_moments` of ``replicates`` surrogates drawn from
    ``null_model``, each on its own seeded stream (results do not depend on
    ``threads``). With ``refit`` (surrogate → its fitted :class:`GaussianNull`)
    and the ``base`` normals, each surrogate also gets its :func:`refit_centre`."""
    streams = seed.spawn(replicates)
    null_model.gram_terms  # noqa: B018 -- computed once, before the threads need it

    def one(stream):
        # SFC64: a third faster than PCG64 at drawing normals, the surrogates' main cost
        rng = np.random.Generator(np.random.SFC64(stream))
        x, z = null_model.draw_with_normals(rng)
        views, cv, moments = views_and_moments(x, directions, alpha)
        shell = null_model.shell_cv(x, z, moments)
        centre = None if refit is None else refit_centre(refit(x), base, directions)
        return Surrogate(views, cv, shell, centre)

    return parallel_map(one, streams, threads)


def fit_projected_normal(u: np.ndarray, *, iterations: int = 100, tol: float = 1e-7, start=None):
    """Mean and covariance (μ, Σ) of a Gaussian whose normalised draws x/‖x‖
    have the law of the unit rows ``u`` (d × n, feature-major): the maximum
    likelihood fit of the projected normal, by EM with each row's lost norm as
    the missing datum, returned as a :class:`~gaussaudit.prep.whiten.CovarianceBasis`
    (scaled so that tr Σ + ‖μ‖² = 1; the scale is not identified). ``start``
    (a CovarianceBasis, e.g. the fit a surrogate was drawn from) starts the EM
    there instead of at the unit rows' own mean and covariance.

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
    if start is None and n < d:
        # Fewer rows than dimensions: μ and Σ stay in the span of the rows at every
        # step, so the EM runs in an orthonormal basis Q of that span (n × n
        # instead of d × d) and its result is mapped back; the density's r^(d−1)
        # keeps the ambient d.
        q, _ = np.linalg.qr(u)
        inner = _fit_projected_normal_in(q.T @ u, d, covariance_basis(q.T @ u), iterations, tol)
        return CovarianceBasis(mean=q @ inner.mean, eigenvalues=inner.eigenvalues,
                               eigenvectors=q @ inner.eigenvectors, rank=inner.rank, n=n)
    start = covariance_basis(u) if start is None else start
    return _fit_projected_normal_in(u, d, start, iterations, tol)


def _fit_projected_normal_in(u: np.ndarray, ambient: int, start, iterations: int, tol: float):
    """:func:`fit_projected_normal`'s EM on coordinates ``u`` (k × n) of rows of
    an ``ambient``-dimensional space, from the basis ``start``."""
    from gaussaudit.prep.whiten import CovarianceBasis

    n, d = u.shape[1], ambient
    mu = np.asarray(start.mean, dtype=np.float64).copy()
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
        # n × 81 arrays, in place: the E-step is most of a pre-normalised audit's time,
        # and these are the operations of (d − 1)·log r − a r²/2 + b r in their order
        r = spread[:, None] * grid
        r += mode[:, None]
        np.maximum(r, 1e-300, out=r)
        log_f = np.log(r)
        log_f *= d - 1
        term = 0.5 * a[:, None] * r
        term *= r
        log_f -= term
        np.multiply(b[:, None], r, out=term)
        log_f += term
        log_f -= log_f.max(axis=1, keepdims=True)
        weight = np.exp(log_f, out=log_f)
        weight /= weight.sum(axis=1, keepdims=True)
        weight *= r
        r1 = weight.sum(axis=1)
        weight *= r
        r2 = weight.sum(axis=1)
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
