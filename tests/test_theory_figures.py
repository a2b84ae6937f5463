"""The figures of issue 16 as a user gets them: the covariance eigen-spectrum in
every scan report, ``gaussaudit pairs --html/--plots`` (positive against negative
pair cosines) and ``gaussaudit score --html/--plots`` (squared Mahalanobis norms
with the OOD threshold). Each page is checked to be self-contained, its PNGs to
decode, the numbers behind each figure against a direct numpy computation, and
existing files to be left alone without --overwrite."""
from __future__ import annotations

import base64
import html
import json
import re
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import run_cli, run_cli_many

pytest.importorskip("matplotlib")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SCAN_FIGURES = ("qq", "qq_random", "qq_pca", "norms", "pvalues", "ad_null", "spectrum")
BLOCK_MATPLOTLIB = (
    "import sys; sys.modules['matplotlib'] = None; "  # `import matplotlib` now raises ImportError
    "from gaussaudit.cli import main; sys.argv[0] = 'gaussaudit'; main()"
)


def _anisotropic(rng, n: int, d: int) -> np.ndarray:
    return rng.standard_normal((n, d)) * np.linspace(0.3, 2.0, d) + 0.2


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Inputs and every output, each command run once for the module as a user types it."""
    root = tmp_path_factory.mktemp("theory_figures")
    rng = np.random.default_rng(16)
    np.save(root / "emb.npy", _anisotropic(rng, 1500, 24))  # float64: the spectrum is checked to 1e-8
    x = rng.standard_normal((3000, 32))
    np.save(root / "view1.npy", 0.8 * x + 0.6 * rng.standard_normal(x.shape))
    np.save(root / "view2.npy", 0.8 * x + 0.6 * rng.standard_normal(x.shape))
    np.save(root / "reference.npy", _anisotropic(rng, 6000, 16))
    np.save(root / "new.npy", np.vstack([_anisotropic(rng, 800, 16), 1.5 * _anisotropic(rng, 400, 16)]))
    rc, _, err = run_cli("fit", "reference.npy", "--out", "model.npz", "--holdout", "1000", "--no-audit", "-q", cwd=root)
    assert rc == 0, err
    results = run_cli_many(
        [["scan", "emb.npy", "--sample", "0", "--html", "scan.html", "--plots", "figs", "--json", "scan.json",
          "--per-feature", "-q"],
         ["pairs", "view1.npy", "view2.npy", "--sample", "0", "--html", "pairs.html", "--plots", "pairs_figs",
          "--json", "pairs.json", "-q"],
         ["pairs", "view1.npy", "view2.npy", "--sample", "0", "--markdown", "-"],
         ["score", "model.npz", "new.npy", "--out", "scores.parquet", "--html", "score.html", "--plots",
          "score_figs", "--json", "score.json", "-q"]],
        cwd=root,
    )
    for rc, _, err in results:
        assert rc == 0, err
    return root, results[2][1]


def _png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _self_contained_images(page: str) -> list[tuple[bytes, str]]:
    """The page's images (PNG bytes, alt text), after checking nothing is fetched."""
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "http://" not in page and "<link" not in page.lower() and "<script" not in page.lower()
    assert "@import" not in page
    found = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)"', page)
    assert len(found) == page.count("<img")
    images = []
    for data, alt in found:
        png = base64.b64decode(data, validate=True)
        width, height = _png_size(png)
        assert width >= 500 and height >= 300, (alt, width, height)
        images.append((png, html.unescape(alt)))
    return images


def _steps(ax, gid: str):
    """The (values, edges) of the histogram drawn with ``gid``."""
    (patch,) = [p for p in ax.patches if p.get_gid() == gid]
    data = patch.get_data()
    return np.asarray(data.values), np.asarray(data.edges)


# ----------------------------------------------------------------------------
# the eigen-spectrum


def _direct_eigenvalues(path) -> np.ndarray:
    """Covariance eigenvalues of the L2-normalised rows (scan's default), largest first."""
    x = np.load(path).astype(np.float64)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    return np.linalg.eigvalsh(np.cov(u, rowvar=False))[::-1]


def test_scan_report_and_plots_carry_the_spectrum(made):
    root, _ = made
    images = _self_contained_images((root / "scan.html").read_text(encoding="utf-8"))
    assert len(images) == len(SCAN_FIGURES)
    assert any(alt.startswith("Covariance eigen-spectrum") for _, alt in images)
    assert sorted(p.name for p in (root / "figs").iterdir()) == sorted(f"{f}.png" for f in SCAN_FIGURES)
    spectrum_png = (root / "figs" / "spectrum.png").read_bytes()
    assert _png_size(spectrum_png)[0] >= 500
    assert spectrum_png in {png for png, _ in images}  # the page shows the very file --plots wrote
    # the numbers behind it: --per-feature puts the eigenvalues in the JSON
    report = json.loads((root / "scan.json").read_text(encoding="utf-8"))
    spectrum = report["metrics"]["spectrum"]
    direct = _direct_eigenvalues(root / "emb.npy")
    assert len(spectrum["eigenvalues"]) == 24
    np.testing.assert_allclose(spectrum["eigenvalues"], direct, rtol=0, atol=1e-8 * direct[0])
    assert spectrum["participation_ratio"] == pytest.approx(direct.sum() ** 2 / np.sum(direct**2), rel=1e-10)
    # without --per-feature the JSON keeps its size: no eigenvalue list
    rc, out, err = run_cli("scan", "emb.npy", "--json", "-", "-n", "500", cwd=root)
    assert rc == 0, err
    assert "eigenvalues" not in json.loads(out)["metrics"]["spectrum"]


def test_spectrum_figure_draws_the_covariance_eigenvalues(made):
    from gaussaudit import audit
    from gaussaudit.report.figures import draw_spectrum, report_figures

    root, _ = made
    report = audit(str(root / "emb.npy"), sample=0)
    direct = _direct_eigenvalues(root / "emb.npy")
    ax = draw_spectrum(report).axes[0]
    (line,) = [ln for ln in ax.lines if ln.get_gid() == "eigenvalues"]
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1, 25))
    np.testing.assert_allclose(line.get_ydata(), direct / direct.sum(), rtol=0, atol=1e-8)
    assert ax.get_yscale() == "log" and "share of variance" in ax.get_ylabel()
    vertical = sorted(ln.get_xdata()[0] for ln in ax.lines if ln.get_gid() != "eigenvalues"
                      and len(set(ln.get_xdata())) == 1)
    assert vertical == pytest.approx(sorted([report.spectrum.participation_ratio, report.spectrum.rankme]))
    # no covariance computed, no spectrum figure (and no missing-file surprise in --plots)
    light = audit(str(root / "emb.npy"), sample=500, projections=0, pca_projections=0, mv_sample=0, calibrate=0)
    assert light.spectrum is None and "spectrum" not in [f.name for f in report_figures(light)]


# ----------------------------------------------------------------------------
# gaussaudit pairs


def _unit(path) -> np.ndarray:
    x = np.load(path).astype(np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_pairs_page_has_the_numbers_and_the_cosine_figure(made):
    root, markdown = made
    page = (root / "pairs.html").read_text(encoding="utf-8")
    images = _self_contained_images(page)
    assert len(images) == 1 and images[0][1].startswith("Positive against negative pair cosines")
    assert sorted(p.name for p in (root / "pairs_figs").iterdir()) == ["cosines.png"]
    assert (root / "pairs_figs" / "cosines.png").read_bytes() == images[0][0]
    # the same rows as the markdown, each measure beside its value
    rows = [line.split(" | ") for line in markdown.splitlines() if line.startswith("| ") and "---" not in line]
    rows = [(name[2:], value[:-2]) for name, value in rows][1:]  # drop the header row
    assert len(rows) == 7
    for name, value in rows:
        assert f"<td>{html.escape(name)}</td><td>{html.escape(value)}</td>" in page, name


def test_pairs_histograms_equal_numpy(made):
    from gaussaudit.pairs import audit_pairs
    from gaussaudit.report.figures import draw_pairs

    root, _ = made
    doc = json.loads((root / "pairs.json").read_text(encoding="utf-8"))
    hist = doc["pairs"]["cosine_histogram"]
    assert hist["range"] == [-1.0, 1.0] and hist["bins"] == 200
    u, v = _unit(root / "view1.npy"), _unit(root / "view2.npy")
    positive = np.sum(u * v, axis=1)  # every pair: --sample 0
    expected = np.histogram(positive, bins=200, range=(-1.0, 1.0))[0]
    assert hist["positive"] == expected.tolist()
    assert sum(hist["negative"]) == 3000
    assert doc["pairs"]["alignment"] == pytest.approx(positive.mean(), abs=1e-12)
    # the negatives are u_i·v_j for i ≠ j: no row with its own pair, and they sit near 0
    report = audit_pairs(str(root / "view1.npy"), str(root / "view2.npy"), sample=0)
    negative = report.result.negative_cosines
    assert hist["negative"] == np.histogram(negative, bins=200, range=(-1.0, 1.0))[0].tolist()
    cross = u @ v.T
    np.fill_diagonal(cross, np.nan)
    matched = (np.abs(cross - negative[:, None]) < 1e-12).any(axis=1)
    assert matched.all()  # each is a cosine of row i with some other row of B
    assert abs(negative.mean()) < 0.02 < positive.mean() - 0.5
    # the figure draws those histograms as shares, with the alignment marked
    ax = draw_pairs(report).axes[0]
    values, edges = _steps(ax, "positive")
    np.testing.assert_allclose(edges, np.linspace(-1, 1, 201))
    np.testing.assert_allclose(values, expected / 3000, rtol=0, atol=1e-15)
    values, _ = _steps(ax, "negative")
    np.testing.assert_allclose(values * 3000, hist["negative"], rtol=0, atol=1e-9)
    marks = [ln.get_xdata()[0] for ln in ax.lines]
    assert any(m == pytest.approx(positive.mean(), abs=1e-12) for m in marks)


# ----------------------------------------------------------------------------
# gaussaudit score


def test_score_page_has_the_summary_and_the_threshold_figure(made):
    root, _ = made
    page = (root / "score.html").read_text(encoding="utf-8")
    images = _self_contained_images(page)
    assert len(images) == 1 and images[0][1].startswith("Squared Mahalanobis norms and the OOD threshold")
    assert sorted(p.name for p in (root / "score_figs").iterdir()) == ["mahalanobis.png"]
    assert (root / "score_figs" / "mahalanobis.png").read_bytes() == images[0][0]
    summary = json.loads((root / "score.json").read_text(encoding="utf-8"))
    assert f"flagged out of distribution: {summary['flagged']:,} ({summary['share_flagged']:.2%})" in page
    threshold = summary["mahalanobis_sq"]["ood_threshold"]
    assert f"d² above {threshold:.4g}" in page
    for q in ("q01", "q50", "q99"):
        assert f"<td>{summary['log_likelihood'][q]:.4g}</td>" in page
    assert "new.npy" in page and "reference.npy" in page


def test_score_histogram_and_threshold_equal_numpy(made):
    from gaussaudit.io.models import load_model
    from gaussaudit.likelihood import ScoreSummary, model_from_arrays, score_chunks
    from gaussaudit.report.figures import draw_scores

    root, _ = made
    summary = json.loads((root / "score.json").read_text(encoding="utf-8"))
    table = pq.read_table(root / "scores.parquet")
    d2 = table.column("mahalanobis_sq").to_numpy()
    ood = table.column("ood").to_numpy()
    hist = summary["mahalanobis_sq"]["histogram"]
    edges = np.array(hist["log10_edges"])
    assert len(hist["counts"]) == len(edges) - 1 <= 60 and np.allclose(np.diff(edges), edges[1] - edges[0])
    assert hist["counts"] == np.histogram(np.log10(d2), bins=edges)[0].tolist()
    assert sum(hist["counts"]) == summary["rows"] == 1200 and hist["zero"] == 0
    fitted = model_from_arrays(load_model(str(root / "model.npz")), "model.npz")
    held_out = fitted.model.calibration
    assert hist["reference_counts"] == np.histogram(np.log10(held_out), bins=edges)[0].tolist()
    # the threshold marked is where the flag falls: flagged exactly when d² is above it
    threshold = summary["mahalanobis_sq"]["ood_threshold"]
    np.testing.assert_array_equal(ood, d2 > threshold)
    assert summary["share_flagged"] == pytest.approx(np.mean(d2 > threshold), abs=1e-12)
    m, fpr = len(held_out), summary["fpr"]
    assert (1 + np.sum(held_out >= threshold)) / (m + 1) > fpr >= (1 + np.sum(held_out > threshold)) / (m + 1)
    # the figure draws those counts as shares, with the threshold line
    scored = ScoreSummary(fitted, fpr)
    for part in score_chunks(fitted, str(root / "new.npy"), fpr=fpr):
        scored.add(part)
    ax = draw_scores(scored).axes[0]
    values, drawn_edges = _steps(ax, "scored")
    np.testing.assert_allclose(np.log10(drawn_edges), edges, rtol=0, atol=1e-12)
    np.testing.assert_allclose(values * 1200, hist["counts"], rtol=0, atol=1e-9)
    assert ax.get_xscale() == "log"
    assert any(ln.get_xdata()[0] == pytest.approx(threshold) for ln in ax.lines)


# ----------------------------------------------------------------------------
# existing files, and no matplotlib


def test_existing_outputs_are_refused_without_overwrite(made):
    root, _ = made
    before = {name: (root / name).read_bytes() for name in ("pairs.html", "score.html", "pairs_figs/cosines.png",
                                                             "score_figs/mahalanobis.png")}
    (root / "spectrum_only").mkdir()
    (root / "spectrum_only" / "spectrum.png").write_bytes(b"mine")
    results = run_cli_many(
        [["pairs", "view1.npy", "view2.npy", "--html", "pairs.html", "-q"],
         ["pairs", "view1.npy", "view2.npy", "--plots", "pairs_figs", "-q"],
         ["score", "model.npz", "new.npy", "--html", "score.html", "-q"],
         ["score", "model.npz", "new.npy", "--plots", "score_figs", "-q"],
         ["scan", "emb.npy", "--plots", "spectrum_only", "-q", "-n", "300"],
         ["score", "model.npz", "new.npy", "--out", "same.out", "--html", "same.out"],
         ["pairs", "view1.npy", "view2.npy", "--html", "view1.npy", "--overwrite"]],
        cwd=root,
    )
    for (rc, out, err), says in zip(results, ["pairs.html: already exists", "cosines.png: already exists",
                                              "score.html: already exists", "mahalanobis.png: already exists",
                                              "spectrum.png: already exists", "named by both --out and --html",
                                              "is one of the inputs"]):
        assert rc == 2 and "Traceback" not in err, err
        assert says in " ".join(err.split()), err
    assert {name: (root / name).read_bytes() for name in before} == before
    assert (root / "spectrum_only" / "spectrum.png").read_bytes() == b"mine"
    assert not (root / "same.out").exists()
    # --overwrite replaces them
    (rc, _, err), (rc2, _, err2) = run_cli_many(
        [["pairs", "view1.npy", "view2.npy", "-n", "500", "--html", "pairs.html", "--plots", "pairs_figs",
          "--overwrite", "-q"],
         ["score", "model.npz", "reference.npy", "--html", "score.html", "--overwrite", "-q"]],
        cwd=root,
    )
    assert rc == 0 and rc2 == 0, err + err2
    assert "500 pairs of 3,000" in (root / "pairs.html").read_text(encoding="utf-8")
    assert (root / "pairs_figs" / "cosines.png").read_bytes() != before["pairs_figs/cosines.png"]
    assert "reference.npy under the model of" in (root / "score.html").read_text(encoding="utf-8")


def test_without_matplotlib_the_pages_exit_2(made, tmp_path):
    root, _ = made
    for args, option in ((["pairs", "view1.npy", "view2.npy", "--html", tmp_path / "p.html"], "--html"),
                         (["pairs", "view1.npy", "view2.npy", "--plots", tmp_path / "pf"], "--plots"),
                         (["score", "model.npz", "new.npy", "--html", tmp_path / "s.html"], "--html"),
                         (["score", "model.npz", "new.npy", "--plots", tmp_path / "sf", "--json",
                           tmp_path / "s.json"], "--plots")):
        rc, out, err = run_cli(*args, cwd=root, exe=[sys.executable, "-c", BLOCK_MATPLOTLIB])
        assert rc == 2 and out == "" and "Traceback" not in err, err
        assert option in err and "pip install 'gaussaudit[plot]'" in err, err
    assert not any(tmp_path.iterdir())  # refused before anything was written
