"""Statistics of paired embeddings: two augmented views of one input, or a CLIP
image and its caption, as rows ``a[i]``, ``b[i]`` of two n × d arrays.

Every row is L2-normalised first (in float64), so these describe the unit
vectors u = a/‖a‖, v = b/‖b‖ that a contrastive loss sees:

- **alignment** E[u·v] over positive pairs and the **alignment bound** of
  "InfoNCE Induces Gaussian Distribution" (Prop. 1): for two views of one
  base sample, E[u·v] ≤ η² + (1 − η²)‖m‖² with m = E[u] and η² the squared
  HGR maximal correlation between a view and its base sample [1]_, [2]_, so the
  data imply η² ≥ (E[u·v] − ‖m‖²) / (1 − ‖m‖²) (:func:`eta2_lower_bound`);
- **uniformity**, in the paper's form Φ = E_u log E_v exp(α u·v) over
  negative pairs (α = 1/τ), and in Wang & Isola's Gaussian-potential form
  log E exp(−t‖u − u'‖²) over distinct pairs of one side [3]_; for data
  uniform on the sphere Φ has the exact value of
  :func:`uniform_sphere_uniformity`;
- the **modality gap** ‖mean(u) − mean(v)‖ between the two sides [4]_.

Why the bound holds: when the two views are conditionally independent given
the base sample x, Cov(u_k, v_k) = Var E[u_k | x] ≤ η² Var u_k for each
coordinate k (the HGR correlation bounds how much of any function of a view a
function of x explains), and summing over k gives E[u·v] − ‖m‖² ≤ η²(1 − ‖m‖²),
since Σ_k Var u_k = 1 − ‖m‖² for unit vectors.

References
----------
.. [1] Hirschfeld, H. O. (1935). A connection between correlation and
       contingency. Proc. Cambridge Philos. Soc. 31, 520-524; Gebelein, H.
       (1941); Rényi, A. (1959). On measures of dependence. Acta Math. Acad.
       Sci. Hungar. 10, 441-451 (the HGR maximal correlation).
.. [2] "InfoNCE Induces Gaussian Distribution", ICLR 2026, Prop. 1 (the
       alignment bound and the augmentation mildness η²).
.. [3] Wang, T. & Isola, P. (2020). Understanding contrastive representation
       learning through alignment and uniformity on the hypersphere. ICML 2020
       (L_uniform = log E exp(−t‖u − v‖²), t = 2).
.. [4] Liang, W., Zhang, Y., Kwon, Y., Yeung, S. & Zou, J. (2022). Mind the
       gap: understanding the modality gap in multi-modal contrastive
       representation learning. NeurIPS 35.
.. [5] Watson, G. S. (1983). *Statistics on Spheres*, Wiley (the density
       ∝ (1 − w²)^((d−3)/2) of the dot product of two independent uniform unit
       vectors, whose moment generating function is Γ(d/2)(2/α)^(d/2−1)
       I_(d/2−1)(α)); Mardia, K. V. & Jupp, P. E. (2000). *Directional
       Statistics*, Wiley, §9.3.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import numpy as np
from scipy import integrate, optimize, special

from gaussaudit.errors import GaussAuditError, option_name, option_set
from gaussaudit.stats._blocks import parallel_map
from gaussaudit.stats._rows import checked_rows

#: float64 values per block of the O(s²) uniformity sums (~4 MB a matrix), so memory
#: stays O(block · s) whatever the sample size s.
_TARGET_BLOCK_VALUES = 1 << 19

#: 1 − ‖m‖² at or below this is round-off: the rows all point one way to about 12 digits,
#: and (alignment − m²)/(1 − m²) would be a ratio of two rounding errors.
_SPREAD_ROUNDOFF = 1e-12


# eq=False: two of the fields are arrays, so the generated __eq__ (and the __hash__
# frozen would add) would fail on them.
@dataclass(frozen=True, eq=False)
class PairsResult:
    """Alignment, uniformity and modality-gap statistics of n positive pairs.

    All statistics are of the L2-normalised rows u_i (side a) and v_i (side b).

    ``alignment``, ``alignment_std``
        Mean and standard deviation (ddof 1) of the positive cosines u_i·v_i.
    ``mean_norm_sq_a``, ``mean_norm_sq_b``
        ‖mean(u)‖² and ‖mean(v)‖², the plug-in estimates of ‖E u‖², ‖E v‖².
    ``mean_norm_sq_a_debiased``, ``mean_norm_sq_b_debiased``
        (n‖m̂‖² − 1)/(n − 1), unbiased for ‖E u‖²: ‖m̂‖² = 1/n + (1/n²) Σ_{i≠j} u_i·u_j
        because ‖u_i‖ = 1, so the plug-in value is ‖E u‖² + (1 − ‖E u‖²)/n on
        average (1/n for uniform data, however large d) and the debiased one is the
        mean of u_i·u_j over distinct pairs. It can be slightly negative.
    ``eta2_lower``
        (alignment − m²)/(1 − m²), the lower bound on the augmentation mildness η²
        (:func:`eta2_lower_bound`), with m² the mean of the two debiased estimates
        (the bound's m is the mean of the views' common marginal; see
        :func:`pair_statistics`). NaN when 1 − m² <= 1e-12 (all rows one direction, up to round-off).
    ``uniformity``, ``uniformity_alpha``
        Φ = mean_i log mean_{j≠i} exp(α u_i·v_j) over the subsample: each u_i
        against the other side's rows except its own positive.
    ``uniformity_gaussian``, ``uniformity_t``
        log mean_{i≠j} exp(−t‖u_i − u_j‖²) over distinct pairs of side a [3]_.
    ``uniformity_reference``
        Φ's population value for rows uniform on S^(d−1) at this d and α
        (:func:`uniform_sphere_uniformity`). The sample Φ lies slightly below it on
        average (the log of a mean of finitely many terms, Jensen).
    ``modality_gap``
        ‖mean(u) − mean(v)‖ [4]_.
    ``positive_cosines``
        u_i·v_i, all n of them (for histograms).
    ``negative_cosines``
        u_i·v_π(i) for a seeded random derangement π (a single n-cycle): n cosines
        of non-matching pairs to set against ``positive_cosines``.
    ``samples``
        Rows in the seeded subsample the uniformity sums use, min(n, sample).
    """

    n: int
    dim: int
    alignment: float
    alignment_std: float
    mean_norm_sq_a: float
    mean_norm_sq_b: float
    mean_norm_sq_a_debiased: float
    mean_norm_sq_b_debiased: float
    eta2_lower: float
    uniformity: float
    uniformity_alpha: float
    uniformity_gaussian: float
    uniformity_t: float
    uniformity_reference: float
    modality_gap: float
    positive_cosines: np.ndarray
    negative_cosines: np.ndarray
    samples: int


#: Bins of the cosine histograms (:func:`cosine_histogram`): fixed, equal, on [−1, 1], so
#: two runs' histograms compare bin by bin whatever their data.
COSINE_BINS = 200


def cosine_edges(bins: int = COSINE_BINS) -> np.ndarray:
    """The ``bins + 1`` edges of :func:`cosine_histogram`: equal bins on [−1, 1]."""
    return np.linspace(-1.0, 1.0, bins + 1)


def cosine_histogram(cosines, bins: int = COSINE_BINS) -> np.ndarray:
    """Counts of ``cosines`` on :func:`cosine_edges` (as ``np.histogram`` with range (−1, 1):
    each bin half-open but the last, which holds 1). Values outside [−1, 1] are left out.

    Examples
    --------
    >>> cosine_histogram([-1.0, 0.0, 0.5, 1.0], bins=4).tolist()
    [1, 0, 1, 2]
    """
    counts, _ = np.histogram(np.asarray(cosines, dtype=np.float64), bins=cosine_edges(bins), range=(-1.0, 1.0))
    return counts.astype(np.int64)


def uniform_sphere_cosine_shares(dim: int, bins: int = COSINE_BINS) -> np.ndarray | None:
    """Share of :func:`cosine_edges`' bins that the cosine u·v of two independent uniform unit
    vectors of S^(dim−1) falls in: w = 2B − 1 with B ~ Beta((d−1)/2, (d−1)/2) [5]_, so each
    share is a difference of regularised incomplete beta functions (exact, no sampling).
    None for dim 1 (w = ±1, no density).

    Examples
    --------
    >>> shares = uniform_sphere_cosine_shares(3, bins=4)    # d = 3: w is uniform on [−1, 1]
    >>> np.round(shares, 12).tolist()
    [0.25, 0.25, 0.25, 0.25]
    """
    d = int(dim)
    if d < 2:
        return None
    a = (d - 1) / 2.0
    cdf = special.betainc(a, a, (cosine_edges(bins) + 1.0) / 2.0)
    return np.diff(cdf)


def eta2_lower_bound(alignment: float, mean_norm_sq: float) -> float:
    """The η² that Prop. 1 of [2]_ implies at least: (alignment − ‖m‖²) / (1 − ‖m‖²).

    From E[u·v] ≤ η² + (1 − η²)‖m‖² solved for η². NaN when 1 − ‖m‖² <= 0 (then
    every row is the same unit vector and the bound says nothing).

    Examples
    --------
    >>> eta2_lower_bound(0.5, 0.0), eta2_lower_bound(0.625, 0.25)
    (0.5, 0.5)
    >>> eta2_lower_bound(1.0, 1.0)
    nan
    """
    alignment, mean_norm_sq = float(alignment), float(mean_norm_sq)
    spread = 1.0 - mean_norm_sq
    if not spread > 0:  # also NaN
        return float("nan")
    return (alignment - mean_norm_sq) / spread


def uniform_sphere_uniformity(dim: int, alpha: float) -> float:
    """log E exp(α w), w = u·v for independent u, v uniform on S^(dim−1): the value of
    Φ = E_u log E_v exp(α u·v) for uniform data (E_v exp(α u·v) is the same for every u).

    w has density ∝ (1 − w²)^((d−3)/2) on [−1, 1] [5]_; with w = cos θ that is
    ∝ sin^(d−2) θ on [0, π], smooth for every d >= 2. w is symmetric, so
    E exp(αw) = E cosh(αw) = 1 + E[2 sinh²(αw/2)] and the answer is
    log(1 + exp(log E[2 sinh²(αw/2)])): the integrand is positive, so the result
    keeps its relative accuracy when it is tiny (α² ≪ d), and it is integrated as
    exp(log-integrand − its maximum), so nothing overflows when d·α is large.
    The normalising ∫ sin^(d−2) θ dθ = √π Γ((d−1)/2)/Γ(d/2) is exact. The value
    equals log[Γ(d/2) (2/α)^(d/2−1) I_(d/2−1)(α)]; quadrature is used instead
    because the Bessel form under- or overflows at large d or α. Relative
    accuracy is about 1e-10. d = 1 (w = ±1) gives log cosh α, d = 3 (w uniform
    on [−1, 1]) log(sinh α / α). Symmetric in α; 0 at α = 0.

    Examples
    --------
    >>> import numpy as np
    >>> bool(np.isclose(uniform_sphere_uniformity(3, 10.0), np.log(np.sinh(10.0) / 10.0), rtol=1e-10))
    True
    >>> round(uniform_sphere_uniformity(768, 10.0), 4)  # ≈ α²/(2d) for large d
    0.0651
    """
    try:
        d = operator.index(dim)
    except TypeError:
        raise GaussAuditError(f"the dimension must be a whole number; got {dim!r}.") from None
    if d < 1:
        raise GaussAuditError(f"the dimension must be at least 1; got {d}.")
    try:
        alpha = abs(float(alpha))
    except (TypeError, ValueError):
        raise GaussAuditError(f"{option_name('alpha')} must be a number; got {alpha!r}.") from None
    if not math.isfinite(alpha):
        raise GaussAuditError(f"{option_set('alpha', alpha)}: alpha must be finite.")
    if alpha == 0.0:
        return 0.0
    if d == 1:
        return alpha + math.log1p(math.exp(-2.0 * alpha)) - math.log(2.0)  # log cosh α without overflow
    k = d - 2

    def log_integrand(theta: float) -> float:
        # log[2 sinh²(x/2) sin^k θ], x = α cos θ; 2 sinh²(x/2) = e^x (1 − e^−x)² / 2, and
        # 1 − e^−x as −expm1(−x) keeps its digits when x is small (θ near π/2, large d)
        x = alpha * math.cos(theta)
        s = math.sin(theta)
        if x <= 0.0 or (k > 0 and s <= 0.0):
            return -math.inf
        return x + 2.0 * math.log(-math.expm1(-x)) - math.log(2.0) + (k * math.log(s) if k else 0.0)

    half = math.pi / 2  # the integrand is symmetric about θ = π/2 (w ↦ −w): integrate one half, double it
    peak = optimize.minimize_scalar(lambda th: -log_integrand(th), bounds=(0.0, half), method="bounded",
                                    options={"xatol": 1e-12}).x
    if log_integrand(0.0) >= log_integrand(peak):  # d = 2, or α ≫ d: the maximum is at θ = 0
        peak = 0.0
    top = log_integrand(peak)
    total = 0.0
    for lo, hi in ((0.0, peak), (peak, half)):  # split at the (possibly very narrow) peak
        if hi > lo:
            # full_output: report a tolerance not met in the result instead of warning; at
            # epsrel 1e-10 the grid checked (d up to 1e7, α up to 1e5) met it everywhere
            total += integrate.quad(lambda th: math.exp(log_integrand(th) - top), lo, hi,
                                    epsabs=0.0, epsrel=1e-10, limit=500, full_output=1)[0]
    # log of √π Γ((d−1)/2)/Γ(d/2); poch avoids the cancellation of two large gammaln at large d
    log_norm = 0.5 * math.log(math.pi) - math.log(special.poch((d - 1) / 2, 0.5))
    log_excess = top + math.log(2.0 * total) - log_norm  # log E[2 sinh²(αw/2)]
    return float(np.logaddexp(0.0, log_excess))


def _unit_rows(x, name: str) -> np.ndarray:
    """``x`` as float64 (n, d) rows scaled to unit length, or a GaussAuditError naming ``name``."""
    # a copy: the rows are scaled in place below
    x = checked_rows(x, name, needs="pair statistics need at least 2 pairs", what="pairs", copy=True)
    # divide by the largest |value| first so that ‖x‖ neither overflows (1e200) nor underflows (1e-200)
    scale = np.abs(x).max(axis=1)
    zero = np.flatnonzero(scale == 0)
    if zero.size:
        raise GaussAuditError(f"{name} has {zero.size} all-zero row(s), the first is row {zero[0]}; a zero vector has no "
                              f"direction to normalise to. Drop those pairs first.")
    x /= scale[:, None]
    x /= np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    return x


def _whole(value, field: str, least: int) -> int:
    try:
        value = operator.index(value)
    except TypeError:
        raise GaussAuditError(f"{option_name(field)} must be a whole number; got {value!r}.") from None
    if value < least:
        raise GaussAuditError(f"{option_set(field, value)}: {option_name(field)} must be at least {least}.")
    return value


def _finite(value, field: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise GaussAuditError(f"{option_name(field)} must be a number; got {value!r}.") from None
    if not math.isfinite(value):
        raise GaussAuditError(f"{option_set(field, value)}: {option_name(field)} must be finite.")
    return value


def _debiased(mean_norm_sq: float, n: int) -> float:
    # (n‖m̂‖² − 1)/(n − 1): the mean of u_i·u_j over the n(n − 1) distinct pairs, as ‖u_i‖ = 1
    return (n * mean_norm_sq - 1.0) / (n - 1)


def _row_logsumexp(z: np.ndarray) -> np.ndarray:
    """log Σ_j exp(z_ij) for each row, stably (as scipy.special.logsumexp: the row's largest
    term taken out, so nothing overflows), overwriting ``z``; a row needs one finite entry.
    In place and without scipy's checks it is about twice as fast, and these sums are the
    O(s²) part of :func:`pair_statistics`."""
    top = z.max(axis=1)
    z -= top[:, None]
    np.exp(z, out=z)  # the −inf entries give 0, the largest 1: the sum is >= 1
    return np.log(z.sum(axis=1)) + top


def _uniformity_sums(u: np.ndarray, v: np.ndarray, alpha: float, t: float, threads: int | None) -> tuple[float, float]:
    """Φ and the Gaussian-potential uniformity over all pairs of the s >= 2 rows of ``u``, ``v``.

    Blocks of rows of u against all of v (and of u), so memory is O(block · s); the
    result does not depend on the blocks or the threads.
    """
    s = len(u)
    block = max(1, _TARGET_BLOCK_VALUES // s)

    def run(start: int) -> tuple[np.ndarray, np.ndarray]:
        stop = min(start + block, s)
        rows = np.arange(stop - start)
        own = np.arange(start, stop)
        z = u[start:stop] @ v.T
        z *= alpha
        z[rows, own] = -np.inf  # u_i's own positive v_i is no negative
        phi_rows = _row_logsumexp(z)  # log Σ_{j≠i} exp(α u_i·v_j)
        # −t‖u_i − u_j‖² = 2t u_i·u_j − 2t for unit vectors; the constant is added once, at the end
        g = u[start:stop] @ u.T
        g *= 2.0 * t
        g[rows, own] = -np.inf  # distinct pairs only
        return phi_rows, _row_logsumexp(g)

    parts = parallel_map(run, range(0, s, block), threads)
    phi = float(np.concatenate([p[0] for p in parts]).mean() - math.log(s - 1))
    gaussian = float(special.logsumexp(np.concatenate([p[1] for p in parts])) - math.log(s * (s - 1.0)) - 2.0 * t)
    return phi, gaussian


def pair_statistics(a, b, *, alpha: float = 10.0, t: float = 2.0, sample: int = 5000, seed: int = 0,
                    threads: int | None = None) -> PairsResult:
    """Alignment, the alignment bound's η², uniformity and the modality gap of positive
    pairs (``a[i]``, ``b[i]``): two views of one input, or an image and its caption.

    Rows are L2-normalised here, in float64, whatever dtype or scale they arrive in.
    The O(s²·d) uniformity sums use every pair of a seeded subsample of
    s = min(n, ``sample``) rows (the same rows of a and b, so pairs stay pairs);
    everything else uses all n rows.

    ``eta2_lower`` uses m² = the mean of the two sides' debiased ‖E u‖² estimates. In
    Prop. 1 of [2]_ both views share one marginal, so m = E u = E v and either side
    estimates it; their average has less variance. The debiased estimates, not
    ‖m̂‖², because ‖m̂‖² overstates ‖E u‖² by (1 − ‖E u‖²)/n; and within-side pairs
    only, because the cross pairs u_i·v_i are the positives themselves, whose
    correlation would bias a pooled estimate upwards. For an image–text pair the
    two means differ (the modality gap) and the bound's assumption of one marginal
    does not hold; the number is then a summary, not a bound.

    Parameters
    ----------
    a, b : array_like, shape (n, d)
        Paired embeddings, row i of ``a`` with row i of ``b``; n >= 2. Passing the
        same array twice gives the within-set uniformity (and alignment 1).
    alpha : float
        α = 1/τ of Φ = E_u log E_v exp(α u·v) (τ = 0.1 by default).
    t : float
        t of log E exp(−t‖u − u'‖²), 2 as in [3]_.
    sample : int
        At most this many rows enter the O(sample²) uniformity sums (>= 2).
    seed : int
        Seeds the subsample and the derangement of ``negative_cosines``.
    threads : int, optional
        Threads for the blocked sums (default: every core); the result does not depend on it.

    Returns
    -------
    PairsResult

    Raises
    ------
    GaussAuditError
        When a and b are not 2-D, differ in rows or columns, have fewer than 2 rows,
        hold NaN or inf or an all-zero row, or an option is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((1000, 64))
    >>> res = pair_statistics(x, 0.6 * x + 0.8 * rng.standard_normal((1000, 64)))
    >>> res.n, res.dim, res.samples, round(res.alignment, 1), round(res.eta2_lower, 1)
    (1000, 64, 1000, 0.6, 0.6)
    >>> bool(abs(res.uniformity - res.uniformity_reference) < 0.1), round(res.modality_gap, 2)
    (True, 0.03)
    """
    u = _unit_rows(a, "a")
    v = _unit_rows(b, "b")
    if u.shape[0] != v.shape[0]:
        raise GaussAuditError(f"a has {u.shape[0]} rows but b has {v.shape[0]}; row i of a and row i of b must be a "
                              f"positive pair, so both need the same rows.")
    if u.shape[1] != v.shape[1]:
        raise GaussAuditError(f"a has {u.shape[1]} dimension(s) but b has {v.shape[1]}; pair statistics compare "
                              f"embeddings in one space, so both need the same dimension.")
    alpha = _finite(alpha, "alpha")
    t = _finite(t, "t")
    sample = _whole(sample, "sample", 2)
    seed = _whole(seed, "seed", 0)
    n, d = u.shape
    rng = np.random.default_rng(seed)

    # clip: round-off can put a cosine of unit vectors a few ulps outside [−1, 1]
    positive = np.clip(np.einsum("ij,ij->i", u, v), -1.0, 1.0)
    # a uniformly random n-cycle is a derangement for n >= 2: i ↦ the next element after i in a random order
    order = rng.permutation(n)
    partner = np.empty(n, dtype=np.intp)
    partner[order] = np.roll(order, -1)
    negative = np.clip(np.einsum("ij,ij->i", u, v[partner]), -1.0, 1.0)

    mean_u, mean_v = u.mean(axis=0), v.mean(axis=0)
    m2a, m2b = float(mean_u @ mean_u), float(mean_v @ mean_v)
    m2a_deb, m2b_deb = _debiased(m2a, n), _debiased(m2b, n)
    alignment = float(positive.mean())
    pooled = (m2a_deb + m2b_deb) / 2  # the views' common ‖E u‖², from within-side pairs only (see above)

    s = min(n, sample)
    # sorted, so a subsample of rows keeps their order (and sample >= n uses every row as given)
    chosen = np.sort(rng.choice(n, size=s, replace=False)) if s < n else np.arange(n)
    phi, gaussian = _uniformity_sums(u[chosen], v[chosen], alpha, t, threads)

    return PairsResult(
        n=int(n),
        dim=int(d),
        alignment=alignment,
        alignment_std=float(positive.std(ddof=1)),
        mean_norm_sq_a=m2a,
        mean_norm_sq_b=m2b,
        mean_norm_sq_a_debiased=m2a_deb,
        mean_norm_sq_b_debiased=m2b_deb,
        eta2_lower=eta2_lower_bound(alignment, pooled) if 1.0 - pooled > _SPREAD_ROUNDOFF else float("nan"),
        uniformity=phi,
        uniformity_alpha=alpha,
        uniformity_gaussian=gaussian,
        uniformity_t=t,
        uniformity_reference=uniform_sphere_uniformity(d, alpha),
        modality_gap=float(np.linalg.norm(mean_u - mean_v)),
        positive_cosines=positive,
        negative_cosines=negative,
        samples=int(s),
    )
