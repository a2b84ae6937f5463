"""The Gaussian model: fit (streamed), score, the OOD flag's false-positive rate
measured by simulation, and the CLI as a user types it."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy import stats

from gaussaudit.errors import GaussAuditError
from gaussaudit.likelihood import fit, model_arrays, model_from_arrays, score
from gaussaudit.stats.gaussian_model import CovarianceState, model_from_state

from conftest import run_cli


def _anisotropic(rng, n, d):
    basis = np.linalg.qr(np.random.default_rng(99).standard_normal((d, d)))[0]
    return (rng.standard_normal((n, d)) * np.linspace(3.0, 0.5, d)) @ basis.T + 2.0


def test_scores_equal_scipy():
    rng = np.random.default_rng(0)
    x = _anisotropic(rng, 3000, 12)
    fitted = fit(x, holdout=0, run_audit=False)
    mean, cov = x.mean(axis=0), np.cov(x, rowvar=False)
    np.testing.assert_allclose(fitted.model.mean, mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fitted.model.eigenvectors * fitted.model.eigenvalues @ fitted.model.eigenvectors.T, cov,
                               rtol=1e-10, atol=1e-12)
    new = _anisotropic(rng, 500, 12) * 1.1
    s = score(fitted, new)
    np.testing.assert_allclose(s.log_likelihood, stats.multivariate_normal(mean, cov).logpdf(new), rtol=1e-10)
    inverse = np.linalg.inv(cov)
    d2 = np.einsum("ij,jk,ik->i", new - mean, inverse, new - mean)
    np.testing.assert_allclose(s.mahalanobis_sq, d2, rtol=1e-9)
    np.testing.assert_allclose(s.chi2_p, stats.chi2.sf(d2, 12), rtol=1e-8, atol=1e-300)
    assert s.flagged_by == "the χ² law" and np.isnan(s.ood_p).all()


def test_streamed_fit_of_shards_equals_one_array(tmp_path):
    rng = np.random.default_rng(1)
    x = _anisotropic(rng, 5000, 16).astype(np.float64)
    folder = tmp_path / "shards"
    folder.mkdir()
    for k, part in enumerate(np.array_split(x, 7)):
        np.save(folder / f"part_{k}.npy", part)
    a = fit(str(folder), holdout=600, seed=3, run_audit=False).model
    b = fit(x, holdout=600, seed=3, run_audit=False).model
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-13)
    np.testing.assert_allclose(a.eigenvalues, b.eigenvalues, rtol=1e-11)
    np.testing.assert_allclose(a.calibration, b.calibration, rtol=1e-10)
    # the held-out rows are out of the fit: the fit equals numpy's on the other rows
    from gaussaudit.prep import sample_indices

    held = sample_indices(5000, 600, 3)
    rest = np.delete(x, held, axis=0)
    np.testing.assert_allclose(a.mean, rest.mean(axis=0), rtol=1e-12, atol=1e-12)
    assert a.n == 4400


def test_merged_states_equal_one_pass():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1000, 5)) * 1e3 + 1e6  # far from 0: the centring matters
    whole = CovarianceState(5).update(x)
    parts = CovarianceState(5)
    for chunk in np.array_split(x, 13):
        parts.merge(CovarianceState(5).update(chunk))
    np.testing.assert_allclose(parts.covariance, np.cov(x, rowvar=False), rtol=1e-9)
    np.testing.assert_allclose(whole.covariance, parts.covariance, rtol=1e-10)


@pytest.mark.parametrize("law", ["gaussian", "t3"])
def test_ood_flag_false_positive_rate_by_simulation(law):
    """Rows from the reference law are flagged at rate <= fpr (conformal: whatever
    the law), measured over 300 fits; the χ² flag holds it only for Gaussian rows."""
    fpr, reps, d = 0.05, 300, 6
    conformal, chi2 = [], []
    for r in range(reps):
        rng = np.random.default_rng([r, 5])
        draw = (lambda n: rng.standard_normal((n, d))) if law == "gaussian" else (lambda n: rng.standard_t(3, (n, d)))
        fitted = fit(draw(1000), holdout=199, seed=r, run_audit=False)
        new = draw(200)
        conformal.append(score(fitted, new, fpr=fpr).ood.mean())
        bare = fit(draw(800), holdout=0, run_audit=False)
        chi2.append(score(bare, new, fpr=fpr).ood.mean())
    rate, se = np.mean(conformal), np.std(conformal) / np.sqrt(reps)
    # conformal: exactly floor(200 * 0.05) / 200 = 0.05 on average
    assert abs(rate - 0.05) < 3 * se + 1e-3, (law, rate, se)
    chi2_rate = np.mean(chi2)
    if law == "gaussian":
        assert abs(chi2_rate - fpr) < 0.01, chi2_rate
    else:
        assert chi2_rate > fpr + 0.025, chi2_rate  # heavy tails: the χ² law's flag fires too often (~9 %)


def test_score_separates_a_shifted_set():
    rng = np.random.default_rng(4)
    fitted = fit(_anisotropic(rng, 8000, 32), holdout=2000, run_audit=False)
    same = score(fitted, _anisotropic(rng, 2000, 32))
    moved = score(fitted, _anisotropic(rng, 2000, 32) + 0.8)
    auc = stats.mannwhitneyu(same.log_likelihood, moved.log_likelihood).statistic / (2000 * 2000)
    assert auc > 0.9, auc
    assert moved.share_flagged > 10 * max(same.share_flagged, 0.001)


def test_rank_deficient_reference():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((50, 8)) @ rng.standard_normal((8, 20))  # rank 8 in 20 dimensions
    fitted = fit(x, holdout=0, run_audit=False)
    assert fitted.model.rank == 8
    assert any("rank 8 of 20" in n for n in fitted.notes)
    assert np.isfinite(score(fitted, x).log_likelihood).all()


def test_model_file_roundtrip_and_damage():
    rng = np.random.default_rng(6)
    fitted = fit(rng.standard_normal((2000, 4)), holdout=200, run_audit=False)
    back = model_from_arrays(model_arrays(fitted), "m.npz")
    np.testing.assert_array_equal(back.model.eigenvectors, fitted.model.eigenvectors)
    np.testing.assert_array_equal(back.model.calibration, fitted.model.calibration)
    arrays = model_arrays(fitted)
    arrays["eigenvalues"] = -arrays["eigenvalues"]
    with pytest.raises(GaussAuditError, match="damaged"):
        model_from_arrays(arrays, "m.npz")
    with pytest.raises(GaussAuditError, match="at least 2 rows"):
        model_from_state(CovarianceState(3).update(np.ones((1, 3))))


@pytest.fixture(scope="module")
def embeddings(tmp_path_factory):
    root = tmp_path_factory.mktemp("likelihood")
    rng = np.random.default_rng(8)
    np.save(root / "reference.npy", _anisotropic(rng, 6000, 24).astype(np.float32))
    np.save(root / "new.npy", _anisotropic(rng, 1500, 24).astype(np.float32))
    np.save(root / "shifted.npy", (_anisotropic(rng, 1500, 24) + 1.0).astype(np.float32))
    np.save(root / "narrow.npy", _anisotropic(rng, 100, 10).astype(np.float32))
    rc, out, err = run_cli("fit", "reference.npy", "--out", "model.npz", "--holdout", "1000", cwd=root)
    assert rc == 0, err
    said = " ".join(out.split())
    assert "5,000 rows fitted" in said and "1,000 rows held out" in said
    return root


def test_cli_fit_and_score(embeddings):
    rc, out, err = run_cli("score", "model.npz", "shifted.npy", "--out", "scores.parquet", "--json", "summary.json",
                           cwd=embeddings)
    assert rc == 0, err
    table = pq.read_table(embeddings / "scores.parquet")
    assert table.column_names == ["row", "log_likelihood", "mahalanobis_sq", "chi2_p", "ood_p", "ood"]
    assert table.num_rows == 1500 and table.column("row").to_pylist() == list(range(1500))
    summary = json.loads((embeddings / "summary.json").read_text())
    assert summary["rows"] == 1500 and summary["model"]["holdout"] == 1000 and summary["model"]["gaussian"] is True
    assert summary["share_flagged"] == pytest.approx(np.mean(table.column("ood").to_numpy()))
    assert summary["share_flagged"] > 0.3  # against 0.01 for rows like the reference
    assert "flagged out of distribution" in " ".join(out.split())
    rc, out, err = run_cli("score", "model.npz", "new.npy", "--json", "-", cwd=embeddings)
    assert rc == 0, err
    assert json.loads(out)["share_flagged"] < 0.03


@pytest.mark.parametrize("args, says", [
    (["score", "model.npz", "narrow.npy"], "rows of 10 features, but the model was fitted to rows of 24"),
    (["score", "reference.npy", "new.npy"], "is a .npy array, not a model file"),
    (["score", "nope.npz", "new.npy"], "no such model file"),
    (["score", "model.npz", "new.npy", "--fpr", "0.0001"], "below what 1000 held-out rows can calibrate"),
    (["score", "model.npz", "new.npy", "--fpr", "2"], "--fpr must be a number between 0 and 1"),
    (["score", "model.npz", "new.npy", "--out", "new.npy"], "is one of the inputs"),
    (["fit", "reference.npy", "--out", "model.npz"], "already exists; pass --overwrite"),
    (["fit", "reference.npy", "--out", "reference.npy", "--overwrite"], "is one of the inputs"),
    (["fit", "reference.npy", "--out", "m2.npz", "--holdout", "-1"], "--holdout must be a whole number"),
])
def test_cli_errors_are_messages(embeddings, args, says):
    rc, out, err = run_cli(*args, cwd=embeddings)
    assert rc == 2, (out, err)
    assert "Traceback" not in err
    assert says in " ".join(err.split())


def test_nonfinite_rows_fail_with_their_row_or_are_dropped(tmp_path):
    """fit and score stop on the first NaN/inf row, naming it, unless --drop-nonfinite;
    scores keep the dropped row's number out of the output."""
    rng = np.random.default_rng(3)
    reference = _anisotropic(rng, 3000, 8)
    bad = reference.copy()
    bad[1234, 2], bad[2000, 0] = np.nan, np.inf
    np.save(tmp_path / "bad.npy", bad)
    np.save(tmp_path / "good.npy", reference)
    rc, out, err = run_cli("fit", "bad.npy", "--out", "m.npz", cwd=tmp_path)
    assert rc == 2 and "Traceback" not in err
    assert "bad.npy: row 1234 (counting from 0) holds NaN, inf or missing values" in " ".join(err.split())
    assert not (tmp_path / "m.npz").exists()
    rc, out, err = run_cli("fit", "bad.npy", "--out", "m.npz", "--drop-nonfinite", "--holdout", "500", cwd=tmp_path)
    assert rc == 0, err
    assert "2,498 rows fitted" in " ".join(out.split())  # 3,000 − 2 dropped − 500 held out
    rc, out, err = run_cli("score", "m.npz", "bad.npy", cwd=tmp_path)
    assert rc == 2 and "row 1234 (counting from 0)" in " ".join(err.split())
    rc, out, err = run_cli("score", "m.npz", "bad.npy", "--drop-nonfinite", "--out", "s.parquet", cwd=tmp_path)
    assert rc == 0, err
    rows = pq.read_table(tmp_path / "s.parquet").column("row").to_pylist()
    assert len(rows) == 2998 and 1234 not in rows and 2000 not in rows and rows[1234] == 1235
