"""Drift statistics (gaussaudit.stats.drift): each closed form against an independent
reference (scipy's sqrtm as pytorch-fid computes the FID, scipy's multivariate
normal, pingouin's Hotelling test), known answers, and the size and power of the
permutation test measured by simulation."""
from __future__ import annotations

import numpy as np
import pingouin
import pytest
import scipy.linalg
from scipy import stats

from gaussaudit import GaussAuditError
from gaussaudit.stats.drift import (
    DriftResult,
    GaussianFit,
    HotellingResult,
    drift_test,
    fit_gaussian,
    frechet_distance,
    gaussian_kl,
    hotelling_two_sample,
    spectrum_summary,
)

ALPHA = 0.05


def random_spd(rng, d: int, ridge: float = 0.1) -> np.ndarray:
    a = rng.standard_normal((d, d + 3))
    return a @ a.T / (d + 3) + ridge * np.eye(d)


def random_fit(rng, d: int) -> GaussianFit:
    return GaussianFit(rng.standard_normal(d), random_spd(rng, d), n=100)


def random_rotation(rng, d: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def inside_binomial_interval(rejections: int, replicates: int, level: float = ALPHA):
    """Clopper-Pearson 95 % interval of the rejection rate, and whether it holds the nominal level."""
    ci = stats.binomtest(rejections, replicates, level).proportion_ci(confidence_level=0.95, method="exact")
    return ci.low <= level <= ci.high, (ci.low, ci.high)


# --------------------------------------------------------------------------
# fitting


def test_fit_gaussian_matches_numpy():
    x = np.random.default_rng(0).standard_normal((40, 5)) * [1, 2, 3, 4, 5] + 7
    fit = fit_gaussian(x)
    np.testing.assert_allclose(fit.mean, x.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(fit.cov, np.cov(x, rowvar=False), rtol=1e-12)
    assert fit.n == 40 and fit.cov.shape == (5, 5) and fit.mean.dtype == np.float64


def test_fit_gaussian_of_integers_and_one_column():
    fit = fit_gaussian(np.array([[1], [2], [3], [6]]))
    assert fit.cov.shape == (1, 1)
    np.testing.assert_allclose(fit.cov[0, 0], np.var([1, 2, 3, 6], ddof=1))


# --------------------------------------------------------------------------
# Fréchet distance


def fid_like_pytorch_fid(a: GaussianFit, b: GaussianFit) -> float:
    """pytorch-fid's calculate_frechet_distance: sqrtm of the non-symmetric product."""
    covmean = scipy.linalg.sqrtm(a.cov @ b.cov)
    covmean = np.real(covmean)
    diff = a.mean - b.mean
    return float(diff @ diff + np.trace(a.cov) + np.trace(b.cov) - 2 * np.trace(covmean))


@pytest.mark.parametrize("d", [2, 5, 12, 30])
def test_frechet_matches_sqrtm_reference(d):
    rng = np.random.default_rng(d)
    for _ in range(5):
        a, b = random_fit(rng, d), random_fit(rng, d)
        np.testing.assert_allclose(frechet_distance(a, b), fid_like_pytorch_fid(a, b), rtol=1e-9)


def test_frechet_one_dimension_closed_form():
    for m1, s1, m2, s2 in [(0.0, 1.0, 0.0, 1.0), (1.0, 2.0, -0.5, 0.3), (10.0, 0.01, 10.0, 5.0)]:
        a, b = GaussianFit([m1], [[s1**2]], n=5), GaussianFit([m2], [[s2**2]], n=5)
        np.testing.assert_allclose(frechet_distance(a, b), (m1 - m2) ** 2 + (s1 - s2) ** 2, rtol=1e-12, atol=1e-15)


def test_frechet_zero_for_identical_fits_and_symmetric():
    rng = np.random.default_rng(1)
    a, b = random_fit(rng, 20), random_fit(rng, 20)
    assert 0.0 <= frechet_distance(a, a) <= 1e-12 * np.trace(a.cov)
    np.testing.assert_allclose(frechet_distance(a, b), frechet_distance(b, a), rtol=1e-10)


def test_frechet_singular_covariances_against_nuclear_norm():
    # n < d: both covariances singular. The nonzero eigenvalues of Σa Σb are the squared
    # singular values of Xa Xbᵀ / √((na−1)(nb−1)) (centred rows), an exact independent reference.
    rng = np.random.default_rng(2)
    xa, xb = rng.standard_normal((6, 25)), rng.standard_normal((9, 25)) + 0.5
    a, b = fit_gaussian(xa), fit_gaussian(xb)
    ca, cb = xa - xa.mean(axis=0), xb - xb.mean(axis=0)
    nuclear = np.linalg.svd(ca @ cb.T, compute_uv=False).sum() / np.sqrt(5 * 8)
    diff = a.mean - b.mean
    expected = diff @ diff + np.trace(a.cov) + np.trace(b.cov) - 2 * nuclear
    value = frechet_distance(a, b)
    assert np.isfinite(value) and value >= 0
    # round-off eigenvalues dropped before the square root: machine precision, not √eps
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    np.testing.assert_allclose(frechet_distance(b, a), expected, rtol=1e-12)
    assert 0.0 <= frechet_distance(a, a) <= 1e-12 * np.trace(a.cov)


def test_frechet_rejects_fits_of_different_dimensions():
    with pytest.raises(GaussAuditError, match="dimension"):
        frechet_distance(GaussianFit(np.zeros(2), np.eye(2), 3), GaussianFit(np.zeros(3), np.eye(3), 3))


# --------------------------------------------------------------------------
# KL divergence


def kl_from_scipy(a: GaussianFit, b: GaussianFit) -> float:
    """Cross-entropy H(a, b) (analytic, with a linear solve) minus scipy's entropy H(a)."""
    d = a.mean.size
    diff = b.mean - a.mean
    cross = 0.5 * (d * np.log(2 * np.pi) + np.linalg.slogdet(b.cov)[1] + np.trace(np.linalg.solve(b.cov, a.cov))
                   + diff @ np.linalg.solve(b.cov, diff))
    return float(cross - stats.multivariate_normal(a.mean, a.cov).entropy())


@pytest.mark.parametrize("d", [1, 3, 6, 15])
def test_kl_matches_scipy_entropy_and_cross_entropy(d):
    rng = np.random.default_rng(10 + d)
    for _ in range(5):
        a, b = random_fit(rng, d), random_fit(rng, d)
        np.testing.assert_allclose(gaussian_kl(a, b), kl_from_scipy(a, b), rtol=1e-9)
        np.testing.assert_allclose(gaussian_kl(b, a), kl_from_scipy(b, a), rtol=1e-9)


def test_kl_one_dimension_closed_form():
    for m1, s1, m2, s2 in [(0.0, 1.0, 1.0, 2.0), (3.0, 0.5, -1.0, 0.7), (0.0, 2.0, 0.0, 1.0)]:
        a, b = GaussianFit([m1], [[s1**2]], n=5), GaussianFit([m2], [[s2**2]], n=5)
        expected = np.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
        np.testing.assert_allclose(gaussian_kl(a, b), expected, rtol=1e-12)


def test_kl_monte_carlo_three_dimensions():
    rng = np.random.default_rng(3)
    a, b = random_fit(rng, 3), random_fit(rng, 3)
    draws = rng.multivariate_normal(a.mean, a.cov, size=200_000)
    ratio = stats.multivariate_normal(a.mean, a.cov).logpdf(draws) - stats.multivariate_normal(b.mean, b.cov).logpdf(draws)
    standard_error = ratio.std(ddof=1) / np.sqrt(ratio.size)
    assert abs(ratio.mean() - gaussian_kl(a, b)) < 4 * standard_error


def test_kl_zero_for_identical_fits_and_not_symmetric():
    rng = np.random.default_rng(4)
    a, b = random_fit(rng, 5), random_fit(rng, 5)
    assert 0.0 <= gaussian_kl(a, a) < 1e-12
    assert abs(gaussian_kl(a, b) - gaussian_kl(b, a)) > 1e-3


def test_kl_infinite_for_singular_covariances():
    rng = np.random.default_rng(5)
    singular = fit_gaussian(rng.standard_normal((4, 10)))  # 4 rows in 10 dimensions: rank 3
    regular = fit_gaussian(rng.standard_normal((100, 10)))
    assert gaussian_kl(singular, regular) == np.inf
    assert gaussian_kl(regular, singular) == np.inf
    assert gaussian_kl(singular, singular) == np.inf
    assert np.isfinite(gaussian_kl(regular, regular))


# --------------------------------------------------------------------------
# Hotelling's T²


@pytest.mark.parametrize("n1,n2,d,shift", [(30, 25, 3, 0.3), (12, 40, 5, 0.0), (100, 100, 10, 0.2), (8, 9, 6, 0.5)])
def test_hotelling_matches_pingouin(n1, n2, d, shift):
    rng = np.random.default_rng(n1 + n2 + d)
    cov = random_spd(rng, d)
    x = rng.multivariate_normal(np.zeros(d), cov, size=n1)
    y = rng.multivariate_normal(np.full(d, shift), cov, size=n2)
    ref = pingouin.multivariate_ttest(x, y).loc["hotelling"]
    res = hotelling_two_sample(x, y)
    assert isinstance(res, HotellingResult)
    np.testing.assert_allclose(res.statistic, ref["T2"], rtol=1e-10)
    np.testing.assert_allclose(res.f_statistic, ref["F"], rtol=1e-10)
    assert (res.df1, res.df2) == (int(ref["df1"]), int(ref["df2"])) == (d, n1 + n2 - d - 1)
    np.testing.assert_allclose(res.p_value, ref["pval"], rtol=1e-10)
    assert (res.n1, res.n2, res.dim) == (n1, n2, d)


def test_hotelling_rank_deficient_is_the_test_in_the_spanned_subspace():
    # a fourth coordinate that is the sum of the others (a constraint every row obeys): the pooled
    # covariance has rank 3, and T² is affine invariant, so the answer is the 3-D test's
    rng = np.random.default_rng(6)
    x3, y3 = rng.standard_normal((40, 3)), rng.standard_normal((35, 3)) + [0.4, 0.0, 0.0]
    embed = np.array([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    full, projected = hotelling_two_sample(x3, y3), hotelling_two_sample(x3 @ embed + 5.0, y3 @ embed + 5.0)
    assert (projected.df1, projected.df2, projected.dim) == (3, 40 + 35 - 3 - 1, 4)
    np.testing.assert_allclose(projected.statistic, full.statistic, rtol=1e-8)
    np.testing.assert_allclose(projected.f_statistic, full.f_statistic, rtol=1e-8)
    np.testing.assert_allclose(projected.p_value, full.p_value, rtol=1e-7)


def test_hotelling_rank_deficient_size_under_gaussian_null():
    rng = np.random.default_rng(7)
    embed = np.hstack([np.eye(3), np.ones((3, 1))])
    p_values = [hotelling_two_sample(rng.standard_normal((20, 3)) @ embed, rng.standard_normal((15, 3)) @ embed).p_value
                for _ in range(400)]
    ok, ci = inside_binomial_interval(int(np.sum(np.array(p_values) <= ALPHA)), 400)
    assert ok, ci


def test_hotelling_means_apart_along_a_direction_without_variance():
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((30, 4)), rng.standard_normal((30, 4))
    x[:, 3], y[:, 3] = 0.0, 1.0  # no spread in the last coordinate, but a different constant
    res = hotelling_two_sample(x, y)
    assert res.statistic == np.inf and res.p_value == 0.0 and res.df1 == 3


def test_hotelling_needs_more_rows_than_dimensions():
    rng = np.random.default_rng(9)
    with pytest.raises(GaussAuditError, match=r"more rows than dimensions.*n1 \+ n2 − 2 = 8 < dim = 20.*at least 22"):
        hotelling_two_sample(rng.standard_normal((5, 20)), rng.standard_normal((5, 20)))


def test_hotelling_size_under_gaussian_null():
    rng = np.random.default_rng(11)
    replicates = 2000
    rejections = sum(hotelling_two_sample(rng.standard_normal((30, 5)), rng.standard_normal((25, 5))).p_value <= ALPHA
                     for _ in range(replicates))
    ok, ci = inside_binomial_interval(rejections, replicates)
    assert ok, (rejections / replicates, ci)


# --------------------------------------------------------------------------
# spectrum


def test_spectrum_known_values():
    s = spectrum_summary([3.0, 1.0])
    np.testing.assert_allclose(s.participation_ratio, 16 / 10)
    np.testing.assert_allclose(s.entropy_rank, np.exp(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25))))
    assert s.top_share == 0.75 and s.dim == 2


@pytest.mark.parametrize("d", [1, 7, 768])
def test_spectrum_equal_eigenvalues_give_the_dimension(d):
    s = spectrum_summary(np.full(d, 2.5))
    np.testing.assert_allclose([s.participation_ratio, s.entropy_rank, s.top_share], [d, d, 1 / d], rtol=1e-12)


def test_rankme_equals_the_hand_computation_from_singular_values():
    # Garrido et al. (2023), eq. 1: p_k = σ_k / Σσ, RankMe = exp(-Σ p_k log p_k), σ the
    # singular values of the (here centred) embedding matrix.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3000, 12)) @ np.diag(np.linspace(0.2, 3.0, 12)) @ rng.standard_normal((12, 12))
    centred = x - x.mean(axis=0)
    sigma = np.linalg.svd(centred, compute_uv=False)
    p = sigma / sigma.sum()
    expected = np.exp(-np.sum(p * np.log(p)))
    summary = spectrum_summary(np.linalg.eigvalsh(np.cov(x, rowvar=False)))
    np.testing.assert_allclose(summary.rankme, expected, rtol=1e-10)
    assert summary.entropy_rank < summary.rankme < 12  # flatter shares of √λ than of λ
    # the report carries it, from the tested rows' spectrum
    from gaussaudit import audit

    report = audit(x, normalize=False, sample=0, calibrate=0, mv_sample=0, projections=0)
    np.testing.assert_allclose(report.to_dict()["metrics"]["spectrum"]["rankme"], expected, rtol=1e-8)


def test_spectrum_zeros_and_round_off_negatives():
    s = spectrum_summary([5.0, 0.0, -1e-15, 0.0])
    np.testing.assert_allclose([s.participation_ratio, s.entropy_rank, s.top_share], [1.0, 1.0, 1.0])
    assert s.dim == 4
    none = spectrum_summary(np.zeros(3))
    assert none.participation_ratio == 0.0 and none.entropy_rank == 0.0 and np.isnan(none.top_share)


@pytest.mark.parametrize("values,match", [([1.0, -0.5], "got -0.5"), ([], "non-empty"), ([[1.0]], "1-D"),
                                          ([1.0, np.nan], "finite")])
def test_spectrum_rejects_bad_eigenvalues(values, match):
    with pytest.raises(GaussAuditError, match=match):
        spectrum_summary(values)


def test_rotation_invariance_of_spectra_and_frechet():
    rng = np.random.default_rng(12)
    d = 10
    x = rng.standard_normal((200, d)) * np.linspace(0.5, 3, d) + 1.0
    y = rng.standard_normal((150, d)) * np.linspace(3, 0.5, d)
    q = random_rotation(rng, d)
    for data in (x, y):
        before = spectrum_summary(np.linalg.eigvalsh(fit_gaussian(data).cov))
        after = spectrum_summary(np.linalg.eigvalsh(fit_gaussian(data @ q).cov))
        np.testing.assert_allclose([after.participation_ratio, after.entropy_rank, after.top_share],
                                   [before.participation_ratio, before.entropy_rank, before.top_share], rtol=1e-10)
    np.testing.assert_allclose(frechet_distance(fit_gaussian(x @ q), fit_gaussian(y @ q)),
                               frechet_distance(fit_gaussian(x), fit_gaussian(y)), rtol=1e-10)
    plain, rotated = drift_test(x, y, permutations=19), drift_test(x @ q, y @ q, permutations=19)
    np.testing.assert_allclose(rotated.frechet, plain.frechet, rtol=1e-10)
    assert rotated.frechet_p == plain.frechet_p
    np.testing.assert_allclose(rotated.reference_spectrum.entropy_rank, plain.reference_spectrum.entropy_rank, rtol=1e-10)


# --------------------------------------------------------------------------
# the drift test: what it reports


def naive_drift_p(reference, current, permutations, seed):
    """The permutation p-value from scratch: fit both parts of every split, same shuffles."""
    pooled = np.concatenate([reference, current])
    n = len(reference)
    observed = frechet_distance(fit_gaussian(reference), fit_gaussian(current))
    rng = np.random.default_rng(seed)
    null = []
    for _ in range(permutations):
        order = rng.permutation(len(pooled))
        null.append(frechet_distance(fit_gaussian(pooled[order[:n]]), fit_gaussian(pooled[order[n:]])))
    null = np.array(null)
    return observed, (1 + np.count_nonzero(null >= observed)) / (1 + permutations), np.sort(null)


@pytest.mark.parametrize("n_ref,n_cur", [(50, 80), (80, 50), (40, 40)])
def test_drift_test_matches_a_from_scratch_permutation_test(n_ref, n_cur):
    rng = np.random.default_rng(13)
    ref, cur = rng.standard_normal((n_ref, 6)) + 3.0, 1.1 * rng.standard_normal((n_cur, 6)) + 3.0
    res = drift_test(ref, cur, permutations=39, alpha=0.1, seed=5)
    observed, p_value, null = naive_drift_p(ref, cur, 39, 5)
    assert isinstance(res, DriftResult)
    np.testing.assert_allclose(res.frechet, observed, rtol=1e-10)
    assert res.frechet_p == p_value
    # 40·0.1 = 4: p <= 0.1 allows 3 null values >= observed; the threshold is the 4th largest
    np.testing.assert_allclose(res.frechet_null_quantile, null[-4], rtol=1e-10)
    assert res.drifted == (res.frechet_p <= 0.1) == (res.frechet > res.frechet_null_quantile)
    assert (res.n_reference, res.n_current, res.dim, res.permutations, res.alpha, res.seed) == (n_ref, n_cur, 6, 39, 0.1, 5)


def test_drift_test_reports_the_closed_forms():
    rng = np.random.default_rng(14)
    ref, cur = rng.standard_normal((120, 5)), rng.standard_normal((90, 5)) * 1.3 + 0.2
    res = drift_test(ref, cur, permutations=19)
    a, b = fit_gaussian(ref), fit_gaussian(cur)
    np.testing.assert_allclose(res.kl_forward, gaussian_kl(a, b), rtol=1e-10)
    np.testing.assert_allclose(res.kl_backward, gaussian_kl(b, a), rtol=1e-10)
    expected = hotelling_two_sample(ref, cur)
    np.testing.assert_allclose(res.mean_shift.statistic, expected.statistic, rtol=1e-10)
    np.testing.assert_allclose(res.mean_shift.p_value, expected.p_value, rtol=1e-9)
    spectrum = spectrum_summary(np.linalg.eigvalsh(b.cov))
    np.testing.assert_allclose(res.current_spectrum.participation_ratio, spectrum.participation_ratio, rtol=1e-10)
    assert res.notes == ()


def test_drift_test_is_reproducible_from_its_seed():
    rng = np.random.default_rng(15)
    ref, cur = rng.standard_normal((60, 3)), rng.standard_normal((60, 3)) + 0.15
    first, again = drift_test(ref, cur, seed=3), drift_test(ref, cur, seed=3)
    assert (first.frechet_p, first.frechet_null_quantile) == (again.frechet_p, again.frechet_null_quantile)


def test_drift_test_with_fewer_rows_than_dimensions():
    rng = np.random.default_rng(16)
    res = drift_test(rng.standard_normal((6, 20)), rng.standard_normal((7, 20)) + 2.0, permutations=19)
    assert res.mean_shift is None
    assert res.kl_forward == res.kl_backward == np.inf
    assert np.isfinite(res.frechet) and res.frechet > 0
    text = " ".join(res.notes)
    assert "no mean-shift test" in text and "more rows than dimensions" in text
    assert "reference covariance is singular (6 rows for 20 dimensions)" in text
    assert "current covariance is singular (7 rows for 20 dimensions)" in text


def test_drift_test_notes_a_projected_hotelling():
    rng = np.random.default_rng(17)
    embed = np.hstack([np.eye(3), np.ones((3, 1))])
    res = drift_test(rng.standard_normal((50, 3)) @ embed, rng.standard_normal((50, 3)) @ embed, permutations=19)
    assert res.mean_shift.df1 == 3 and res.mean_shift.dim == 4
    assert any("rank 3 < 4" in note for note in res.notes)


def test_drift_test_detects_a_collapsed_current_set():
    # a broken pipeline that emits one embedding over and over
    rng = np.random.default_rng(18)
    res = drift_test(rng.standard_normal((100, 4)), np.ones((50, 4)), permutations=19)
    assert res.drifted and res.frechet_p == 0.05
    assert res.current_spectrum.participation_ratio == 0.0


# --------------------------------------------------------------------------
# size and power by simulation


def student_t(rng, n, d):
    return rng.standard_t(3, size=(n, d))


def gaussian(rng, n, d):
    return rng.standard_normal((n, d))


def mixture(rng, n, d):
    # bimodal: half the rows around +2 on the first axis, half around −2
    x = rng.standard_normal((n, d))
    x[:, 0] += np.where(rng.random(n) < 0.5, -2.0, 2.0)
    return x


@pytest.mark.parametrize("law,n_ref,n_cur", [(gaussian, 60, 60), (student_t, 60, 60), (mixture, 80, 40)])
def test_permutation_test_size_under_the_null(law, n_ref, n_cur):
    rng = np.random.default_rng(19)
    replicates = 1000
    rejections = 0
    for _ in range(replicates):
        res = drift_test(law(rng, n_ref, 4), law(rng, n_cur, 4), permutations=19, alpha=ALPHA, seed=int(rng.integers(2**31)))
        assert res.drifted == (res.frechet > res.frechet_null_quantile)
        rejections += res.drifted
    ok, ci = inside_binomial_interval(rejections, replicates)
    assert ok, (law.__name__, rejections / replicates, ci)


@pytest.mark.parametrize("change", ["mean", "scale"])
def test_permutation_test_power(change):
    rng = np.random.default_rng(20)
    n, d, replicates = 300, 8, 50
    detected = 0
    for _ in range(replicates):
        ref, cur = rng.standard_normal((n, d)), rng.standard_normal((n, d))
        if change == "mean":
            cur[:, 0] += 0.5  # half a standard deviation along one coordinate
        else:
            cur *= np.sqrt(1.5)  # covariance scaled by 1.5
        detected += drift_test(ref, cur, permutations=49, seed=int(rng.integers(2**31))).drifted
    assert detected >= 0.9 * replicates, detected


# --------------------------------------------------------------------------
# unusable input


GOOD = np.random.default_rng(21).standard_normal((10, 3))


@pytest.mark.parametrize("reference,current,options,match", [
    (GOOD, GOOD[:, :2], {}, "reference has 3 dimension.*current has 2"),
    (GOOD[:1], GOOD, {}, "reference has 1 row.*at least 2"),
    (GOOD, GOOD[:0], {}, "current has 0 row"),
    (GOOD[:, 0], GOOD, {}, r"reference must be a 2-D array.*shape \(10,\)"),
    (np.where(np.arange(30).reshape(10, 3) == 7, np.nan, GOOD), GOOD, {}, "reference has 1 non-finite.*row 2, column 1"),
    (GOOD, np.full((4, 3), np.inf), {}, "current has 12 non-finite"),
    (GOOD, [["a", "b", "c"]] * 3, {}, "current must be an array of numbers"),
    (GOOD, GOOD, {"permutations": 0}, "permutations=0.*at least one"),
    (GOOD, GOOD, {"permutations": 2.5}, "permutations must be a whole number"),
    (GOOD, GOOD, {"permutations": 10}, r"permutations=10 can never reach p <= 0.05.*permutations=19 or more"),
    (GOOD, GOOD, {"permutations": 99, "alpha": 0.001}, "permutations=999 or more"),
    (GOOD, GOOD, {"alpha": 0.0}, "alpha=0.0.*strictly between 0 and 1"),
    (GOOD, GOOD, {"alpha": 1.5}, "alpha=1.5"),
    (GOOD, GOOD, {"alpha": "x"}, "alpha must be a number"),
    (GOOD, GOOD, {"seed": 1.5}, "seed must be a whole number"),
])
def test_drift_test_rejects_unusable_input(reference, current, options, match):
    with pytest.raises(GaussAuditError, match=match):
        drift_test(reference, current, **options)


def test_other_functions_reject_unusable_input():
    with pytest.raises(GaussAuditError, match="x has 1 row"):
        fit_gaussian(GOOD[:1])
    with pytest.raises(GaussAuditError, match="x has 3 dimension.*y has 2"):
        hotelling_two_sample(GOOD, GOOD[:, :2])
    with pytest.raises(GaussAuditError, match="y has 1 non-finite"):
        hotelling_two_sample(GOOD, np.vstack([GOOD[:5], [np.nan, 0, 0]]))
    with pytest.raises(GaussAuditError, match="dimension"):
        gaussian_kl(GaussianFit(np.zeros(2), np.eye(2), 3), GaussianFit(np.zeros(3), np.eye(3), 3))
    with pytest.raises(GaussAuditError, match=r"shape \(d,\).*\(d, d\)"):
        GaussianFit(np.zeros(2), np.eye(3), 3)
    with pytest.raises(GaussAuditError, match="neither sample varies"):
        hotelling_two_sample(np.ones((5, 2)), np.ones((6, 2)))


@pytest.mark.parametrize("dim, n_from, n_to", [(8, 500, 500), (32, 100, 60), (64, 2000, 1000)])
def test_kl_null_mean_matches_simulation(dim, n_from, n_to):
    """The exact null expectation of the fitted Gaussians' KL, against 300 simulated pairs."""
    from gaussaudit.stats.drift import kl_null_mean

    rng = np.random.default_rng([dim, n_from, n_to])
    values = [gaussian_kl(fit_gaussian(rng.standard_normal((n_from, dim))), fit_gaussian(rng.standard_normal((n_to, dim))))
              for _ in range(300)]
    se = np.std(values) / np.sqrt(len(values))
    assert abs(np.mean(values) - kl_null_mean(dim, n_from, n_to)) < 4 * se
    assert np.isnan(kl_null_mean(dim, 100, dim + 2))
