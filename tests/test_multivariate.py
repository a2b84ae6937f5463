"""Projections, whitening, Mahalanobis norms, multivariate tests and the calibrated
null: agreement with pingouin, R's MVN published output and mpmath; known answers."""
from __future__ import annotations

import json
from pathlib import Path

import mpmath
import numpy as np
import pingouin
import pytest
from scipy import stats

from gaussaudit import GaussAuditError, audit
from gaussaudit.prep.whiten import covariance_basis, whiten
from gaussaudit.stats.calibration import null_band
from gaussaudit.stats.multivariate import (
    energy_test,
    expected_distance_to_normal,
    henze_zirkler,
    mahalanobis_test,
    mardia,
)
from gaussaudit.stats.projections import random_directions

from conftest import run_cli

SETOSA = np.loadtxt(Path(__file__).parent / "data" / "setosa.csv", delimiter=",", skiprows=1)

# Only what the per-sample analyses need; the heavier parts off unless a test is about them.
LIGHT = dict(mv_sample=0, mahalanobis=False, projections=0, pca_projections=0)


# --------------------------------------------------------------------------
# references: R MVN (Korkmaz et al. 2014, package vignette v5.1/v5.5 on
# iris[1:50, 1:4]) and pingouin


def test_setosa_data_is_rs_iris():
    assert SETOSA.shape == (50, 4)
    # R's iris rows 35 and 38 (1-based), where the UCI file differs
    np.testing.assert_array_equal(SETOSA[34], [4.9, 3.1, 1.5, 0.2])
    np.testing.assert_array_equal(SETOSA[37], [4.9, 3.6, 1.4, 0.1])
    np.testing.assert_allclose(SETOSA.mean(axis=0), [5.006, 3.428, 1.462, 0.246])


def test_mardia_matches_r_mvn_published_setosa():
    res = mardia(SETOSA, kurtosis_moments="asymptotic")  # MVN's asymptotic kurtosis moments
    np.testing.assert_allclose(res.skewness_statistic, 25.6643445196298, rtol=1e-12)
    np.testing.assert_allclose(res.skewness_p, 0.177185884467652, rtol=1e-12)
    np.testing.assert_allclose(res.kurtosis_statistic, 1.29499223711605, rtol=1e-12)
    np.testing.assert_allclose(res.kurtosis_p, 0.195322907441935, rtol=1e-12)
    assert (res.n, res.dim) == (50, 4)


def test_mardia_three_variable_subset_matches_published():
    res = mardia(SETOSA[:, :3], kurtosis_moments="asymptotic")
    assert round(res.skewness_statistic, 3) == 11.249 and round(res.skewness_p, 3) == 0.338
    assert round(res.kurtosis_statistic, 3) == 1.287 and round(res.kurtosis_p, 3) == 0.198


def test_mardia_small_sample_factor_below_20_rows():
    x = SETOSA[:15]
    n, p = x.shape
    res = mardia(x, kurtosis_moments="asymptotic")
    k = ((p + 1) * (n + 1) * (n + 3)) / (n * ((n + 1) * (p + 1) - 6))
    np.testing.assert_allclose(res.skewness_statistic, n * k * res.skewness / 6, rtol=1e-12)


def test_mardia_exact_moments_differ_from_asymptotic_by_the_known_bias():
    res_exact = mardia(SETOSA)
    res_asym = mardia(SETOSA, kurtosis_moments="asymptotic")
    assert res_exact.kurtosis == res_asym.kurtosis
    n, p = 50, 4
    mean = p * (p + 2) * (n - 1) / (n + 1)
    var = 8 * p * (p + 2) * (n - 3) * (n - p - 1) * (n - p + 1) / ((n + 1) ** 2 * (n + 3) * (n + 5))
    np.testing.assert_allclose(res_exact.kurtosis_statistic, (res_exact.kurtosis - mean) / np.sqrt(var), rtol=1e-12)
    with pytest.raises(ValueError):
        mardia(SETOSA, kurtosis_moments="bogus")


def test_mardia_exact_kurtosis_is_calibrated_in_high_dimension():
    # At p = 32, n = 300 the asymptotic mean p(p+2) is biased; the exact moments
    # give close to nominal 5 % rejections for Gaussian data.
    rejections = {"exact": 0, "asymptotic": 0}
    for seed in range(120):
        x = np.random.default_rng(seed).standard_normal((300, 32))
        for kind in rejections:
            rejections[kind] += mardia(x, kurtosis_moments=kind).kurtosis_p < 0.05
    assert rejections["exact"] / 120 < 0.12
    assert rejections["asymptotic"] > 2 * rejections["exact"]


@pytest.mark.parametrize("cols", [slice(None), slice(0, 3), slice(0, 2)])
def test_henze_zirkler_matches_pingouin(cols):
    x = SETOSA[:, cols]
    ours = henze_zirkler(x)
    ref = pingouin.multivariate_normality(x)
    np.testing.assert_allclose(ours.statistic, ref.hz, rtol=1e-9)
    np.testing.assert_allclose(ours.p_value, ref.pval, rtol=1e-9)


def test_henze_zirkler_matches_r_mvn_published_setosa():
    res = henze_zirkler(SETOSA)
    np.testing.assert_allclose(res.statistic, 0.9488453, rtol=1e-6)
    np.testing.assert_allclose(res.p_value, 0.04995356, rtol=1e-6)
    sub = henze_zirkler(SETOSA[:, :3])
    assert round(sub.statistic, 3) == 0.524 and round(sub.p_value, 3) == 0.831


@pytest.mark.parametrize("seed,shape", [(0, (200, 3)), (1, (500, 8)), (2, (80, 5))])
def test_henze_zirkler_matches_pingouin_on_random_data(seed, shape):
    x = np.random.default_rng(seed).standard_t(4, size=shape)
    ours, ref = henze_zirkler(x), pingouin.multivariate_normality(x)
    np.testing.assert_allclose([ours.statistic, ours.p_value], [ref.hz, ref.pval], rtol=1e-6)


def test_energy_statistic_matches_r_mvn_published_setosa():
    assert round(energy_test(SETOSA, replicates=9).statistic, 6) == 1.203397
    assert round(energy_test(SETOSA[:, :3], replicates=9).statistic, 3) == 0.786


@pytest.mark.parametrize("dim", [1, 2, 7, 64, 400])
def test_expected_distance_to_normal_matches_mpmath(dim):
    sq = np.array([0.0, 1e-3, 0.7, 4.0, float(dim), 3.0 * dim + 25.0])
    ours = expected_distance_to_normal(sq, dim)
    mpmath.mp.dps = 30
    ref = [
        float(mpmath.sqrt(2) * mpmath.gamma((dim + 1) / mpmath.mpf(2)) / mpmath.gamma(dim / mpmath.mpf(2))
              * mpmath.hyp1f1(-0.5, dim / mpmath.mpf(2), -mpmath.mpf(v) / 2))
        for v in sq
    ]
    np.testing.assert_allclose(ours, ref, rtol=1e-11)


def test_energy_pvalue_is_uniform_under_the_null_and_small_under_the_alternative():
    pvals = np.array([
        energy_test(np.random.default_rng(100 + i).standard_normal((120, 3)), replicates=39, seed=i, threads=1).p_value
        for i in range(80)
    ])
    assert 0.35 < pvals.mean() < 0.65
    assert np.mean(pvals <= 0.05) < 0.15
    heavy = np.random.default_rng(7).standard_t(2, size=(300, 3))
    assert energy_test(heavy, replicates=39).p_value <= 0.05


def test_energy_bootstrap_is_seeded_and_thread_independent():
    x = np.random.default_rng(3).standard_normal((150, 4))
    a = energy_test(x, replicates=29, seed=5, threads=1)
    b = energy_test(x, replicates=29, seed=5, threads=3)
    c = energy_test(x, replicates=29, seed=6, threads=1)
    assert a == b
    assert a.statistic == c.statistic
    assert a.replicates == 29


def test_mahalanobis_beta_law_passes_gaussian_fails_sphere():
    rng = np.random.default_rng(0)
    gauss = rng.standard_normal((3000, 20)) @ rng.standard_normal((20, 20))
    res = mahalanobis_test(gauss, replicates=39)
    assert res.rank == 20 and res.p_value > 0.05 and res.replicates == 39
    sphere = rng.standard_normal((3000, 20))
    sphere /= np.linalg.norm(sphere, axis=1, keepdims=True)
    assert mahalanobis_test(sphere, replicates=39).p_value == 1 / 40  # every replicate below the data


@pytest.mark.parametrize("n,r", [(60, 3), (400, 6), (3000, 20)])
def test_mahalanobis_ks_matches_scipy_kstest(n, r):
    # The KS distance equals scipy's exactly; the p-value is a Monte Carlo one:
    # the KS table ignores that the D² share an estimated mean and covariance
    # (its real size is ~0.2 %; tests/test_headline_size.py measures ours).
    for seed in range(6):
        x = np.random.default_rng(seed).standard_normal((n, r))
        if seed % 2:
            x = x**3  # a failing case too
        res = mahalanobis_test(x, replicates=19, seed=seed)
        xc = x - x.mean(0)
        d2 = np.einsum("ij,jk,ik->i", xc, np.linalg.inv(np.cov(x, rowvar=False)), xc)
        ref = stats.kstest(n * d2 / (n - 1) ** 2, stats.beta(r / 2, (n - r - 1) / 2).cdf)
        np.testing.assert_allclose(res.statistic, ref.statistic, rtol=1e-9)
        if seed % 2 and n >= 400:
            assert res.p_value == 1 / 20


def test_rank_deficient_data_never_crash():
    rng = np.random.default_rng(5)
    base = rng.standard_normal((300, 4))
    x = np.hstack([base, base @ rng.standard_normal((4, 6))])  # 10 columns, rank 4
    assert mardia(x).dim == 4
    assert henze_zirkler(x).dim == 4
    assert mahalanobis_test(x).rank == 4
    assert energy_test(x, replicates=9).dim == 4


# --------------------------------------------------------------------------
# whitening and projections


def test_whitening_gives_identity_covariance_and_reports_rank():
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((500, 5)) @ rng.standard_normal((5, 8))).T  # 8 features, rank 5
    basis = covariance_basis(x)
    assert basis.rank == 5
    pca = whiten(x, "pca", basis)
    zca = whiten(x, "zca", basis)
    assert pca.shape == (5, 500) and zca.shape == (8, 500)
    np.testing.assert_allclose(np.cov(pca), np.eye(5), atol=1e-9)
    # ZCA = the symmetric whitening: on the kept subspace its covariance is the projector
    kept = basis.eigenvectors[:, :5]
    np.testing.assert_allclose(np.cov(zca), kept @ kept.T, atol=1e-9)
    with pytest.raises(ValueError):
        whiten(x, "cholesky")


def test_random_directions_are_seeded_unit_and_independent_of_sample():
    a = random_directions(50, 7, seed=1)
    np.testing.assert_allclose(np.linalg.norm(a, axis=0), 1.0)
    np.testing.assert_array_equal(a, random_directions(50, 7, seed=1))
    assert not np.array_equal(a, random_directions(50, 7, seed=2))
    x = np.random.default_rng(0).standard_normal((400, 50))
    r1 = audit(x, sample=100, **{**LIGHT, "projections": 7})
    r2 = audit(x, sample=200, **{**LIGHT, "projections": 7})
    assert r1.projections_random.k == r2.projections_random.k == 7


def test_uniform_on_sphere_passes_random_projections_and_uniformity():
    x = np.random.default_rng(1).standard_normal((8000, 256))
    rep = audit(x, projections=64, pca_projections=0, mv_sample=0)
    assert rep.projections_random.ad_mean < 0.752 and rep.projections_random.dp_mean_p > 0.05
    assert rep.uniformity.rayleigh_p > 0.01 and rep.uniformity.bingham_p > 0.01
    shifted = audit(x + 0.2, projections=0, pca_projections=2, mv_sample=0, calibrate=0)
    assert shifted.uniformity.rayleigh_p < 1e-6  # a mean direction: not uniform, though Gaussian


def test_ten_separated_clusters_fail_pca_projections():
    rng = np.random.default_rng(2)
    centres = 6.0 * rng.standard_normal((10, 64))
    labels = rng.integers(0, 10, size=5000)
    x = centres[labels] + rng.standard_normal((5000, 64))
    rep = audit(x, projections=32, pca_projections=8, mv_sample=500, energy_replicates=19)
    pca = rep.projections_pca
    # the paper's rule applied to the principal projections fails (A² here; DP's
    # moment-based test is weaker against symmetric multimodal mixtures)
    assert pca.ad_mean > 0.752 and pca.ad_pass_fraction < 0.5
    assert pca.explained > 0.5
    mv = rep.multivariate
    assert mv.henze_zirkler.p_value < 0.05 and mv.energy.p_value <= 0.05


def test_gaussian_passes_everything():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6000, 24)) @ rng.standard_normal((24, 24))
    rep = audit(x, normalize=False, projections=64, pca_projections=8, mv_sample=1000, energy_replicates=39,
                calibrate=19)
    assert rep.verdict.gaussian
    for proj in (rep.projections_random, rep.projections_pca):
        assert proj.ad_mean < 0.752 and proj.dp_mean_p > 0.05
    assert rep.mahalanobis.p_value > 0.01
    mv = rep.multivariate
    assert min(mv.mardia.skewness_p, mv.mardia.kurtosis_p, mv.henze_zirkler.p_value, mv.energy.p_value) > 0.01
    assert rep.test.question == "raw" and rep.test.gaussian


def test_whiten_option_runs_tests_on_whitened_coordinates():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2000, 6)) @ rng.standard_normal((6, 6))
    rep = audit(x, normalize=False, whiten="pca", **LIGHT)
    assert rep.feature_space == "pca-whitened" and rep.effective_rank == 6
    scores = whiten(x.T, "pca")
    ref = np.array([stats.anderson(s, method="interpolate").statistic for s in scores])
    np.testing.assert_allclose(np.sort(rep.features.ad.statistic), np.sort(ref), rtol=1e-9)


def test_multivariate_tests_switch_to_principal_components_when_d_is_large():
    x = np.random.default_rng(5).standard_normal((400, 120))
    rep = audit(x, normalize=False, projections=0, pca_projections=0, mahalanobis=False, mv_sample=100,
                mv_dims=50, energy_replicates=19)
    mv = rep.multivariate
    assert mv.n == 100 and mv.dim == 20  # 5 rows per dimension at most
    assert any("near or above" in note for note in rep.notes)


# --------------------------------------------------------------------------
# calibration


def test_null_band_percentile_and_band():
    band = null_band(np.arange(1, 40), 20.0)  # R = 39: the 2nd smallest to the 2nd largest
    assert band.null_low == 2.0 and band.null_high == 38.0 and band.coverage == pytest.approx(0.9)
    assert band.percentile == pytest.approx(100 * 19.5 / 39) and band.null_mean == 20.0
    assert null_band([1.0, 2.0, 3.0], 10.0).percentile == 100.0


def test_calibrated_band_covers_gaussian_data_as_often_as_its_coverage():
    # The band from the j-th smallest to the j-th largest of R surrogates holds
    # a Gaussian sample's own value with probability (R + 1 - 2j)/(R + 1) = 90 %.
    inside = {"dp.mean_p": 0, "excess_kurtosis.median_abs": 0, "norm_cv": 0}
    trials = 60
    for seed in range(trials):
        rng = np.random.default_rng(1000 + seed)
        x = rng.standard_normal((150, 6)) * np.array([1, 2, 3, 1, 1, 5]) + 3
        rep = audit(x, sample=0, seed=seed, calibrate=19, **LIGHT)
        cal = rep.calibration
        for name in inside:
            inside[name] += (cal.norm_cv if name == "norm_cv" else cal.bands["normalised"][name]).inside
    for name, count in inside.items():
        assert 0.75 <= count / trials <= 0.98, (name, count)


def test_calibration_flags_laplace_and_is_reproducible():
    x = np.random.default_rng(8).laplace(size=(400, 10))
    a = audit(x, calibrate=19, **LIGHT)
    b = audit(x, calibrate=19, **LIGHT)
    assert not a.tests["raw"].gaussian and not a.tests["normalised"].gaussian
    assert a.calibration.bands["raw"]["statistic"].percentile == 100.0
    assert a.to_dict()["calibration"] == b.to_dict()["calibration"]


# --------------------------------------------------------------------------
# options, JSON and CLI


@pytest.mark.parametrize("option", [
    dict(whiten="cholesky"), dict(calibrate=5), dict(mv_sample=10), dict(mv_dims=0),
    dict(projections=-1), dict(energy_replicates=0), dict(calibrate=20), dict(calibrate=10),
    dict(energy_replicates=49), dict(alpha=0.7), dict(test_sample=5),
])
def test_bad_options_raise(option):
    with pytest.raises(GaussAuditError):
        audit(np.random.default_rng(0).standard_normal((100, 4)), **option)


def test_cli_json_has_the_new_sections(tmp_path):
    x = np.random.default_rng(9).standard_normal((600, 12))
    np.save(tmp_path / "x.npy", x)
    rc, out, err = run_cli("scan", "x.npy", "--json", "-", "--projections", "20", "--pca-projections", "4",
                           "--mv-sample", "300", "--energy-replicates", "19", "--calibrate", "39", cwd=tmp_path)
    assert rc == 0, err
    rep = json.loads(out)
    proj = rep["metrics"]["projections"]
    assert proj["random"]["k"] == 20 and proj["pca"]["k"] == 4
    for kind in ("random", "pca"):
        assert set(proj[kind]["ad"]) == {"mean", "pass_fraction"} and set(proj[kind]["dp"]) == {"mean_p", "pass_fraction"}
    mv = rep["metrics"]["multivariate"]
    assert {"skewness", "skewness_p", "kurtosis", "kurtosis_p"} <= set(mv["mardia"])
    assert set(mv["henze_zirkler"]) == {"statistic", "p_value"} and {"statistic", "p_value"} <= set(mv["energy"])
    assert mv["n"] == 300
    assert {"statistic", "p_value", "rank"} <= set(rep["metrics"]["mahalanobis"])
    cal = rep["calibration"]
    assert cal["replicates"] == 39 and cal["coverage"] == pytest.approx(0.9)
    for question in ("raw", "normalised"):
        for band in cal["metrics"][question].values():
            assert set(band) == {"null_low", "null_high", "null_mean", "observed", "percentile"}
        test = rep["verdict"]["tests"][question]
        assert {"gaussian", "alpha", "p_value", "null", "statistic"} <= set(test) and test["replicates"] == 39
    assert rep["verdict"]["test"] == rep["verdict"]["tests"]["normalised"]
    assert rep["metrics"]["effective_rank"] == 12


def test_cli_terminal_has_the_new_blocks_and_rejects_bad_whiten(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(10).standard_normal((300, 8)))
    rc, out, err = run_cli("scan", "x.npy", "--mv-sample", "200", "--energy-replicates", "19", cwd=tmp_path)
    assert rc == 0, err
    for text in ("Projections", "random (128 directions)", "principal (top", "Mahalanobis", "Henze-Zirkler",
                 "energy", "Headline tests", "Null bands", "Uniform on the sphere", "paper rule"):
        assert text in out
    rc, out, err = run_cli("scan", "x.npy", "--whiten", "chol", cwd=tmp_path)
    assert rc == 2 and "--whiten" in err and "Traceback" not in err


def test_projection_qq_figures_follow_the_options():
    from gaussaudit.report.figures import report_figures

    x = np.random.default_rng(11).standard_normal((300, 6))
    with_proj = [f.name for f in report_figures(audit(x, projections=8, pca_projections=3, mv_sample=0))]
    without = [f.name for f in report_figures(audit(x, **LIGHT))]
    assert {"qq_random", "qq_pca"} <= set(with_proj)
    assert not {"qq_random", "qq_pca"} & set(without) and "qq" in without


def test_audit_mahalanobis_is_the_library_test_on_the_raw_subsample():
    # the audit runs it on the multivariate subsample of the raw rows, in their top PCs
    x = np.random.default_rng(12).standard_normal((3000, 40)) @ np.random.default_rng(13).standard_normal((40, 40))
    rep = audit(x, sample=0, projections=0, pca_projections=0, mv_sample=3000, mv_dims=40, calibrate=0)
    ref = mahalanobis_test(x, replicates=19)
    np.testing.assert_allclose(rep.mahalanobis.statistic, ref.statistic, rtol=1e-6)
    assert rep.mahalanobis.rank == ref.rank == 40 and rep.mahalanobis.n == 3000
