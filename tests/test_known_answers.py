"""Known answers through the library API: ``gaussaudit.audit`` on in-memory arrays.

Gaussian data must pass the paper's rule with the numbers theory predicts (mean
A² ≈ 0.38, mean DP p ≈ 0.5, ~95 % of features passing); heavy-tailed, clustered,
ReLU-like and discretised data must fail with the failing condition named.
"""
from __future__ import annotations

import inspect
import json
import math

import numpy as np
import pytest
import scipy.stats as ss

from gaussaudit import AuditConfig, GaussAuditError, audit
from gaussaudit.prep import l2_normalize, sample_indices
from gaussaudit.stats import AD_CRITICAL_5PCT

_ANDERSON_KW = {"method": "interpolate"} if "method" in inspect.signature(ss.anderson).parameters else {}

AD_NAME = "AD mean A²"
DP_NAME = "DP mean p"


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def gaussian(n=5000, d=256, seed=0) -> np.ndarray:
    return rng(seed).standard_normal((n, d))


def sphere(n=5000, d=128, seed=1) -> np.ndarray:
    g = rng(seed).standard_normal((n, d))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def assert_summaries_finite(report):
    for name in ("ad_mean", "ad_median", "ad_pass_fraction", "dp_mean_p", "dp_median_p", "dp_pass_fraction",
                 "norm_mean", "norm_std", "norm_cv", "skewness_median", "skewness_median_abs",
                 "excess_kurtosis_median", "excess_kurtosis_median_abs"):
        assert math.isfinite(getattr(report, name)), name


def assert_fails_with_reasons(report):
    """Not Gaussian, and every failed condition (only those) is named in the reasons."""
    v = report.verdict
    assert v.gaussian is False
    failed = [c for c in v.conditions if not c.passed]
    assert failed
    assert len(v.reasons) == len(failed)
    for c, reason in zip(failed, v.reasons):
        assert reason.startswith(c.name), (c.name, reason)
        assert f"{c.threshold:g}" in reason
    return {c.name for c in failed}


# ----------------------------------------------------------------------------
# Gaussian data passes


def test_gaussian_raw_matches_null_expectations():
    """Raw standard normal features are exactly H0: mean A² ≈ 0.38, p ~ U(0, 1)."""
    r = audit(gaussian(), normalize=False)
    assert r.verdict.gaussian is True
    assert r.n_used == 5000 and r.dim == 256 and r.n_tested == 256
    assert 0.3 < r.ad_mean < 0.5
    assert 0.4 < r.dp_mean_p < 0.6
    assert r.ad_pass_fraction > 0.85
    assert r.dp_pass_fraction > 0.85
    assert abs(r.skewness_median) < 0.02 and abs(r.excess_kurtosis_median) < 0.05
    assert len(r.verdict.reasons) == 2  # when Gaussian: one reason per condition, why it passed
    assert r.verdict.reasons[0].startswith(AD_NAME) and r.verdict.reasons[1].startswith(DP_NAME)
    assert r.verdict.rule == "paper"


def test_gaussian_normalized_passes():
    r = audit(gaussian(seed=2))  # default: L2-normalised rows
    assert r.verdict.gaussian is True
    assert r.config.normalize is True
    assert 0.3 < r.ad_mean < 0.5
    assert 0.4 < r.dp_mean_p < 0.6
    assert r.ad_pass_fraction > 0.85 and r.dp_pass_fraction > 0.85


def test_gaussian_norm_cv_is_chi_cv():
    """CV of raw standard normal rows: chi(d) has CV ≈ 1/sqrt(2d)."""
    d = 128
    r = audit(gaussian(d=d, seed=3))
    assert r.norm_cv == pytest.approx(1 / np.sqrt(2 * d), rel=0.05)
    assert r.norm_mean == pytest.approx(np.sqrt(d - 0.5), rel=0.01)


def test_sphere_passes_with_zero_norm_cv():
    x = sphere()
    r = audit(x)
    assert r.verdict.gaussian is True
    assert 0.3 < r.ad_mean < 0.5
    assert 0.35 < r.dp_mean_p < 0.65
    assert r.ad_pass_fraction > 0.85 and r.dp_pass_fraction > 0.85
    assert r.norm_cv < 1e-12  # every raw row has norm 1
    assert r.norm_mean == pytest.approx(1.0, rel=1e-12)
    # already unit rows: normalising again changes nothing beyond round-off
    raw = audit(x, normalize=False)
    assert raw.ad_mean == pytest.approx(r.ad_mean, rel=1e-9)
    assert raw.dp_mean_p == pytest.approx(r.dp_mean_p, rel=1e-9)


def test_summaries_follow_the_paper_definitions():
    """ad_mean = mean scipy.stats.anderson A², dp_mean_p = mean normaltest p, on the
    seeded sample of L2-normalised rows; pass fractions as DESIGN.md defines them."""
    x = rng(4).laplace(size=(3000, 24)) + rng(5).standard_normal((3000, 24))
    r = audit(x, sample=1000, seed=3)
    u = l2_normalize(x[sample_indices(3000, 1000, 3)])
    a2 = np.array([ss.anderson(u[:, j], "norm", **_ANDERSON_KW).statistic for j in range(24)])
    p = ss.normaltest(u, axis=0).pvalue
    n = 1000
    assert r.ad_mean == pytest.approx(a2.mean(), rel=1e-9)
    assert r.ad_median == pytest.approx(np.median(a2), rel=1e-9)
    assert r.ad_pass_fraction == np.mean(a2 * (1 + 0.75 / n + 2.25 / n**2) < AD_CRITICAL_5PCT)
    assert r.dp_mean_p == pytest.approx(p.mean(), rel=1e-9)
    assert r.dp_pass_fraction == np.mean(p > 0.05)
    norms = np.linalg.norm(x, axis=1)  # CV over every raw row, not just the sample
    assert r.norm_cv == pytest.approx(norms.std() / norms.mean(), rel=1e-10)
    assert r.verdict.gaussian is bool(a2.mean() < 0.752 and p.mean() > 0.05)


# ----------------------------------------------------------------------------
# non-Gaussian data fails, naming why


def test_laplace_fails():
    r = audit(rng(10).laplace(size=(5000, 64)))
    failed = assert_fails_with_reasons(r)
    assert AD_NAME in failed and DP_NAME in failed
    assert r.ad_mean > 5 and r.dp_mean_p < 1e-6
    assert r.ad_pass_fraction < 0.05 and r.dp_pass_fraction < 0.05
    assert r.excess_kurtosis_median > 1.0  # heavy tails reported as effect size


def test_student_t3_fails():
    r = audit(rng(11).standard_t(3, size=(5000, 64)))
    failed = assert_fails_with_reasons(r)
    assert AD_NAME in failed and DP_NAME in failed
    assert r.ad_mean > 5 and r.dp_mean_p < 1e-6
    assert r.ad_pass_fraction < 0.05 and r.dp_pass_fraction < 0.05


def test_clustered_fails():
    g = rng(12)
    centres = 8 * g.standard_normal((10, 32))
    x = centres[g.integers(0, 10, 5000)] + g.standard_normal((5000, 32))
    r = audit(x)
    failed = assert_fails_with_reasons(r)
    assert AD_NAME in failed
    assert r.ad_mean > 10
    assert r.ad_pass_fraction < 0.1
    assert r.dp_mean_p < 0.2


def test_relu_features_fail():
    r = audit(np.maximum(0.0, rng(13).standard_normal((5000, 32))))
    failed = assert_fails_with_reasons(r)
    assert AD_NAME in failed and DP_NAME in failed
    assert r.ad_mean > 50 and r.dp_mean_p < 1e-6
    assert r.ad_pass_fraction == 0.0
    assert r.skewness_median > 0.5  # a half-normal spike at 0 is right-skewed


def test_discretised_gaussian_fails_on_ad_only():
    """Rounding keeps skewness and kurtosis near normal (DP passes) but the
    steps in the empirical CDF fail AD: the reasons name only the AD clause."""
    x = np.round(rng(14).standard_normal((5000, 32)))
    r = audit(x, normalize=False)
    failed = assert_fails_with_reasons(r)
    assert failed == {AD_NAME}
    assert r.dp_mean_p > 0.05
    assert r.verdict.reasons[0].startswith(AD_NAME)


def test_sparse_feature_gives_finite_summaries():
    """A feature active in one row of 5000 (common in ReLU embeddings) is not
    constant: its A² is finite (scipy: ~1931) and enters the mean like any other."""
    x = rng(15).standard_normal((5000, 16))
    x[:, 3] = 0.0
    x[1234, 3] = 1.0
    r = audit(x, normalize=False)
    expected = np.array([ss.anderson(x[:, j], "norm", **_ANDERSON_KW).statistic for j in range(16)])
    assert np.isfinite(expected).all()
    assert r.n_tested == 16 and len(r.constant_features) == 0
    assert_summaries_finite(r)
    assert r.ad_mean == pytest.approx(expected.mean(), rel=1e-6)
    assert r.worst_ad_features[0].feature == 3
    assert_fails_with_reasons(r)
    assert r.to_dict()["metrics"]["ad"]["mean"] is not None


# ----------------------------------------------------------------------------
# options


def _scale_mixture(seed=20) -> np.ndarray:
    g = rng(seed)
    return g.standard_normal((4000, 32)) * g.lognormal(0.0, 0.7, size=(4000, 1))


def test_normalize_option_is_honoured():
    """Gaussian directions with random per-row scale: a heavy-tailed scale
    mixture raw, a Gaussian-like direction after normalisation."""
    x = _scale_mixture()
    normed = audit(x)
    raw = audit(x, normalize=False)
    assert normed.config.normalize is True and raw.config.normalize is False
    assert normed.ad_mean != raw.ad_mean and normed.dp_mean_p != raw.dp_mean_p
    assert raw.verdict.gaussian is False
    assert raw.ad_mean > 10 * normed.ad_mean
    assert normed.ad_mean < AD_CRITICAL_5PCT
    # norms are always on raw rows
    assert raw.norm_cv == normed.norm_cv
    assert raw.norm_mean == normed.norm_mean
    assert raw.norm_cv > 0.5
    assert normed.to_dict()["settings"]["normalize"] is True
    assert raw.to_dict()["settings"]["normalize"] is False


def test_audit_config_object_and_keyword_override():
    x = _scale_mixture(21)
    via_config = audit(x, AuditConfig(normalize=False, sample=1000, seed=4))
    via_kwargs = audit(x, normalize=False, sample=1000, seed=4)
    overridden = audit(x, AuditConfig(normalize=False, sample=1000, seed=4), normalize=True)
    assert via_config.ad_mean == via_kwargs.ad_mean
    assert overridden.config.normalize is True and overridden.ad_mean != via_config.ad_mean


def test_sample_size_and_reproducibility():
    x = rng(30).laplace(size=(3000, 16)) + 3 * rng(31).standard_normal((3000, 16))
    a = audit(x, sample=1000, seed=0)
    b = audit(x, sample=1000, seed=0)
    c = audit(x, sample=1000, seed=1)
    assert a.n_used == 1000 and a.n_total == 3000
    for name in ("ad_mean", "ad_median", "ad_pass_fraction", "dp_mean_p", "dp_median_p", "dp_pass_fraction",
                 "norm_cv", "skewness_median", "excess_kurtosis_median"):
        assert getattr(a, name) == getattr(b, name), name
    np.testing.assert_array_equal(a.features.ad.statistic, b.features.ad.statistic)
    np.testing.assert_array_equal(a.features.dp.pvalue, b.features.dp.pvalue)
    assert c.n_used == 1000
    assert c.ad_mean != a.ad_mean
    assert c.norm_cv == a.norm_cv  # norms use every row whatever the sample


@pytest.mark.parametrize("sample", [0, 3000, 3001, 10_000])
def test_sample_zero_or_too_large_uses_every_row(sample):
    x = rng(32).standard_normal((3000, 8))
    r = audit(x, sample=sample)
    assert r.n_used == 3000 == r.n_total
    assert r.config.sample == sample
    full = audit(x, sample=0, seed=5)  # the seed is irrelevant when every row is used
    assert r.ad_mean == full.ad_mean and r.dp_mean_p == full.dp_mean_p


def test_default_sample_is_10000():
    x = rng(33).standard_normal((12_000, 4)).astype(np.float32)
    r = audit(x)
    assert r.n_total == 12_000 and r.n_used == 10_000
    assert r.dtype == "float32"


# ----------------------------------------------------------------------------
# constant features


def test_zero_columns_are_constant_and_left_out():
    x = rng(40).standard_normal((2000, 131))
    zero_cols = [2, 9, 130]
    x[:, zero_cols] = 0.0
    r = audit(x)
    assert len(r.constant_features) == 3
    np.testing.assert_array_equal(r.constant_features, zero_cols)
    assert r.n_tested == 128
    assert_summaries_finite(r)
    assert r.verdict.gaussian is True  # the 128 Gaussian features still pass
    assert all(w.feature not in zero_cols for w in r.worst_ad_features)
    assert r.skewness_worst.feature not in zero_cols and r.excess_kurtosis_worst.feature not in zero_cols
    assert np.isnan(r.features.ad.statistic[zero_cols]).all()
    # the summaries are exactly those of the other 128 features
    ref = audit(np.delete(x, zero_cols, axis=1))
    assert r.ad_mean == pytest.approx(ref.ad_mean, rel=1e-12)
    assert r.dp_mean_p == pytest.approx(ref.dp_mean_p, rel=1e-12)
    d = r.to_dict()
    assert d["input"]["constant_features"] == 3 and d["input"]["constant_feature_indices"] == zero_cols
    assert d["metrics"]["features_tested"] == 128


def test_constant_nonzero_column_without_normalisation():
    x = rng(41).standard_normal((1000, 10))
    x[:, 4] = 2.5
    x[:, 7] = -0.1
    r = audit(x, normalize=False)
    np.testing.assert_array_equal(r.constant_features, [4, 7])
    assert r.n_tested == 8
    assert_summaries_finite(r)


@pytest.mark.parametrize("value, normalize", [(0.0, True), (0.0, False), (3.0, False), (3.0, True)])
def test_all_constant_input_raises(value, normalize):
    # with normalize=True a matrix of equal rows normalises to equal unit rows:
    # still constant.
    x = np.full((500, 6), value)
    with pytest.raises(GaussAuditError, match="constant"):
        audit(x, normalize=normalize)


# ----------------------------------------------------------------------------
# JSON report


def _get(d, dotted):
    for part in dotted.split("."):
        d = d[part]
    return d


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


STABLE_KEYS = {
    "schema": lambda v: v == "gaussaudit.report/2",
    "input.paths": lambda v: isinstance(v, list) and all(isinstance(p, str) for p in v),
    "input.n_total": _is_int,
    "input.n_used": _is_int,
    "input.dim": _is_int,
    "input.constant_features": _is_int,
    "settings.normalize": lambda v: isinstance(v, bool),
    "settings.sample": _is_int,
    "settings.seed": _is_int,
    "metrics.norm_cv": _is_number,
    "metrics.ad.mean": _is_number,
    "metrics.ad.pass_fraction": lambda v: _is_number(v) and 0 <= v <= 1,
    "metrics.ad.critical_value": lambda v: v == 0.752,
    "metrics.dp.mean_p": lambda v: _is_number(v) and 0 <= v <= 1,
    "metrics.dp.pass_fraction": lambda v: _is_number(v) and 0 <= v <= 1,
    "metrics.dp.alpha": lambda v: v == 0.05,
    "verdict.gaussian": lambda v: isinstance(v, bool),
    "verdict.rule": lambda v: v == "paper",
    "verdict.reasons": lambda v: isinstance(v, list) and v and all(isinstance(s, str) and s for s in v),
}


def _no_nan(obj) -> bool:
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(_no_nan(v) for v in obj.values())
    if isinstance(obj, list):
        return all(_no_nan(v) for v in obj)
    return obj is None or isinstance(obj, (str, int, bool))


@pytest.mark.parametrize("per_feature", [False, True])
def test_json_report_stable_keys_and_types(per_feature):
    x = rng(50).laplace(size=(1500, 12))
    x[:, 5] = 0.0  # a constant feature: NaN per-feature values must become null
    r = audit(x, sample=1000, seed=7)
    d = r.to_dict(per_feature=per_feature)
    for key, check in STABLE_KEYS.items():
        value = _get(d, key)
        assert check(value), (key, value)
    assert d["input"]["n_total"] == 1500 and d["input"]["n_used"] == 1000 and d["input"]["dim"] == 12
    assert d["input"]["constant_features"] == 1
    assert d["settings"] == {**d["settings"], "normalize": True, "sample": 1000, "seed": 7}
    assert d["metrics"]["ad"]["mean"] == pytest.approx(r.ad_mean)
    assert d["metrics"]["dp"]["mean_p"] == pytest.approx(r.dp_mean_p)
    assert d["metrics"]["norm_cv"] == pytest.approx(r.norm_cv)
    assert d["verdict"]["gaussian"] is r.verdict.gaussian is False
    assert d["verdict"]["reasons"] == r.verdict.reasons
    assert _no_nan(d)
    text = json.dumps(d, allow_nan=False, ensure_ascii=False)
    assert json.loads(text) == d
    if per_feature:
        f = d["features"]
        for k in ("ad_statistic", "ad_pvalue", "dp_statistic", "dp_pvalue", "skewness", "excess_kurtosis"):
            assert len(f[k]) == 12, k
            assert f[k][5] is None, k
            assert all(_is_number(v) for j, v in enumerate(f[k]) if j != 5), k
    else:
        assert "features" not in d


def test_json_report_gaussian_verdict_and_zero_cv():
    r = audit(sphere(n=2000, d=64, seed=51))
    d = r.to_dict()
    assert d["verdict"]["gaussian"] is True
    assert len(d["verdict"]["reasons"]) == 2
    assert d["metrics"]["norm_cv"] is not None and d["metrics"]["norm_cv"] < 1e-12
    assert d["input"]["constant_features"] == 0
    json.dumps(d, allow_nan=False)
