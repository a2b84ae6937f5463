"""gaussaudit.stats and gaussaudit.prep against reference implementations.

References: scipy.stats (anderson, normaltest, skewtest, kurtosistest, skew,
kurtosis), statsmodels (normal_ad, anderson_statistic) and plain numpy. Relative
tolerance 1e-6 throughout; an absolute tolerance of 1e-300 only where a reference
p-value underflows to 0.
"""
from __future__ import annotations

import inspect
import warnings
import zlib

import numpy as np
import pytest
import scipy.stats as ss
from statsmodels.stats.diagnostic import anderson_statistic, normal_ad

from gaussaudit import GaussAuditError
from gaussaudit.prep import l2_normalize, row_norms, sample_indices
from gaussaudit.stats import (
    AD_CRITICAL_5PCT,
    RunningMoments,
    anderson_darling,
    dagostino_pearson,
    feature_normality,
)

RTOL = 1e-6
TINY = 1e-300  # only where a reference p-value underflows to 0

# scipy >= 1.17 warns (FutureWarning) unless `method` is given.
_ANDERSON_KW = {"method": "interpolate"} if "method" in inspect.signature(ss.anderson).parameters else {}

DISTRIBUTIONS = {
    "normal": lambda rng, s: rng.standard_normal(s),
    "laplace": lambda rng, s: rng.laplace(size=s),
    "student_t3": lambda rng, s: rng.standard_t(3, size=s),
    "uniform": lambda rng, s: rng.uniform(-1.0, 1.0, size=s),
    "exponential_scaled_shifted": lambda rng, s: 2.5 * rng.exponential(size=s) - 7.0,
    "relu_normal": lambda rng, s: np.maximum(0.0, rng.standard_normal(s)),
    "normal_mixture": lambda rng, s: np.where(
        rng.random(s) < 0.3, rng.normal(4.0, 0.5, s), rng.normal(0.0, 1.0, s)
    ),
}
SIZES = {20: 40, 57: 23, 500: 17, 5000: 8}  # n -> d


def make(dist: str, n: int, d: int | None = None, salt: int = 0) -> np.ndarray:
    d = SIZES[n] if d is None else d
    rng = np.random.default_rng([zlib.crc32(dist.encode()), n, d, salt])
    return DISTRIBUTIONS[dist](rng, (n, d))


CASES = [pytest.param(dist, n, id=f"{dist}-n{n}") for dist in DISTRIBUTIONS for n in SIZES]


def scipy_ad(col: np.ndarray) -> float:
    return float(ss.anderson(col, "norm", **_ANDERSON_KW).statistic)


def max_abs_z(x: np.ndarray) -> np.ndarray:
    """Largest |standardised value| per column (mean, std ddof 1)."""
    return np.max(np.abs(x - x.mean(axis=0)) / x.std(axis=0, ddof=1), axis=0)


# statsmodels computes A² from log(Φ(w)) and log1p(-Φ(w)): once Φ(w) is within a
# few ulps of 1 it loses digits, so it is a reference only where every |w| is
# moderate. At |w| = 6, 1 - Φ = 1e-9 and the relative error is ~1e-7.
STATSMODELS_MAX_Z = 6.0


def statsmodels_normal_ad(x):
    with np.errstate(all="ignore"):
        return normal_ad(x)


# ----------------------------------------------------------------------------
# Anderson-Darling


@pytest.mark.parametrize("dist, n", CASES)
def test_ad_statistic_matches_scipy_anderson(dist, n):
    x = make(dist, n)
    expected = np.array([scipy_ad(x[:, j]) for j in range(x.shape[1])])
    ad = anderson_darling(x)
    assert ad.n == n
    assert ad.statistic.shape == (x.shape[1],)
    np.testing.assert_allclose(ad.statistic, expected, rtol=RTOL)
    np.testing.assert_allclose(
        ad.adjusted_statistic, expected * (1 + 0.75 / n + 2.25 / n**2), rtol=RTOL
    )
    fn = feature_normality(x)
    np.testing.assert_allclose(fn.ad.statistic, expected, rtol=RTOL)
    np.testing.assert_array_equal(ad.passes(), ad.adjusted_statistic < AD_CRITICAL_5PCT)


@pytest.mark.parametrize("n", [1000, 2000, 5000, 10000])
def test_ad_statistic_far_outlier_matches_scipy(n):
    """A value ~sqrt(n) standard deviations out: a sparse feature (one nonzero
    row, as ReLU embeddings have) and a single huge outlier. Φ(-|w|) underflows
    in double precision for |w| > ~37.5, which any n > ~1400 allows; scipy's
    log_ndtr stays finite there and so must we."""
    rng = np.random.default_rng(n)
    sparse = np.zeros(n)
    sparse[n // 3] = 1.0
    outlier = rng.standard_normal(n)
    outlier[7] = 1e6
    x = np.column_stack([sparse, outlier, rng.standard_normal(n)])
    expected = np.array([scipy_ad(x[:, j]) for j in range(3)])
    assert np.isfinite(expected).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        got = anderson_darling(x).statistic
        fn = feature_normality(x)
    np.testing.assert_allclose(got, expected, rtol=RTOL)
    np.testing.assert_allclose(fn.ad.statistic, expected, rtol=RTOL)
    assert fn.ad.pvalue[0] == 0.0 and fn.ad.pvalue[1] == 0.0


# Heavy or long tails at n = 5000 put every column outside statsmodels' accurate
# range (some |w| > 6); the scipy comparison covers those cases.
SM_CASES = [c for c in CASES if c.values not in {("student_t3", 5000), ("exponential_scaled_shifted", 5000)}]


@pytest.mark.parametrize("dist, n", SM_CASES)
def test_ad_matches_statsmodels(dist, n):
    x = make(dist, n)
    ours = feature_normality(x).ad
    reliable = max_abs_z(x) <= STATSMODELS_MAX_Z
    assert reliable.any()
    with np.errstate(all="ignore"):
        a2_ref = anderson_statistic(x, dist="norm", fit=True, axis=0)
    a2_sm, p_sm = statsmodels_normal_ad(x)
    np.testing.assert_array_equal(a2_sm, a2_ref)
    np.testing.assert_allclose(ours.statistic[reliable], a2_sm[reliable], rtol=RTOL)
    # statsmodels' vectorised branch extrapolates above 13; compare below it.
    in_range = reliable & (ours.adjusted_statistic <= 13)
    np.testing.assert_allclose(ours.pvalue[in_range], p_sm[in_range], rtol=RTOL, atol=TINY)
    above = ours.adjusted_statistic > 13
    np.testing.assert_array_equal(ours.pvalue[above], 0.0)
    assert ((ours.pvalue[~above] > 0) & (ours.pvalue[~above] <= 1)).all()


@pytest.mark.parametrize("dist, n", [("uniform", 200), ("uniform", 1000), ("uniform", 5000),
                                     ("normal", 500), ("relu_normal", 300), ("normal_mixture", 400)])
def test_ad_pvalue_matches_statsmodels_scalar_branch(dist, n):
    """Column by column, statsmodels' scalar branch gives 0 above 13, as we do."""
    x = make(dist, n, d=12)
    ours = anderson_darling(x)
    for j in range(x.shape[1]):
        a2, p = statsmodels_normal_ad(x[:, j])
        np.testing.assert_allclose(ours.statistic[j], a2, rtol=RTOL)
        np.testing.assert_allclose(ours.pvalue[j], p, rtol=RTOL, atol=TINY)
        if ours.adjusted_statistic[j] > 13:
            assert p == 0.0 and ours.pvalue[j] == 0.0
        else:
            assert ours.pvalue[j] > 0.0


def test_ad_pvalue_zero_above_13_and_positive_below():
    # Uniform columns: A² grows ~0.0115 n, so n = 5000 is far above 13 and
    # n = 800 is below it; every |w| <= sqrt(3), well inside statsmodels' range.
    rng = np.random.default_rng(13)
    big = rng.uniform(size=5000)
    small = rng.uniform(size=800)
    res_big = anderson_darling(big[:, None])
    res_small = anderson_darling(small[:, None])
    assert res_big.adjusted_statistic[0] > 13
    assert 0.6 < res_small.adjusted_statistic[0] <= 13
    assert res_big.pvalue[0] == 0.0
    assert statsmodels_normal_ad(big)[1] == 0.0
    p_small = statsmodels_normal_ad(small)[1]
    assert 0.0 < p_small < 1e-3
    np.testing.assert_allclose(res_small.pvalue[0], p_small, rtol=RTOL)


def test_ad_pvalue_branches_all_covered():
    """Normal columns at moderate n cover the three lower branches of the
    approximation; each agrees with statsmodels."""
    x = make("normal", 200, d=400)
    ours = anderson_darling(x)
    a = ours.adjusted_statistic
    assert (a < 0.2).any() and ((a >= 0.2) & (a < 0.34)).any() and ((a >= 0.34) & (a < 0.6)).any() and (a >= 0.6).any()
    _, p_sm = statsmodels_normal_ad(x)
    np.testing.assert_allclose(ours.pvalue, p_sm, rtol=RTOL)
    assert ((ours.pvalue > 0) & (ours.pvalue <= 1)).all()


# ----------------------------------------------------------------------------
# D'Agostino-Pearson


@pytest.mark.parametrize("dist, n", CASES)
def test_dp_matches_scipy(dist, n):
    x = make(dist, n)
    dp = dagostino_pearson(x)
    nt = ss.normaltest(x, axis=0)
    assert dp.n == n
    np.testing.assert_allclose(dp.statistic, nt.statistic, rtol=RTOL)
    np.testing.assert_allclose(dp.pvalue, nt.pvalue, rtol=RTOL, atol=TINY)
    np.testing.assert_allclose(dp.z_skewness, ss.skewtest(x, axis=0).statistic, rtol=RTOL)
    np.testing.assert_allclose(dp.z_kurtosis, ss.kurtosistest(x, axis=0).statistic, rtol=RTOL)
    np.testing.assert_allclose(dp.skewness, ss.skew(x, axis=0, bias=True), rtol=RTOL)
    np.testing.assert_allclose(dp.excess_kurtosis, ss.kurtosis(x, axis=0, fisher=True, bias=True), rtol=RTOL)

    fn = feature_normality(x)
    for field in ("statistic", "pvalue", "z_skewness", "z_kurtosis", "skewness", "excess_kurtosis"):
        np.testing.assert_allclose(getattr(fn.dp, field), getattr(dp, field), rtol=1e-9, atol=TINY, err_msg=field)
    np.testing.assert_allclose(fn.mean, x.mean(axis=0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(fn.std, x.std(axis=0, ddof=1), rtol=1e-12)
    assert not fn.constant.any()


def test_dp_pvalue_is_chi2_2_survival():
    x = make("laplace", 500)
    dp = dagostino_pearson(x)
    np.testing.assert_allclose(dp.pvalue, ss.chi2.sf(dp.statistic, 2), rtol=RTOL, atol=TINY)
    np.testing.assert_allclose(dp.statistic, dp.z_skewness**2 + dp.z_kurtosis**2, rtol=1e-12)


# ----------------------------------------------------------------------------
# layout, threads, order, dtype


def _fields(res) -> dict[str, np.ndarray]:
    if hasattr(res, "ad"):  # FeatureNormality
        out = {f"ad.{k}": getattr(res.ad, k) for k in ("statistic", "adjusted_statistic", "pvalue")}
        out.update({f"dp.{k}": getattr(res.dp, k) for k in
                    ("statistic", "pvalue", "z_skewness", "z_kurtosis", "skewness", "excess_kurtosis")})
        out.update(mean=res.mean, std=res.std, constant=res.constant)
        return out
    names = [k for k in ("statistic", "adjusted_statistic", "pvalue", "z_skewness", "z_kurtosis",
                         "skewness", "excess_kurtosis") if hasattr(res, k)]
    return {k: getattr(res, k) for k in names}


FUNCS = [pytest.param(f, id=f.__name__) for f in (anderson_darling, dagostino_pearson, feature_normality)]


@pytest.mark.parametrize("func", FUNCS)
def test_axis1_equals_transposed_axis0(func):
    x = make("normal_mixture", 500)
    a = _fields(func(x, axis=0))
    b = _fields(func(np.ascontiguousarray(x.T), axis=1))
    c = _fields(func(x.T, axis=1))  # a transposed view, not a copy
    assert a.keys() == b.keys() == c.keys()
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-12, err_msg=k)
        np.testing.assert_allclose(c[k], a[k], rtol=1e-12, err_msg=k)


@pytest.mark.parametrize("func", [anderson_darling, dagostino_pearson], ids=["ad", "dp"])
def test_extra_axes_are_features(func):
    rng = np.random.default_rng(3)
    x = rng.laplace(size=(300, 3, 4))
    res = func(x)
    flat = func(x.reshape(300, 12))
    assert res.statistic.shape == (3, 4)
    np.testing.assert_allclose(res.statistic.reshape(12), flat.statistic, rtol=1e-12)
    np.testing.assert_allclose(res.pvalue.reshape(12), flat.pvalue, rtol=1e-12, atol=TINY)


@pytest.mark.parametrize("func", FUNCS)
def test_threads_are_bit_identical(func):
    # n = 5000 gives blocks of ~104 features: 300 features make three blocks.
    x = make("laplace", 5000, d=300)
    x[:, 17] = 2.0  # a constant feature among them
    one = _fields(func(x, threads=1))
    four = _fields(func(x, threads=4))
    default = _fields(func(x))
    for k in one:
        np.testing.assert_array_equal(four[k], one[k], err_msg=k)
        np.testing.assert_array_equal(default[k], one[k], err_msg=k)


@pytest.mark.parametrize("func", FUNCS)
def test_feature_order_is_a_permutation(func):
    x = make("exponential_scaled_shifted", 500, d=260)
    perm = np.random.default_rng(5).permutation(x.shape[1])
    base = _fields(func(x))
    permuted = _fields(func(x[:, perm]))
    for k in base:
        np.testing.assert_allclose(permuted[k], base[k][perm], rtol=1e-12, err_msg=k)


@pytest.mark.parametrize("func", FUNCS)
def test_float32_equals_float64_cast(func):
    x32 = make("laplace", 500).astype(np.float32)
    a = _fields(func(x32))
    b = _fields(func(x32.astype(np.float64)))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        if k != "constant":
            assert a[k].dtype == np.float64, k


# ----------------------------------------------------------------------------
# constant features and small samples

CONSTANT_VALUES = [0.0, 3.7, -1e6, 0.1, 1 / 3, 1e-300]


def _with_constant_columns(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    x = rng.standard_normal((n, 12))
    cols = np.array([0, 3, 4, 8, 10, 11])
    for c, v in zip(cols, CONSTANT_VALUES):
        x[:, c] = v
    mask = np.zeros(12, dtype=bool)
    mask[cols] = True
    return x, mask


@pytest.mark.parametrize("n", [20, 500, 5000])
def test_constant_features_give_nan_without_warnings(n):
    x, mask = _with_constant_columns(n)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fn = feature_normality(x)
        ad = anderson_darling(x)
        dp = dagostino_pearson(x)
    np.testing.assert_array_equal(fn.constant, mask)
    for name, arr in {**_fields(fn), **{f"AD {k}": v for k, v in _fields(ad).items()},
                      **{f"DP {k}": v for k, v in _fields(dp).items()}}.items():
        if name in ("constant", "mean", "std"):
            continue
        assert np.isnan(arr[mask]).all(), name
        assert np.isfinite(arr[~mask]).all(), name
    # the others agree with references
    np.testing.assert_allclose(ad.statistic[~mask], [scipy_ad(x[:, j]) for j in np.flatnonzero(~mask)], rtol=RTOL)
    np.testing.assert_allclose(dp.pvalue[~mask], ss.normaltest(x[:, ~mask]).pvalue, rtol=RTOL)
    np.testing.assert_allclose(fn.mean[mask], np.array(CONSTANT_VALUES), rtol=1e-15)
    assert not fn.ad.passes()[mask].any()


def test_all_zero_matrix_is_all_constant():
    x = np.zeros((100, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fn = feature_normality(x)
    assert fn.constant.all()
    assert np.isnan(fn.ad.statistic).all() and np.isnan(fn.dp.pvalue).all()


@pytest.mark.parametrize("n", [0, 1, 2, 7])
def test_anderson_darling_needs_8_samples(n):
    x = np.random.default_rng(n).standard_normal((n, 3))
    with pytest.raises(GaussAuditError, match="at least 8"):
        anderson_darling(x)


def test_anderson_darling_8_samples_is_enough():
    x = make("normal", 20)[:8]
    res = anderson_darling(x)
    np.testing.assert_allclose(res.statistic, [scipy_ad(x[:, j]) for j in range(x.shape[1])], rtol=RTOL)


@pytest.mark.parametrize("n", [0, 8, 12, 19])
def test_dagostino_pearson_needs_20_samples(n):
    x = np.random.default_rng(n).standard_normal((n, 3))
    with pytest.raises(GaussAuditError, match="at least 20"):
        dagostino_pearson(x)
    with pytest.raises(GaussAuditError, match="at least 20"):
        feature_normality(x)
    with pytest.raises(ValueError):  # GaussAuditError is a ValueError
        dagostino_pearson(x)


# ----------------------------------------------------------------------------
# RunningMoments


def _state_of(values) -> RunningMoments:
    return RunningMoments().update(values)


def _assert_matches(state: RunningMoments, data: np.ndarray, rtol=1e-12):
    assert state.count == data.size and isinstance(state.count, int)
    np.testing.assert_allclose(state.mean, data.mean(), rtol=rtol)
    np.testing.assert_allclose(state.variance, data.var(), rtol=rtol)
    np.testing.assert_allclose(state.std, data.std(), rtol=rtol)
    np.testing.assert_allclose(state.cv, data.std() / data.mean(), rtol=rtol)


def _random_split(rng, data, parts):
    cuts = np.sort(rng.integers(0, data.size + 1, size=parts - 1))
    return np.split(data, cuts)  # repeated cuts give empty parts


@pytest.mark.parametrize("seed", range(6))
def test_running_moments_merge_of_parts_equals_whole(seed):
    rng = np.random.default_rng(seed)
    data = rng.lognormal(1.0, 0.5, size=int(rng.integers(1, 3000)))
    parts = _random_split(rng, data, int(rng.integers(2, 12)))
    parts.insert(int(rng.integers(0, len(parts) + 1)), data[:0])  # an explicit empty part
    assert any(p.size == 0 for p in parts)
    merged = RunningMoments()
    for p in parts:
        merged = merged.merge(_state_of(p))
    _assert_matches(merged, data)
    # merge order only changes round-off
    order = rng.permutation(len(parts))
    shuffled = RunningMoments()
    for i in order:
        shuffled = _state_of(parts[i]).merge(shuffled)
    assert shuffled.count == merged.count
    np.testing.assert_allclose(
        [shuffled.mean, shuffled.variance, shuffled.cv], [merged.mean, merged.variance, merged.cv], rtol=1e-12
    )
    # a tree of merges gives the same too
    states = [_state_of(p) for p in parts]
    while len(states) > 1:
        states = [states[i].merge(states[i + 1]) if i + 1 < len(states) else states[i] for i in range(0, len(states), 2)]
    _assert_matches(states[0], data)


@pytest.mark.parametrize("seed", range(4))
def test_running_moments_chunked_update_equals_one_update(seed):
    rng = np.random.default_rng(100 + seed)
    data = rng.normal(5.0, 2.0, size=2500)
    whole = _state_of(data)
    chunked = RunningMoments()
    for part in _random_split(rng, data, 9):
        assert chunked.update(part) is chunked
    assert chunked.count == whole.count == data.size
    np.testing.assert_allclose([chunked.mean, chunked.variance, chunked.cv], [whole.mean, whole.variance, whole.cv], rtol=1e-12)
    _assert_matches(chunked, data)


def test_running_moments_merge_does_not_mutate():
    a, b = _state_of([1.0, 2.0, 3.0]), _state_of([10.0, 20.0])
    snapshot = (a.count, a.mean, a.m2, b.count, b.mean, b.m2)
    m = a.merge(b)
    assert (a.count, a.mean, a.m2, b.count, b.mean, b.m2) == snapshot
    assert m is not a and m is not b and m.count == 5
    empty = RunningMoments()
    assert a.merge(empty) is not a and a.merge(empty).count == 3
    assert empty.merge(a) is not a and empty.merge(a).mean == a.mean


def test_running_moments_empty_and_zero_mean():
    e = RunningMoments().update(np.array([]))
    assert e.count == 0
    assert np.isnan(e.variance) and np.isnan(e.std) and np.isnan(e.cv)
    assert e.merge(RunningMoments()).count == 0
    z = _state_of([-1.0, 1.0])
    assert z.variance == 1.0 and np.isnan(z.cv)


@pytest.mark.parametrize("offset", [1e6, 1e9])
def test_running_moments_large_offset_keeps_variance(offset):
    rng = np.random.default_rng(int(offset) % 97)
    data = offset + rng.standard_normal(20000) * 1e-2
    chunked = RunningMoments()
    for part in _random_split(rng, data, 17):
        chunked.update(part)
    merged = RunningMoments()
    for part in _random_split(rng, data, 23):
        merged = merged.merge(_state_of(part))
    for state in (chunked, merged):
        assert state.count == data.size
        np.testing.assert_allclose(state.mean, data.mean(), rtol=1e-12)
        np.testing.assert_allclose(state.variance, np.var(data), rtol=RTOL)
        np.testing.assert_allclose(state.cv, np.std(data) / np.mean(data), rtol=RTOL)


def test_running_moments_accepts_2d_and_float32():
    x = np.random.default_rng(2).random((30, 4)).astype(np.float32)
    s = _state_of(x)
    _assert_matches(s, x.astype(np.float64).ravel())


# ----------------------------------------------------------------------------
# prep


def test_row_norms_match_numpy():
    rng = np.random.default_rng(21)
    x = rng.standard_normal((300, 17)) * rng.lognormal(size=(300, 1))
    x[5] = 0.0
    for arr in (x, x.astype(np.float32)):
        got = row_norms(arr)
        assert got.dtype == np.float64 and got.shape == (300,)
        np.testing.assert_allclose(got, np.linalg.norm(arr.astype(np.float64), axis=1), rtol=1e-12)
    assert row_norms(x)[5] == 0.0
    np.testing.assert_allclose(row_norms([[3.0, 4.0], [5.0, 12.0]]), [5.0, 13.0], rtol=1e-15)


def test_row_norms_float32_accumulates_in_float64():
    # 1e20 squared overflows float32; the norm must not.
    x = np.full((2, 4), 1e20, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = row_norms(x)
    np.testing.assert_allclose(got, 2 * np.float64(np.float32(1e20)), rtol=1e-12)


def test_l2_normalize_unit_rows_and_zero_rows():
    rng = np.random.default_rng(22)
    x = rng.standard_normal((200, 9)) * rng.lognormal(size=(200, 1))
    x[[3, 50, 199]] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        u = l2_normalize(x)
        u_given = l2_normalize(x, row_norms(x))
    np.testing.assert_array_equal(u, u_given)
    assert u.dtype == np.float64 and np.isfinite(u).all()
    np.testing.assert_array_equal(u[[3, 50, 199]], 0.0)
    nz = np.ones(200, dtype=bool)
    nz[[3, 50, 199]] = False
    np.testing.assert_allclose(np.linalg.norm(u[nz], axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(u[nz], x[nz] / np.linalg.norm(x[nz], axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(l2_normalize(np.array([[3.0, 4.0]])), [[0.6, 0.8]], rtol=1e-15)


def test_l2_normalize_does_not_modify_input():
    x = np.random.default_rng(1).standard_normal((10, 3))
    before = x.copy()
    l2_normalize(x)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("n_total, sample", [(10, 3), (1000, 20), (100_000, 10_000), (50, 49)])
def test_sample_indices_properties(n_total, sample):
    idx = sample_indices(n_total, sample, seed=0)
    assert idx is not None and len(idx) == sample
    assert np.issubdtype(idx.dtype, np.integer)
    assert (np.diff(idx) > 0).all()  # sorted and unique
    assert idx[0] >= 0 and idx[-1] < n_total
    np.testing.assert_array_equal(sample_indices(n_total, sample, seed=0), idx)
    other = sample_indices(n_total, sample, seed=1)
    assert not np.array_equal(other, idx)


@pytest.mark.parametrize("n_total, sample", [(10, 0), (1000, 0), (10, 10), (10, 11), (5, 10_000)])
def test_sample_indices_none_when_every_row_is_used(n_total, sample):
    assert sample_indices(n_total, sample, seed=0) is None
    assert sample_indices(n_total, sample, seed=7) is None


def test_sample_indices_uniform_over_seeds():
    n_total, sample, seeds = 100, 30, 2000
    counts = np.zeros(n_total)
    for s in range(seeds):
        counts[sample_indices(n_total, sample, seed=s)] += 1
    expected = seeds * sample / n_total
    sd = np.sqrt(seeds * (sample / n_total) * (1 - sample / n_total))
    assert np.abs(counts - expected).max() < 5 * sd
    assert counts.sum() == seeds * sample
