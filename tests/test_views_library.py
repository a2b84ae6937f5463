"""Library pieces behind compare, track and the figures: the streaming norm
histogram, the simulated A² null, the QQ samples an audit keeps, step discovery,
labels, and the figures' axes and threshold lines."""
from __future__ import annotations

import numpy as np
import pytest

from gaussaudit import GaussAuditError, audit
from gaussaudit.compare import check_labels, compare, default_labels, find_steps, step_of, track
from gaussaudit.report.markdown import render_markdown
from gaussaudit.report.terminal import histogram_rows
from gaussaudit.stats import AD_CRITICAL_5PCT, StreamingHistogram, ad_null_statistics
from gaussaudit.stats.qq import QQ_POINTS

from conftest import gaussian_embeddings, laplace_embeddings, save_npy

# ----------------------------------------------------------------------------
# streaming histogram


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_histogram_equals_numpy_on_its_grid_and_merges_exactly(seed):
    rng = np.random.default_rng(seed)
    # Chunks that keep pushing the range out on both sides force re-binning.
    chunks = [rng.normal(10, 0.01, 50), rng.normal(10, 1, 500), rng.uniform(-300, 5, 200), [1e4], rng.normal(0, 1e-3, 30)]
    values = np.concatenate(chunks)
    streamed = StreamingHistogram(max_bins=256)
    for c in chunks:
        streamed.update(c)
    assert streamed.count == values.size
    assert len(streamed.counts) <= 256
    assert streamed.edges[0] <= values.min() and values.max() < streamed.edges[-1]
    np.testing.assert_array_equal(streamed.counts, np.histogram(values, bins=streamed.edges)[0])
    # Two partial states on disjoint parts merge to the single-pass state.
    left = StreamingHistogram(max_bins=256)
    right = StreamingHistogram(max_bins=256)
    for c in chunks[:2]:
        left.update(c)
    for c in chunks[2:]:
        right.update(c)
    merged = left.merge(right)
    assert merged.width == streamed.width and merged.start == streamed.start
    np.testing.assert_array_equal(merged.counts, streamed.counts)
    assert right.merge(left).count == values.size


def test_streaming_histogram_ignores_nonfinite_and_reads_quantiles():
    h = StreamingHistogram().update([np.nan, np.inf]).update(np.arange(1, 1001, dtype=float))
    assert h.count == 1000
    assert h.quantile(0.5) == pytest.approx(500, abs=2)
    counts, edges = h.rebinned(0, 1001, 10)
    assert counts.sum() == 1000 and np.all(counts >= 99) and len(edges) == 11


def test_audit_keeps_a_norm_histogram_of_every_row_and_bounded_qq_samples():
    x = laplace_embeddings(5000, 16, seed=3).astype(np.float64)
    report = audit(x, sample=1000)
    norms = np.linalg.norm(x, axis=1)
    assert report.norm_histogram.count == 5000  # every row, not only the sample
    np.testing.assert_array_equal(report.norm_histogram.counts, np.histogram(norms, bins=report.norm_histogram.edges)[0])
    roles = [f.role for f in report.qq_features]
    assert roles == ["best", "median", "worst"]
    a2 = report.features.ad.statistic
    best, median, worst = report.qq_features
    assert best.statistic == a2.min() and worst.statistic == a2.max() and best.feature == int(np.argmin(a2))
    for f in report.qq_features:
        assert len(f.values) == len(f.probabilities) == 1000
        assert np.all(np.diff(f.values) >= 0) and np.all((f.probabilities > 0) & (f.probabilities < 1))
    big = audit(x, sample=0)
    for f in big.qq_features:
        assert len(f.values) == QQ_POINTS  # bounded whatever n
        # the extremes are kept, so the QQ plot shows the tails
        column = x[:, f.feature] / norms
        assert f.values[0] == pytest.approx(column.min()) and f.values[-1] == pytest.approx(column.max())


# ----------------------------------------------------------------------------
# A² null


def test_simulated_ad_null_matches_the_known_critical_value():
    null = ad_null_statistics(1000, replicates=6000, seed=1)
    assert null.shape == (6000,)
    # Case 3 (mean and variance estimated): mean ≈ 0.38, 95th percentile of the
    # adjusted statistic = 0.752 (D'Agostino & Stephens 1986).
    assert 0.36 < null.mean() < 0.40
    adjusted = null * (1 + 0.75 / 1000 + 2.25 / 1000**2)
    assert np.quantile(adjusted, 0.95) == pytest.approx(AD_CRITICAL_5PCT, abs=0.035)
    np.testing.assert_array_equal(null, ad_null_statistics(1000, replicates=6000, seed=1))


# ----------------------------------------------------------------------------
# steps and labels


def test_step_is_the_last_number_in_the_name():
    assert step_of("emb_epoch50.npy") == 50
    assert step_of("runs/v2/step_1200.parquet") == 1200
    assert step_of("resnet18-seed3-epoch007.npz") == 7
    assert step_of("ckpt_40") == 40  # a folder of shards
    with pytest.raises(GaussAuditError, match="final.npy.*no step number"):
        step_of("final.npy")


def test_find_steps_orders_numerically_and_rejects_duplicates(tmp_path):
    for step in (10, 2, 1, 100):
        save_npy(tmp_path / "run" / f"emb_step{step}.npy", np.zeros((3, 2)))
    (tmp_path / "run" / "_SUCCESS").write_text("")
    (tmp_path / "run" / "notes.txt").write_text("not a step")
    steps = find_steps([tmp_path / "run"])
    assert [s for s, _ in steps] == [1, 2, 10, 100]
    assert steps[2][1].endswith("emb_step10.npy")
    # a subfolder is one step, read as a folder of shards
    save_npy(tmp_path / "run" / "ckpt_step_5" / "part-0.npy", np.zeros((3, 2)))
    assert [s for s, _ in find_steps([tmp_path / "run"])] == [1, 2, 5, 10, 100]
    assert find_steps([tmp_path / "run"])[2][1].endswith("ckpt_step_5")
    save_npy(tmp_path / "run" / "other_step2.npy", np.zeros((3, 2)))
    with pytest.raises(GaussAuditError, match="step 2"):
        find_steps([tmp_path / "run"])


def test_labels_default_to_file_names_and_must_match_the_inputs():
    assert default_labels(["a/x.npy", "b/y.parquet"]) == ["x.npy", "y.parquet"]
    assert default_labels(["a/x.npy", "b/x.npy"]) == ["a/x.npy", "b/x.npy"]
    assert check_labels(["a.npy", "b.npy"], ["one", "two"]) == ["one", "two"]
    with pytest.raises(GaussAuditError, match="^labels was given 1 times for 2 inputs"):
        check_labels(["a.npy", "b.npy"], ["one"])
    with pytest.raises(GaussAuditError, match="'same' names two inputs"):
        check_labels(["a.npy", "b.npy"], ["same", "same"])


def test_compare_and_track_in_process(tmp_path):
    gauss, lap = gaussian_embeddings(1500, 128), laplace_embeddings(1500, 24)
    result = compare([lap, gauss], labels=["lap", "gauss"], sample=1000)
    assert result.labels == ["lap", "gauss"]
    assert [r.verdict.gaussian for r in result.reports] == [False, True]
    doc = result.to_dict()
    assert doc["schema"] == "gaussaudit.compare/1" and [r["label"] for r in doc["reports"]] == ["lap", "gauss"]
    assert all(r["settings"]["sample"] == 1000 for r in doc["reports"])
    md = render_markdown(list(zip(result.labels, result.reports)))
    assert md.splitlines()[:3] == ["# gaussaudit compare · lap, gauss", "", "| Metric | lap | gauss |"]
    assert "| **Gaussian?** | ✗ | ✓ |" in md

    save_npy(tmp_path / "emb_step3.npy", gauss)
    save_npy(tmp_path / "emb_step20.npy", lap[:, :24])
    (tmp_path / "emb_step7.npy").write_bytes(b"\x93NUMPY broken")
    t = track([tmp_path], sample=1000)
    assert [p.step for p in t.points] == [3, 20]
    assert [(s.step, "emb_step7.npy" in s.error) for s in t.skipped] == [(7, True)]
    with pytest.raises(GaussAuditError, match="none of the 1 steps"):
        track([tmp_path / "emb_step7.npy"])


def test_histogram_rows_heights():
    assert histogram_rows([0, 1, 4, 8], height=2) == ["   █", " ▂██"]
    # a bin with any count stays visible next to a huge one; an empty one is blank
    assert histogram_rows([1, 0, 10_000], height=3)[-1] == "▁ █"


# ----------------------------------------------------------------------------
# figures: axes labelled, thresholds drawn (matplotlib is in the test extra)


@pytest.fixture(scope="module")
def reports():
    return audit(gaussian_embeddings(1500, 128)), audit(laplace_embeddings(1500, 24))


def _hlines(ax):
    return {round(float(line.get_ydata()[0]), 6) for line in ax.get_lines()
            if len(set(np.asarray(line.get_ydata(), dtype=float))) == 1}


def _vlines(ax):
    return {round(float(line.get_xdata()[0]), 6) for line in ax.get_lines()
            if len(set(np.asarray(line.get_xdata(), dtype=float))) == 1}


def test_report_figures_have_labelled_axes_and_threshold_lines(reports):
    from gaussaudit.report.figures import draw_ad_null, draw_norms, draw_pvalues, draw_qq

    for report in reports:
        qq = draw_qq(report)
        assert len(qq.axes) == 3
        for ax, role in zip(qq.axes, ("best", "median", "worst")):
            assert ax.get_xlabel() == "N(0, 1) quantile" and ax.get_title().startswith(role)
        assert qq.axes[0].get_ylabel()
        norms = draw_norms(report).axes[0]
        assert "mean" in norms.get_xlabel() and norms.get_ylabel() == "rows per bin"
        assert 1.0 in _vlines(norms)  # the mean, at 1 on the relative axis
        p = draw_pvalues(report).axes[0]
        assert p.get_xlabel() == "p-value" and p.get_ylabel() == "density"
        assert 1.0 in _hlines(p) and 0.05 in _vlines(p)  # uniform density, alpha
        ad = draw_ad_null(report).axes[0]
        assert ad.get_xlabel().startswith("A²") and ad.get_ylabel()
        assert AD_CRITICAL_5PCT in _vlines(ad) and round(report.ad_mean, 6) in _vlines(ad)
    # A² in the hundreds goes on a log axis; a Gaussian's stays linear.
    assert draw_ad_null(reports[0]).axes[0].get_xscale() == "linear"
    assert draw_ad_null(reports[1]).axes[0].get_xscale() == "log"


def test_track_figure_draws_every_metric_against_step_with_thresholds(tmp_path):
    from gaussaudit.report.figures import draw_track

    for step, x in ((5, laplace_embeddings(800, 24)), (50, gaussian_embeddings(800, 128, seed=1)),
                    (500, gaussian_embeddings(800, 128, seed=2))):
        save_npy(tmp_path / f"step_{step}.npy", x[:, :24] if step == 5 else x)
    t = track([tmp_path])
    fig = draw_track(t)
    ad, dp, cv, passed = fig.axes
    assert AD_CRITICAL_5PCT in _hlines(ad) and 0.05 in _hlines(dp) and 95.0 in _hlines(passed)
    for ax in (cv, passed):
        assert ax.get_xlabel().startswith("step")
    for ax in fig.axes:
        assert ax.get_ylabel() and ax.get_title()
        xs = [x for line in ax.get_lines() for x in np.asarray(line.get_xdata(), dtype=float) if len(set(line.get_xdata())) > 1]
        assert {5.0, 50.0, 500.0} <= set(xs)
