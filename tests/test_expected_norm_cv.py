"""The "Spread of variance" section's expected norm CV: beside the observed CV of
the row norms, the first-order CV a Gaussian with the rows' mean and covariance
has, checked on data whose answer is known (scan, as a user types it)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_cli_many, save_npy

N, D = 20000, 64
#: Fast scans: the section needs only the covariance (the principal projections ask for it).
FAST = ["--calibrate", "0", "--mv-sample", "0", "--projections", "0"]


def _first_order_cv(x: np.ndarray) -> float:
    """½√(4μᵀΣμ + 2 tr Σ²)/(‖μ‖² + tr Σ) of the rows' mean and covariance (ddof 1)."""
    mu, cov = x.mean(axis=0), np.cov(x, rowvar=False)
    return 0.5 * np.sqrt(4 * mu @ cov @ mu + 2 * np.sum(cov * cov)) / (mu @ mu + np.trace(cov))


def _section(out: str) -> str:
    """The terminal's "Spread of variance" section, as one line of words."""
    start = out.index("Spread of variance")
    return " ".join(out[start:out.index("Null bands", start) if "Null bands" in out[start:] else None].split())


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """x ~ N(0, Σ) with a rotated, geometrically decaying spectrum (participation ratio ≈ 37),
    and a Student-t(5) elliptical sample of the same Σ: x·√(5/χ²₅)."""
    root = tmp_path_factory.mktemp("norm_cv")
    rng = np.random.default_rng(11)
    rotation, _ = np.linalg.qr(rng.standard_normal((D, D)))
    scale = np.sqrt(np.exp(-np.arange(D) / 20.0))
    gauss = (rng.standard_normal((N, D)) * scale) @ rotation.T
    student = gauss * np.sqrt(5.0 / rng.chisquare(5, size=(N, 1)))
    save_npy(root / "gauss.npy", gauss)
    save_npy(root / "student.npy", student)
    offset = rng.standard_normal((3000, 20)) * np.linspace(0.5, 2.0, 20) + 1.5   # a mean off the origin
    save_npy(root / "offset.npy", offset)
    save_npy(root / "wide.npy", rng.standard_normal((50, 120)) + 0.3)              # fewer rows than dimensions
    save_npy(root / "unit.npy", gauss[:2000] / np.linalg.norm(gauss[:2000], axis=1, keepdims=True))
    return root, {"gauss": gauss, "student": student, "offset": offset}


def test_gaussian_rows_have_the_expected_cv_and_elliptical_t_rows_a_thicker_shell(data):
    root, arrays = data
    (rc, out, err), (rc2, out2, err2), (rc3, out3, err3), (rc4, out4, err4) = run_cli_many([
        ["scan", "gauss.npy", *FAST, "--json", "-"],
        ["scan", "student.npy", *FAST, "--json", "-"],
        ["scan", "gauss.npy", *FAST],
        ["scan", "student.npy", *FAST],
    ], cwd=root)
    assert rc == rc2 == rc3 == rc4 == 0, err + err2 + err3 + err4
    gauss, student = json.loads(out)["metrics"], json.loads(out2)["metrics"]
    # N(0, Σ), n = 20,000: the observed CV within 5% of the first-order Gaussian value
    assert gauss["norm_cv_gaussian"] == pytest.approx(1 / np.sqrt(2 * 36.87), rel=0.05)
    assert gauss["norm_cv"] == pytest.approx(gauss["norm_cv_gaussian"], rel=0.05)
    # Student-t(5): the same covariance shape, so nearly the same expected CV, but each row's
    # shared scale √(5/χ²₅) spreads the norms far more
    assert student["norm_cv_gaussian"] == pytest.approx(gauss["norm_cv_gaussian"], rel=0.1)
    assert student["norm_cv"] > 3 * student["norm_cv_gaussian"]

    section = _section(out3)
    assert f"CV of the row norms (raw, observed) {gauss['norm_cv']:.3f}" in section
    assert f"CV a Gaussian would have (1st order) ≈ {gauss['norm_cv_gaussian']:.3f}" in section
    assert "to first order (delta method)" in section and "a shell about as thick as a Gaussian's" in section
    section = _section(out4)
    assert f"≈ {student['norm_cv_gaussian']:.3f}" in section and "a thicker shell than a Gaussian's" in section


def test_expected_cv_is_the_formula_of_the_raw_rows(data):
    """Every tested row (--sample 0): the value is the formula of their raw mean and covariance,
    whether the tests ran on normalised rows or not, and with fewer rows than dimensions."""
    root, arrays = data
    results = run_cli_many([
        ["scan", "offset.npy", *FAST, "--sample", "0", "--json", "-"],
        ["scan", "offset.npy", *FAST, "--sample", "0", "--no-normalize", "--json", "-"],
        ["scan", "wide.npy", *FAST, "--sample", "0", "--json", "-"],
        ["scan", "unit.npy", *FAST, "--json", "-"],
        ["scan", "unit.npy", *FAST],
    ], cwd=root)
    for rc, out, err in results:
        assert rc == 0, err
    wide = np.load(root / "wide.npy")
    for (_, out, _), x in zip(results[:3], (arrays["offset"], arrays["offset"], wide)):
        metrics = json.loads(out)["metrics"]
        assert metrics["norm_cv_gaussian"] == pytest.approx(_first_order_cv(x), rel=1e-9)
    # rows that arrived L2-normalised: no Gaussian has their CV of 0, so there is nothing to set beside it
    assert json.loads(results[3][1])["metrics"]["norm_cv_gaussian"] is None
    assert "CV a Gaussian would have" not in results[4][1]
