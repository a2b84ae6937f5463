"""Pair statistics (gaussaudit.stats.pairs): known answers for a Gaussian channel of
known correlation, uniform-on-sphere rows against exact expectations, the reference
uniformity against closed forms, mpmath's Bessel function and Monte Carlo, every sum
against a direct O(n²) computation, invariances, and the errors on unusable input."""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from scipy import special
from scipy.spatial.distance import pdist

from gaussaudit import GaussAuditError
from gaussaudit.stats.pairs import PairsResult, eta2_lower_bound, pair_statistics, uniform_sphere_uniformity

SCALARS = ("alignment", "alignment_std", "mean_norm_sq_a", "mean_norm_sq_b", "mean_norm_sq_a_debiased",
           "mean_norm_sq_b_debiased", "eta2_lower", "uniformity", "uniformity_gaussian", "uniformity_reference",
           "modality_gap")


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def sphere(rng, n: int, d: int) -> np.ndarray:
    """n rows uniform on S^(d−1): normalised isotropic Gaussians."""
    return unit(rng.standard_normal((n, d)))


def random_rotation(rng, d: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def expected_gaussian_cosine(d: int, rho: float) -> float:
    """E[x·y/(‖x‖‖y‖)] for x, y ∈ R^d standard normal with corr(x_k, y_k) = ρ, each pair of
    coordinates independent of the others:
    ρ · (2/d) (Γ((d+1)/2)/Γ(d/2))² · ₂F₁(½, ½; d/2 + 1; ρ²). At d = 1 it is Sheppard's
    (2/π) arcsin ρ (checked below); it tends to ρ as d grows, ρ − O(1/d) (the cosine
    concentrates at ρ)."""
    log_ratio = special.gammaln((d + 1) / 2) - special.gammaln(d / 2)
    return float(rho * (2 / d) * np.exp(2 * log_ratio) * special.hyp2f1(0.5, 0.5, d / 2 + 1, rho * rho))


def direct_phi(u: np.ndarray, v: np.ndarray, alpha: float) -> float:
    """mean_i log mean_{j≠i} exp(α u_i·v_j), the whole matrix at once."""
    z = alpha * (u @ v.T)
    np.fill_diagonal(z, -np.inf)
    return float(np.mean(special.logsumexp(z, axis=1)) - np.log(len(u) - 1))


def direct_gaussian(u: np.ndarray, t: float) -> float:
    """log mean over distinct pairs of exp(−t‖u_i − u_j‖²), as Wang & Isola's code (torch.pdist)."""
    sq = pdist(u, "sqeuclidean")
    return float(special.logsumexp(-t * sq) - np.log(sq.size))


# --------------------------------------------------------------------------
# a Gaussian channel of known correlation A (d = 64, n = 4000)

D, N, A = 64, 4000, 0.8


@pytest.fixture(scope="module")
def channel():
    rng = np.random.default_rng(2026)
    x = rng.standard_normal((N, D))
    view1 = A * x + np.sqrt(1 - A * A) * rng.standard_normal((N, D))
    view2 = A * x + np.sqrt(1 - A * A) * rng.standard_normal((N, D))
    return x, view1, view2


def test_expected_gaussian_cosine_is_sheppard_at_d_1():
    for rho in (0.1, 0.5, 0.9):
        assert expected_gaussian_cosine(1, rho) == pytest.approx(2 / np.pi * np.arcsin(rho), rel=1e-12)


def test_base_and_view_alignment_is_the_channel_correlation(channel):
    """(u, v) = (x/‖x‖, x'/‖x'‖), x' = A x + √(1−A²) ε: the cosine concentrates at A.

    What the bound's formula gives here: with ‖m‖² ≈ 0 (both sides isotropic),
    eta2_lower ≈ E[u·v] ≈ A = 0.8, not A² = 0.64. That is no contradiction of the
    true HGR ρ² = A² of this channel, because a base sample and its view are not the
    setting of Prop. 1 (two views, conditionally independent given the base, where
    Cov(u_k, v_k) = Var E[u_k | x] ≤ η² Var u_k). For u = g(x), v = f(x') the HGR
    inequality gives the first power: Cov(u_k, v_k) ≤ ρ sd(u_k) sd(v_k), summed with
    Cauchy-Schwarz, E[u·v] − m_u·m_v ≤ ρ √((1 − ‖m_u‖²)(1 − ‖m_v‖²)), ρ = ρ_max(x, x') = A
    (Gaussian: the canonical correlation). So what is tested: the numbers equal
    their formulas, the alignment equals the exact expected cosine, and the
    formula's output is ≤ ρ = A (up to sampling error) and ≈ A, well above A².
    """
    x, view1, _ = channel
    res = pair_statistics(x, view1)
    u, v = unit(x), unit(view1)
    cos = np.einsum("ij,ij->i", u, v)
    np.testing.assert_allclose(res.positive_cosines, cos, rtol=0, atol=1e-14)
    assert res.alignment == pytest.approx(cos.mean(), abs=1e-14)
    assert res.alignment_std == pytest.approx(cos.std(ddof=1), rel=1e-12)
    se = res.alignment_std / np.sqrt(N)
    exact = expected_gaussian_cosine(D, A)
    assert abs(res.alignment - exact) < 4 * se, (res.alignment, exact, se)
    assert abs(res.alignment - A) < 0.01  # concentration: exact = A − 0.0023 at d = 64
    for side, m2, m2_deb in (("a", res.mean_norm_sq_a, res.mean_norm_sq_a_debiased),
                             ("b", res.mean_norm_sq_b, res.mean_norm_sq_b_debiased)):
        rows = u if side == "a" else v
        assert m2 == pytest.approx(float(np.sum(rows.mean(axis=0) ** 2)), rel=1e-12)
        assert m2_deb == pytest.approx((N * m2 - 1) / (N - 1), rel=1e-12, abs=1e-15)
        assert m2 < 5 / N and abs(m2_deb) < 3 / N  # isotropic: ‖m̂‖² ≈ 1/n, debiased ≈ 0
    m2 = (res.mean_norm_sq_a_debiased + res.mean_norm_sq_b_debiased) / 2
    assert res.eta2_lower == pytest.approx((res.alignment - m2) / (1 - m2), rel=1e-14)
    assert res.eta2_lower == eta2_lower_bound(res.alignment, m2)
    assert res.eta2_lower <= A + 4 * se
    assert abs(res.eta2_lower - A) < 0.01 and res.eta2_lower > A * A + 0.1


def test_two_views_give_the_squared_correlation_and_the_bound_is_tight(channel):
    """Two views of one base, each through the channel: the setting of Prop. 1. η² = HGR
    ρ²(view, base) = A², the views' correlation is A², so E[u·v] ≈ A² and the bound
    η² ≥ eta2_lower holds with near equality (E[u·v] = A² − O(1/d))."""
    _, view1, view2 = channel
    res = pair_statistics(view1, view2)
    se = res.alignment_std / np.sqrt(N)
    assert abs(res.alignment - expected_gaussian_cosine(D, A * A)) < 4 * se
    assert res.eta2_lower <= A * A + 4 * se
    assert abs(res.eta2_lower - A * A) < 0.01


# --------------------------------------------------------------------------
# uniform on the sphere


def test_mean_norm_sq_of_uniform_rows_is_one_over_n():
    """E‖m̂‖² = 1/n exactly, and Var‖m̂‖² = 2(n − 1)/(n³ d) (the u_i·u_j, i < j, are
    uncorrelated with variance 1/d): the mean over 200 seeds within 4 standard errors."""
    n, d, seeds = 100, 8, 200
    plug_in, debiased = [], []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        res = pair_statistics(sphere(rng, n, d), sphere(rng, n, d), seed=seed)
        plug_in += [res.mean_norm_sq_a, res.mean_norm_sq_b]
        debiased += [res.mean_norm_sq_a_debiased, res.mean_norm_sq_b_debiased]
    se = np.sqrt(2 * (n - 1) / (n**3 * d)) / np.sqrt(2 * seeds)
    assert abs(np.mean(plug_in) - 1 / n) < 4 * se, (np.mean(plug_in), 1 / n, se)
    assert abs(np.mean(debiased)) < 4 * se * n / (n - 1)


@pytest.mark.parametrize("d", [16, 128])
def test_uniformity_of_uniform_rows_matches_the_reference(d):
    """Φ over s = 2000 uniform rows against its population value. The sample Φ averages
    logs of means of s − 1 terms, so it sits below by ≈ (R − 1)/(2(s − 1)),
    R = E e^(2αw) / (E e^(αw))² (the delta method; 0.0065 at d = 16, 0.0003 at d = 128),
    which the test allows for; 8 seeds, within 4 standard errors. The Gaussian-potential
    form's reference: log E exp(−t‖u − v‖²) = −2t + log E exp(2t w)."""
    n, alpha, t, seeds = 2000, 10.0, 2.0, 8
    phi, gauss = [], []
    for seed in range(seeds):
        rng = np.random.default_rng(100 + seed)
        res = pair_statistics(sphere(rng, n, d), sphere(rng, n, d), alpha=alpha, t=t, seed=seed)
        phi.append(res.uniformity)
        gauss.append(res.uniformity_gaussian)
    reference = uniform_sphere_uniformity(d, alpha)
    assert res.uniformity_reference == reference and res.uniformity_alpha == alpha and res.uniformity_t == t
    ratio = np.exp(uniform_sphere_uniformity(d, 2 * alpha) - 2 * reference)
    jensen = (ratio - 1) / (2 * (n - 1))
    se = np.std(phi, ddof=1) / np.sqrt(seeds)
    assert abs(np.mean(phi) - (reference - jensen)) < 4 * se + jensen**2 + 1e-4, (np.mean(phi), reference, jensen, se)
    gauss_reference = -2 * t + uniform_sphere_uniformity(d, 2 * t)
    se = np.std(gauss, ddof=1) / np.sqrt(seeds)
    assert abs(np.mean(gauss) - gauss_reference) < 4 * se + 1e-4, (np.mean(gauss), gauss_reference, se)


def test_within_set_uniformity_of_uniform_rows():
    rng = np.random.default_rng(7)
    u = sphere(rng, 1500, 128)
    res = pair_statistics(u, u)
    assert res.alignment == pytest.approx(1.0, abs=1e-12)
    assert abs(res.uniformity - res.uniformity_reference) < 0.005


# --------------------------------------------------------------------------
# the reference value


@pytest.mark.parametrize("alpha", [0.01, 1.0, 10.0, 300.0])
def test_reference_closed_forms_in_low_dimension(alpha):
    # d = 1: w = ±1, log cosh α; d = 2: w = cos θ, θ uniform, log I0(α); d = 3: w uniform on [−1, 1]
    assert uniform_sphere_uniformity(1, alpha) == pytest.approx(alpha + np.log1p(np.exp(-2 * alpha)) - np.log(2), rel=1e-12)
    assert uniform_sphere_uniformity(2, alpha) == pytest.approx(np.log(special.i0e(alpha)) + alpha, rel=1e-9)
    log_sinh_over = alpha + np.log(-np.expm1(-2 * alpha) / 2) - np.log(alpha)  # log(sinh α / α) without overflow
    assert uniform_sphere_uniformity(3, alpha) == pytest.approx(log_sinh_over, rel=1e-9)


def test_reference_matches_the_bessel_form_across_scales():
    """log[Γ(ν+1)(2/α)^ν I_ν(α)], ν = d/2 − 1, at 40 digits with mpmath, from d = 4 to 10⁶
    and α from 10⁻³ to 10⁴: the quadrature keeps relative accuracy when the value is tiny
    (α² ≪ d) and does not overflow when it is large."""
    mpmath.mp.dps = 40
    worst = 0.0
    for d in (4, 5, 16, 128, 768, 4096, 10**6):
        for alpha in (1e-3, 0.1, 1.0, 10.0, 100.0, 1e4):
            nu, a = mpmath.mpf(d) / 2 - 1, mpmath.mpf(alpha)
            try:
                exact = float(mpmath.log(mpmath.gamma(nu + 1) * (2 / a) ** nu * mpmath.besseli(nu, a, maxterms=10**5)))
            except mpmath.libmp.libhyper.NoConvergence:  # α ≫ d: scipy's scaled Bessel is accurate there
                nu_f = d / 2 - 1
                exact = special.gammaln(nu_f + 1) + nu_f * np.log(2 / alpha) + np.log(special.ive(nu_f, alpha)) + alpha
            got = uniform_sphere_uniformity(d, alpha)
            worst = max(worst, abs(got - exact) / abs(exact))
    assert worst < 1e-9, worst


@pytest.mark.parametrize("d", [3, 16, 128])
def test_reference_matches_monte_carlo(d):
    """10⁶ dot products of a random unit vector with random unit vectors (by rotation
    invariance the same law as two independent ones), for α = 1 and 10; within 4
    delta-method standard errors of log mean exp(αw)."""
    rng = np.random.default_rng(d)
    u = sphere(rng, 1, d)[0]
    w = np.concatenate([sphere(rng, 100_000, d) @ u for _ in range(10)])
    for alpha in (1.0, 10.0):
        e = np.exp(alpha * w)
        mc = np.log(e.mean())
        se = e.std(ddof=1) / e.mean() / np.sqrt(w.size)
        assert abs(uniform_sphere_uniformity(d, alpha) - mc) < 4 * se, (d, alpha, mc, se)


def test_reference_edge_values():
    assert uniform_sphere_uniformity(64, 0.0) == 0.0
    assert uniform_sphere_uniformity(64, -10.0) == uniform_sphere_uniformity(64, 10.0)  # w is symmetric
    # α ≫ d: I_ν(α) ≈ e^α/√(2πα) (1 − (4ν² − 1)/(8α)), so the value is
    # α − ((d−1)/2) log α + ν log 2 + log Γ(d/2) − ½ log 2π + O(d²/α): finite however large α is
    d, alpha = 16, 1e7
    nu = d / 2 - 1
    asymptotic = alpha - (d - 1) / 2 * np.log(alpha) + nu * np.log(2) + special.gammaln(d / 2) - 0.5 * np.log(2 * np.pi)
    assert uniform_sphere_uniformity(d, alpha) == pytest.approx(asymptotic, rel=0, abs=1e-4)
    with pytest.raises(GaussAuditError, match="dimension must be at least 1"):
        uniform_sphere_uniformity(0, 1.0)
    with pytest.raises(GaussAuditError, match="alpha must be finite"):
        uniform_sphere_uniformity(8, np.inf)


# --------------------------------------------------------------------------
# the sums against direct computations


def structured_pairs(rng, n: int, d: int):
    """Anisotropic rows with a mean direction, and partners correlated with them."""
    scales = np.linspace(0.3, 2.0, d)
    x = rng.standard_normal((n, d)) * scales + 0.7
    y = 0.7 * x + rng.standard_normal((n, d)) * scales[::-1]
    return x, y


@pytest.mark.parametrize("alpha, t", [(10.0, 2.0), (1.0, 0.5), (1000.0, 50.0)])
def test_uniformity_sums_match_direct_computation(alpha, t):
    rng = np.random.default_rng(3)
    x, y = structured_pairs(rng, 60, 12)
    res = pair_statistics(x, y, alpha=alpha, t=t)
    u, v = unit(x), unit(y)
    assert res.samples == 60
    assert res.uniformity == pytest.approx(direct_phi(u, v, alpha), rel=1e-12, abs=1e-12)
    assert res.uniformity_gaussian == pytest.approx(direct_gaussian(u, t), rel=1e-12, abs=1e-12)
    assert np.isfinite(res.uniformity) and np.isfinite(res.uniformity_gaussian)  # no overflow at α = 1000
    # the same array twice: the within-set form
    same = pair_statistics(x, x, alpha=alpha, t=t)
    assert same.uniformity == pytest.approx(direct_phi(u, u, alpha), rel=1e-12, abs=1e-12)


def test_blocked_sums_match_direct_computation_and_do_not_depend_on_threads():
    # 1500 rows: blocks of 2^19 // 1500 = 349 rows, five of them
    rng = np.random.default_rng(4)
    x, y = structured_pairs(rng, 1500, 10)
    one = pair_statistics(x, y, threads=1)
    two = pair_statistics(x, y, threads=2)
    u, v = unit(x), unit(y)
    assert one.uniformity == pytest.approx(direct_phi(u, v, 10.0), rel=1e-11)
    assert one.uniformity_gaussian == pytest.approx(direct_gaussian(u, 2.0), rel=1e-11)
    for name in SCALARS:
        assert getattr(two, name) == pytest.approx(getattr(one, name), rel=1e-12, abs=1e-14), name


def test_debiased_mean_norm_is_the_mean_over_distinct_pairs():
    rng = np.random.default_rng(5)
    x, y = structured_pairs(rng, 80, 6)
    res = pair_statistics(x, y)
    for rows, got in ((unit(x), res.mean_norm_sq_a_debiased), (unit(y), res.mean_norm_sq_b_debiased)):
        gram = rows @ rows.T
        n = len(rows)
        assert got == pytest.approx((gram.sum() - np.trace(gram)) / (n * (n - 1)), rel=1e-12)


def test_negative_cosines_pair_each_row_with_another_once():
    rng = np.random.default_rng(6)
    x, y = structured_pairs(rng, 40, 5)
    u, v = unit(x), unit(y)
    cos = u @ v.T
    for seed in (0, 1):
        res = pair_statistics(x, y, seed=seed)
        assert res.negative_cosines.shape == (40,)
        partners = [int(np.argmin(np.abs(cos[i] - res.negative_cosines[i]))) for i in range(40)]
        np.testing.assert_allclose(res.negative_cosines, cos[np.arange(40), partners], atol=1e-14)
        assert all(j != i for i, j in enumerate(partners))  # a derangement
        assert sorted(partners) == list(range(40))  # a permutation
    assert not np.array_equal(pair_statistics(x, y, seed=0).negative_cosines, pair_statistics(x, y, seed=1).negative_cosines)
    two = pair_statistics(x[:2], y[:2])  # n = 2: the only derangement swaps the rows
    np.testing.assert_allclose(two.negative_cosines, [cos[0, 1], cos[1, 0]], atol=1e-14)


def test_subsample():
    rng = np.random.default_rng(8)
    u, v = sphere(rng, 3000, 32), sphere(rng, 3000, 32)
    full = pair_statistics(u, v)
    part = pair_statistics(u, v, sample=600, seed=3)
    assert full.samples == 3000 and part.samples == 600 and part.n == 3000
    assert part.positive_cosines.shape == (3000,) and part.alignment == full.alignment  # only the O(n²) sums subsample
    assert abs(part.uniformity - full.uniformity) < 0.02 and abs(part.uniformity_gaussian - full.uniformity_gaussian) < 0.01
    again = pair_statistics(u, v, sample=600, seed=3)
    assert again.uniformity == part.uniformity and again.uniformity_gaussian == part.uniformity_gaussian
    assert pair_statistics(u, v, sample=600, seed=4).uniformity != part.uniformity


# --------------------------------------------------------------------------
# modality gap, identical inputs, invariances


def test_modality_gap_of_two_known_means():
    """Side a: cos φ e1 + sin φ w_i, side b: cos ψ f + sin ψ w'_i with the w ⊥ e1, w' ⊥ f unit
    vectors in ± pairs, so the means are exactly cos φ e1 and cos ψ f (f at angle β to e1):
    gap² = cos²φ + cos²ψ − 2 cos φ cos ψ cos β."""
    rng = np.random.default_rng(9)
    d, half, phi, psi, beta = 6, 50, 0.9, 1.2, 2.0

    def around(direction, angle):
        w = rng.standard_normal((half, d))
        w -= np.outer(w @ direction, direction)
        w = unit(w)
        return np.cos(angle) * direction + np.sin(angle) * np.concatenate([w, -w])

    e1 = np.eye(d)[0]
    f = np.cos(beta) * e1 + np.sin(beta) * np.eye(d)[1]
    a, b = around(e1, phi), 3.0 * around(f, psi)  # the scale goes with the normalisation
    res = pair_statistics(a, b)
    gap = np.sqrt(np.cos(phi) ** 2 + np.cos(psi) ** 2 - 2 * np.cos(phi) * np.cos(psi) * np.cos(beta))
    assert res.modality_gap == pytest.approx(gap, rel=1e-12)
    assert res.mean_norm_sq_a == pytest.approx(np.cos(phi) ** 2, rel=1e-12)
    assert res.mean_norm_sq_b == pytest.approx(np.cos(psi) ** 2, rel=1e-12)
    n = 2 * half
    assert res.mean_norm_sq_a_debiased == pytest.approx((n * np.cos(phi) ** 2 - 1) / (n - 1), rel=1e-12)


def test_identical_inputs():
    rng = np.random.default_rng(10)
    x, _ = structured_pairs(rng, 200, 8)
    res = pair_statistics(x, x)
    assert res.alignment == pytest.approx(1.0, abs=1e-14) and res.alignment_std < 1e-14
    assert res.modality_gap == 0.0
    assert res.eta2_lower == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(res.positive_cosines, 1.0, atol=1e-14)
    assert res.mean_norm_sq_a == res.mean_norm_sq_b
    # every row the same direction: ‖E u‖² = 1, the bound says nothing (NaN, no warning)
    same = pair_statistics(np.ones((5, 3)), 2 * np.ones((5, 3)))
    assert same.mean_norm_sq_a_debiased == pytest.approx(1.0) and math.isnan(same.eta2_lower)
    for seed in range(5):  # 1 − m² and 1 − alignment are then rounding errors, their ratio meaningless: NaN, not 0.8
        row = np.tile(np.random.default_rng(seed).standard_normal(7), (50, 1))
        assert math.isnan(pair_statistics(row, 3 * row).eta2_lower)


def test_eta2_lower_bound_formula():
    assert eta2_lower_bound(0.5, 0.0) == 0.5
    assert eta2_lower_bound(0.625, 0.25) == 0.5
    assert eta2_lower_bound(0.1, 0.2) < 0  # alignment below ‖m‖²: the bound says η² >= a negative number
    assert math.isnan(eta2_lower_bound(1.0, 1.0)) and math.isnan(eta2_lower_bound(0.5, 1.5))
    assert math.isnan(eta2_lower_bound(0.5, float("nan")))


def test_rotation_and_scale_invariance():
    """One orthogonal Q on both sides, and any positive scale per row, leave every scalar as it was."""
    rng = np.random.default_rng(11)
    x, y = structured_pairs(rng, 300, 20)
    base = pair_statistics(x, y, sample=250)
    q = random_rotation(rng, 20)
    rotated = pair_statistics(x @ q, y @ q, sample=250)
    scales = np.exp(rng.uniform(-1, 1, (300, 1)))
    scales[0], scales[1] = 1e200, 1e-200  # the normalisation neither overflows nor underflows
    scaled = pair_statistics(x * scales, y * scales[::-1], sample=250)
    for other in (rotated, scaled):
        for name in SCALARS:
            assert getattr(other, name) == pytest.approx(getattr(base, name), rel=1e-10, abs=1e-12), name
        np.testing.assert_allclose(other.positive_cosines, base.positive_cosines, rtol=0, atol=1e-12)
        np.testing.assert_allclose(other.negative_cosines, base.negative_cosines, rtol=0, atol=1e-12)
    assert isinstance(base, PairsResult) and base.n == 300 and base.dim == 20 and base.samples == 250


def test_float32_input_is_computed_in_float64():
    rng = np.random.default_rng(12)
    x, y = structured_pairs(rng, 100, 8)
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    res = pair_statistics(x32, y32)
    ref = pair_statistics(x32.astype(np.float64), y32.astype(np.float64))
    assert res.positive_cosines.dtype == np.float64
    for name in SCALARS:
        assert getattr(res, name) == getattr(ref, name), name


# --------------------------------------------------------------------------
# unusable input


@pytest.mark.parametrize("a, b, kwargs, match", [
    (np.ones((5, 3)), np.ones((4, 3)), {}, "a has 5 rows but b has 4"),
    (np.ones((5, 3)), np.ones((5, 4)), {}, "a has 3 dimension.*but b has 4"),
    (np.ones(5), np.ones(5), {}, "a must be a 2-D array"),
    (np.ones((1, 3)), np.ones((1, 3)), {}, "a has 1 row.*at least 2"),
    (np.ones((5, 0)), np.ones((5, 0)), {}, "a has no columns"),
    (np.ones((5, 3)), "text", {}, "b must be"),
    (np.ones((5, 3)) * 1j, np.ones((5, 3)), {}, "a must hold real numbers"),
    (np.ones((5, 3)), np.ones((5, 3)), {"sample": 1}, "sample=1.*at least 2"),
    (np.ones((5, 3)), np.ones((5, 3)), {"sample": 2.5}, "sample must be a whole number"),
    (np.ones((5, 3)), np.ones((5, 3)), {"alpha": np.inf}, "alpha must be finite"),
    (np.ones((5, 3)), np.ones((5, 3)), {"t": "two"}, "t must be a number"),
    (np.ones((5, 3)), np.ones((5, 3)), {"seed": -1}, "seed=-1"),
])
def test_unusable_input_is_refused(a, b, kwargs, match):
    with pytest.raises(GaussAuditError, match=match):
        pair_statistics(a, b, **kwargs)


def test_non_finite_and_zero_rows_are_named():
    a, b = np.ones((6, 3)), np.ones((6, 3))
    bad = a.copy()
    bad[4, 2] = np.nan
    with pytest.raises(GaussAuditError, match=r"a has 1 non-finite value.*row 4, column 2"):
        pair_statistics(bad, b)
    bad = b.copy()
    bad[1, 0] = -np.inf
    with pytest.raises(GaussAuditError, match=r"b has 1 non-finite value.*row 1, column 0"):
        pair_statistics(a, bad)
    bad = b.copy()
    bad[[3, 5]] = 0.0
    with pytest.raises(GaussAuditError, match=r"b has 2 all-zero row\(s\), the first is row 3.*normalise"):
        pair_statistics(a, bad)
