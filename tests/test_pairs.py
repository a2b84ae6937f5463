"""``gaussaudit pairs`` and ``audit_pairs`` as a user drives them: two views with a
known channel, uniform rows, image/caption-like sets with a modality gap."""
from __future__ import annotations

import json

import numpy as np
import pytest

from gaussaudit.errors import GaussAuditError
from gaussaudit.pairs import audit_pairs

from conftest import run_cli

A = 0.8


@pytest.fixture(scope="module")
def views(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4000, 64))
    noise = np.sqrt(1 - A**2)
    np.save(root / "view1.npy", (A * x + noise * rng.standard_normal(x.shape)).astype(np.float32))
    np.save(root / "view2.npy", (A * x + noise * rng.standard_normal(x.shape)).astype(np.float32))
    shift = np.zeros(64)
    shift[0] = 3.0
    np.save(root / "images.npy", (x + shift).astype(np.float32))
    np.save(root / "captions.npy", (x - shift + 0.5 * rng.standard_normal(x.shape)).astype(np.float32))
    np.save(root / "short.npy", x[:50].astype(np.float32))
    return root


def test_two_views_give_the_channel_and_a_bound_below_a_squared(views):
    rc, out, err = run_cli("pairs", "view1.npy", "view2.npy", "--json", "-", cwd=views)
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "gaussaudit.pairs/1" and doc["n"] == 4000 and doc["dim"] == 64
    p = doc["pairs"]
    # two views of one Gaussian input through x' = A x + sqrt(1 - A²) ε: u·v concentrates near A² = 0.64
    assert p["alignment"] == pytest.approx(A**2, abs=0.01)
    assert p["eta2_lower"] <= A**2 + 0.005  # Prop. 1: the bound does not exceed the true mildness
    assert abs(p["mean_norm_sq"]["a_debiased"]) < 1e-3  # isotropic, mean zero
    assert p["uniformity"] == pytest.approx(p["uniformity_reference"], abs=0.01)
    assert p["modality_gap"] < 0.05 and abs(p["negative_cosine_mean"]) < 0.01


def test_image_caption_like_sets_show_a_modality_gap(views):
    report = audit_pairs(str(views / "images.npy"), str(views / "captions.npy"))
    r = report.result
    assert r.modality_gap > 0.5
    assert r.mean_norm_sq_a > 0.05 and r.mean_norm_sq_b > 0.05
    # opposite mean directions: negatives point away from each other, Φ falls below the sphere's
    assert r.uniformity < r.uniformity_reference - 0.1
    # two views crowded around one mean direction: less uniform than the sphere
    images = np.load(views / "images.npy")
    crowded = audit_pairs(images, images + 0.5 * np.random.default_rng(1).standard_normal(images.shape)).result
    assert crowded.uniformity > crowded.uniformity_reference + 0.1


def test_terminal_and_markdown(views):
    rc, out, err = run_cli("pairs", "view1.npy", "view2.npy", "--markdown", "-", cwd=views)
    assert rc == 0, err
    assert out.startswith("### gaussaudit pairs") and "| η² lower bound" in out
    rc, out, err = run_cli("pairs", "view1.npy", "view2.npy", cwd=views)
    assert rc == 0 and "alignment E[u·v]" in out and "uniform on the sphere" in " ".join(out.split())


@pytest.mark.parametrize("args, says", [
    (["pairs", "view1.npy", "short.npy"], "has 4,000 rows and short.npy 50"),
    (["pairs", "view1.npy", "missing.npy"], "missing.npy"),
    (["pairs", "view1.npy", "view2.npy", "--temperature", "0"], "temperature must be a positive number"),
    (["pairs", "view1.npy", "view2.npy", "--json", "view1.npy", "--overwrite"], "is one of the inputs"),
])
def test_bad_input_is_a_message(views, args, says):
    rc, out, err = run_cli(*args, cwd=views)
    assert rc == 2, (out, err)
    assert "Traceback" not in err and says in " ".join(err.split())


def test_dropping_rows_would_break_pairs():
    x = np.random.default_rng(0).standard_normal((100, 4))
    with pytest.raises(GaussAuditError, match="cannot drop rows"):
        audit_pairs(x, x, drop_nonfinite=True)
