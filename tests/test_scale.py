"""Scale: mergeable every-row moments, the streaming pass (threads, chunking,
bounded memory), float32 precision against float64 references, the memory
guard for huge samples and the progress bar."""
from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

import gaussaudit.io.readers as readers
import gaussaudit.streaming as streaming
from gaussaudit import audit
from gaussaudit.errors import GaussAuditError
from gaussaudit.io import open_dataset, write_parquet
from gaussaudit.prep import sample_indices
from gaussaudit.stats import feature_normality
from gaussaudit.stats.histogram import StreamingHistogram
from gaussaudit.stats.running import FeatureMoments, RunningMoments
from gaussaudit.streaming import RowStats, read_pass
from gaussaudit.streaming import sample_dtype as held_dtype

from conftest import make_embeddings, run_cli


def _scipy_moments(x):
    # Column by column: 1-D reductions are pairwise, so the references carry
    # less round-off than axis-0 reductions of the whole matrix would.
    # Each column is first shifted by a round number near its values, which is
    # exact here (Sterbenz) and spares the reference a large offset's round-off.
    shifts = [float(np.round(c[0])) for c in np.asarray(x, dtype=np.float64).T]
    columns = [np.ascontiguousarray(c) - s for c, s in zip(np.asarray(x, dtype=np.float64).T, shifts)]
    return {
        "mean": np.array([c.mean() + s for c, s in zip(columns, shifts)]),
        "variance": np.array([c.var() for c in columns]),
        "skewness": np.array([stats.skew(c) for c in columns]),
        "excess_kurtosis": np.array([stats.kurtosis(c) for c in columns]),
    }


def _assert_moments(summary, x, rtol=1e-10):
    # float64 round-off of the merged moments on the skewed fixture's
    # 1e6-offset feature reaches ~1e-12; sums of raw powers would be off by
    # ~1e-4 there.
    want = _scipy_moments(x)
    assert summary.count == len(x)
    for name, value in want.items():
        # skewness and excess kurtosis are unitless and may sit near 0: absolute round-off there
        atol = 1e-10 if name in ("skewness", "excess_kurtosis") else 1e-300
        np.testing.assert_allclose(getattr(summary, name), value, rtol=rtol, atol=atol, err_msg=name)


# ----------------------------------------------------------------------------
# FeatureMoments: update / merge / result


@pytest.fixture(scope="module")
def skewed():
    rng = np.random.default_rng(11)
    # Heavy tails, skew and a large common offset: the naive sums of powers
    # would cancel badly here; the merged central sums must not.
    x = np.column_stack([rng.lognormal(size=5000), rng.standard_t(3, size=5000), 1e6 + rng.standard_normal(5000),
                         rng.laplace(size=5000) * 1e-8])
    return x


def test_merge_of_parts_equals_the_whole(skewed):
    whole = FeatureMoments().update(skewed).result()
    _assert_moments(whole, skewed)
    bounds = [0, 1, 2, 700, 701, 2500, 4999, 5000]
    parts = [FeatureMoments.of_chunk(skewed[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    merged = FeatureMoments()
    for p in parts:
        merged = merged.merge(p)
    _assert_moments(merged.result(), skewed)
    # a tree of merges (as workers of a distributed engine would combine) gives the same
    tree = (parts[0].merge(parts[1]).merge(parts[2])).merge(parts[3].merge(parts[4].merge(parts[5].merge(parts[6]))))
    _assert_moments(tree.result(), skewed)


def test_merge_is_order_free_and_pure(skewed):
    a, b = FeatureMoments.of_chunk(skewed[:1234]), FeatureMoments.of_chunk(skewed[1234:])
    before = (a.count, a.mean.copy(), a.m4.copy())
    ab, ba = a.merge(b).result(), b.merge(a).result()
    for name in ("mean", "variance", "skewness", "excess_kurtosis"):
        np.testing.assert_allclose(getattr(ab, name), getattr(ba, name), rtol=1e-12)
    assert a.count == before[0] and np.array_equal(a.mean, before[1]) and np.array_equal(a.m4, before[2])


def test_sequential_updates_equal_one_chunk(skewed):
    state = FeatureMoments()
    for start in range(0, len(skewed), 333):
        state.update(skewed[start : start + 333])
    _assert_moments(state.result(), skewed)


def test_empty_states_and_constant_features():
    x = np.column_stack([np.full(100, 3.7), np.random.default_rng(0).standard_normal(100)])
    empty = FeatureMoments()
    assert empty.merge(empty).count == 0
    assert empty.merge(FeatureMoments.of_chunk(x)).count == 100
    assert FeatureMoments.of_chunk(x[:0]).count == 0
    res = FeatureMoments().update(x).result()
    assert res.constant.tolist() == [True, False]
    assert np.isnan(res.skewness[0]) and np.isnan(res.excess_kurtosis[0])
    with pytest.raises(ValueError):
        empty.result()
    with pytest.raises(ValueError):
        FeatureMoments.of_chunk(x).merge(FeatureMoments.of_chunk(np.ones((3, 5))))


def test_row_stats_merge_keeps_the_first_nonfinite_row():
    first = RowStats(nonfinite_rows=2, first_nonfinite=("a.npy", 5))
    later = RowStats(nonfinite_rows=1, first_nonfinite=("b.npy", 0))
    merged = RowStats().merge(first).merge(later)
    assert merged.nonfinite_rows == 3 and merged.first_nonfinite == ("a.npy", 5)


# ----------------------------------------------------------------------------
# the streaming pass


def _norm_rows(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def sharded(tmp_path):
    x = make_embeddings(12_000, 40, seed=3)
    for i, part in enumerate(np.array_split(x, 7)):
        write_parquet(tmp_path / f"part-{i}.parquet", part, layout="fixed_size_list")
    return tmp_path, x


def test_pass_covers_every_row_and_draws_the_seeded_sample(sharded, monkeypatch):
    root, x = sharded
    monkeypatch.setattr(readers, "CHUNK_VALUES", 1 << 14)  # many chunks per shard
    monkeypatch.setattr(streaming, "_SLAB_VALUES", 1 << 12)
    dataset = open_dataset(str(root))
    chosen = sample_indices(len(x), 1500, seed=4)
    result = read_pass(dataset, chosen, threads=2)
    u = _norm_rows(x)
    norms = np.linalg.norm(x.astype(np.float64), axis=1)
    assert result.stats.norms.count == len(x)
    np.testing.assert_allclose(result.stats.norms.cv, norms.std() / norms.mean(), rtol=1e-12)
    _assert_moments(result.stats.moments.result(), u, rtol=1e-10)
    assert result.stats.norm_histogram.count == len(x)
    assert result.tested.dtype == np.float32 and result.tested.shape == (40, 1500)
    # the same rows, in order; float32 rounding of x/‖x‖ at most one float32 ulp apart
    np.testing.assert_allclose(result.tested, u[chosen].T, rtol=1.2e-7, atol=0)
    np.testing.assert_allclose(result.tested_norms, norms[chosen], rtol=1e-15)


def test_pass_is_identical_for_any_thread_count_and_chunking(sharded, monkeypatch):
    root, x = sharded
    dataset = open_dataset(str(root))
    chosen = sample_indices(len(x), 2000, seed=1)
    runs = []
    for threads, chunk in ((1, 1 << 23), (2, 1 << 23), (2, 1 << 13), (5, 1 << 15)):
        monkeypatch.setattr(readers, "CHUNK_VALUES", chunk)
        runs.append(read_pass(dataset, chosen, threads=threads))
    base = runs[0]
    for other in runs[1:]:
        np.testing.assert_array_equal(other.tested, base.tested)
        a, b = other.stats.moments.result(), base.stats.moments.result()
        np.testing.assert_allclose(a.excess_kurtosis, b.excess_kurtosis, rtol=1e-11)
        np.testing.assert_allclose(other.stats.norms.cv, base.stats.norms.cv, rtol=1e-12)
    # same chunking, different thread counts: bit for bit (states merge in row order)
    assert runs[0].stats.moments.m4.tobytes() == runs[1].stats.moments.m4.tobytes()


def test_pass_memory_does_not_grow_with_rows(tmp_path, monkeypatch):
    """Peak traced memory of a scan with a fixed sample is the same for 4x the rows."""
    monkeypatch.setattr(readers, "CHUNK_VALUES", 1 << 16)
    peaks = {}
    for n in (50_000, 200_000):
        x = np.random.default_rng(n).standard_normal((n, 32)).astype(np.float32)
        path = tmp_path / f"x{n}.npy"
        np.save(path, x)
        del x
        tracemalloc.start()
        # One thread: with more, which chunks happen to be in flight together
        # moves the peak by up to ~40% from run to run, whatever the row count.
        report = audit(str(path), sample=2000, projections=8, pca_projections=4, mv_sample=200, energy_replicates=19,
                       threads=1)
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert report.n_total == n and report.n_used == 2000 and report.moments.count == n
    # 200k rows of float32 are 25.6 MB; the scan's peak stays at the 50k scan's
    assert peaks[200_000] < 1.25 * peaks[50_000], peaks
    assert peaks[200_000] < 12e6, peaks


def test_report_moments_cover_every_row_not_just_the_sample():
    x = make_embeddings(6000, 16, seed=8).astype(np.float64)
    report = audit(x, sample=500)
    assert report.n_used == 500 and report.moments.count == 6000
    _assert_moments(report.moments, _norm_rows(x), rtol=1e-10)
    raw = audit(x, sample=500, normalize=False)
    _assert_moments(raw.moments, x, rtol=1e-10)
    doc = report.to_dict(per_feature=True)
    block = doc["metrics"]["moments_every_row"]
    assert block["rows"] == 6000
    np.testing.assert_allclose(block["skewness"]["median_abs"], np.median(np.abs(stats.skew(_norm_rows(x)))), rtol=1e-10)
    np.testing.assert_allclose(doc["features"]["every_row_skewness"], stats.skew(_norm_rows(x)), rtol=1e-10)


def test_nonfinite_rows_are_left_out_of_every_row_statistics():
    x = make_embeddings(3000, 12, seed=2).astype(np.float64)
    bad = x.copy()
    bad[[10, 2000]] = np.nan
    report = audit(bad, sample=0, drop_nonfinite=True)
    kept = np.delete(x, [10, 2000], axis=0)
    assert report.nonfinite_rows_dropped == 2 and report.n_used == 2998
    _assert_moments(report.moments, _norm_rows(kept), rtol=1e-10)
    norms = np.linalg.norm(kept, axis=1)
    np.testing.assert_allclose(report.norm_cv, norms.std() / norms.mean(), rtol=1e-12)


# ----------------------------------------------------------------------------
# float32 precision


@pytest.mark.parametrize(("dtype", "held"), [(np.float16, np.float32), (np.float32, np.float32), (np.int16, np.float32),
                                              (np.int32, np.float64), (np.float64, np.float64), (np.int64, np.float64)])
def test_sample_dtype(dtype, held):
    assert held_dtype(dtype) == held


def test_float32_input_tested_in_float32_matches_float64_reference():
    """A float32 input's sample is held in float32; against the same rows
    normalised and tested entirely in float64, nothing that matters moves."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((30_000, 48)) + 0.3 * rng.laplace(size=(30_000, 48))).astype(np.float32)
    report = audit(x, sample=0, projections=0, pca_projections=0, mahalanobis=False, mv_sample=0)
    ref = feature_normality(_norm_rows(x))
    got = report.features
    np.testing.assert_allclose(got.ad.statistic, ref.ad.statistic, rtol=1e-6)
    np.testing.assert_allclose(got.ad.pvalue, ref.ad.pvalue, rtol=1e-5)
    np.testing.assert_allclose(got.dp.pvalue, ref.dp.pvalue, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.dp.skewness, ref.dp.skewness, atol=1e-6)
    np.testing.assert_allclose(got.dp.excess_kurtosis, ref.dp.excess_kurtosis, atol=1e-6)
    assert report.ad_pass_fraction == np.mean(ref.ad.passes())
    assert report.dp_pass_fraction == np.mean(ref.dp.pvalue > 0.05)
    assert 0 < report.ad_pass_fraction < 1  # a mixed case, so the fractions mean something


def test_float32_sorting_kernel_equals_float64_on_the_same_values():
    """Sorting in float32 and summing in float64 is exact: the values are the same."""
    x = np.random.default_rng(5).laplace(size=(20_001, 9)).astype(np.float32)
    a, b = feature_normality(x), feature_normality(x.astype(np.float64))
    for name in ("statistic", "pvalue"):
        np.testing.assert_array_equal(getattr(a.ad, name), getattr(b.ad, name))
        np.testing.assert_array_equal(getattr(a.dp, name), getattr(b.dp, name))


# ----------------------------------------------------------------------------
# the memory guard


def test_sample_too_big_for_memory_fails_before_reading(tmp_path, monkeypatch):
    np.save(tmp_path / "x.npy", np.zeros((100, 8), dtype=np.float32))
    monkeypatch.setattr(streaming, "_available_memory", lambda: 1000)
    with pytest.raises(GaussAuditError, match=r"sample=0 keeps every row: 100 × 8 values as float32 need"):
        audit(str(tmp_path / "x.npy"), sample=0)


def test_memory_guard_comes_before_the_sample_index(tmp_path, monkeypatch):
    """The index of a huge --sample is itself gigabytes: the guard runs first,
    and names the file."""
    audit_module = sys.modules["gaussaudit.audit"]  # the module: gaussaudit.audit is also the function

    np.save(tmp_path / "x.npy", np.zeros((100, 8), dtype=np.float32))
    monkeypatch.setattr(streaming, "_available_memory", lambda: 1000)

    def no_index(*args):
        raise AssertionError("the sample index was drawn before the memory check")

    monkeypatch.setattr(audit_module, "sample_indices", no_index)
    with pytest.raises(GaussAuditError, match=r"x\.npy: sample=50 keeps 50 rows: 50 × 8 values"):
        audit(str(tmp_path / "x.npy"), sample=50)


def test_memory_guard_cli_message(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((50, 4)))
    code = ("import sys, gaussaudit.streaming as s; s._available_memory = lambda: 64; "
            "from gaussaudit.cli import main; sys.argv = ['gaussaudit', 'scan', 'x.npy', '--sample', '0']; main()")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "Use a smaller --sample" in proc.stderr


# ----------------------------------------------------------------------------
# progress


class Recorder:
    def __init__(self):
        self.stages, self.rows = [], 0

    def stage(self, name, total=None):
        self.stages.append((name, total))

    def advance(self, n):
        self.rows += n


def test_library_progress_hears_every_row_and_each_stage(sharded):
    root, x = sharded
    rec = Recorder()
    audit(str(root), progress=rec, sample=1000, calibrate=19)
    assert rec.stages[0] == ("reading", len(x)) and rec.rows == len(x)
    names = [name for name, _ in rec.stages]
    # (the Mahalanobis test is part of the multivariate tests since it moved to their subsample)
    for stage in ("covariance", "per-feature tests", "random projections", "principal projections",
                  "multivariate tests", "calibrating"):
        assert stage in names, names


def _scan(args, cwd, env_extra=None):
    """The CLI with no inherited terminal overrides, 100 columns, plus ``env_extra``."""
    env = {"TTY_COMPATIBLE": None, "TTY_INTERACTIVE": None, "FORCE_COLOR": None, "COLUMNS": "100", **(env_extra or {})}
    rc, out, err = run_cli(*args, cwd=cwd, env=env)
    return SimpleNamespace(returncode=rc, stdout=out, stderr=err)


def test_cli_progress_bar_on_a_terminal_and_silent_with_quiet(tmp_path):
    np.save(tmp_path / "x.npy", make_embeddings(40_000, 64, seed=1))
    tty = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1"}
    shown = _scan(["scan", "x.npy", "--json", "out.json"], tmp_path, tty)
    assert shown.returncode == 0, shown.stderr
    assert "reading rows" in shown.stderr and "rows/s" in shown.stderr and "ETA" in shown.stderr
    assert "40,000/40,000 rows" in shown.stderr and "per-feature tests" in shown.stderr
    assert json.loads((tmp_path / "out.json").read_text())["input"]["n_total"] == 40_000

    quiet = _scan(["scan", "x.npy", "--quiet", "--json", "quiet.json"], tmp_path, tty)
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == ""  # no bar, no table
    piped = _scan(["scan", "x.npy", "--json", "-"], tmp_path)  # stderr not a terminal: no bar in logs
    assert piped.returncode == 0 and piped.stderr == ""
    assert json.loads(piped.stdout)["input"]["n_total"] == 40_000


def test_cli_compare_progress_names_each_input(tmp_path):
    np.save(tmp_path / "a.npy", make_embeddings(3000, 16, seed=1))
    np.save(tmp_path / "b.npy", make_embeddings(3000, 16, seed=2))
    out = _scan(["compare", "a.npy", "b.npy", "--label", "first", "--label", "second", "--json", "c.json"],
                tmp_path, {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1"})
    assert out.returncode == 0, out.stderr
    assert "first: reading rows" in out.stderr and "second: reading rows" in out.stderr


def test_streaming_histogram_and_running_moments_results():
    values = np.random.default_rng(0).normal(5, 1, 1000)
    m = RunningMoments().update(values[:400])
    m2 = m.merge(RunningMoments().update(values[400:])).result()
    np.testing.assert_allclose([m2.mean, m2.cv], [values.mean(), values.std() / values.mean()], rtol=1e-12)
    h = StreamingHistogram().update(values)
    counts, edges = h.result()
    assert counts.sum() == 1000 and len(edges) == len(counts) + 1


def test_parquet_shards_release_what_they_read(tmp_path):
    """Arrow memory stays at about one shard's worth however many shards a
    dataset holds (pyarrow's default pre-buffering kept every shard's data
    alive for as long as the dataset: 4 GB for 20 shards of 2M x 512)."""
    import pyarrow as pa

    x = np.random.default_rng(0).standard_normal((20_000, 64)).astype(np.float32)
    for i in range(10):
        write_parquet(tmp_path / f"part-{i}.parquet", x, layout="fixed_size_list")
    dataset = open_dataset(str(tmp_path))
    base = pa.total_allocated_bytes()
    peaks = []  # Arrow's peak while reading each shard
    for shard in dataset.shards:
        peak = 0
        for chunk in shard.chunks():
            peak = max(peak, pa.total_allocated_bytes() - base)
        del chunk  # a zero-copy view of Arrow memory
        peaks.append(peak)
    assert dataset.n_rows == 200_000 and peaks[0] > 0
    assert max(peaks) < 1.5 * peaks[0], peaks  # retained data would grow it ~10x
    assert pa.total_allocated_bytes() - base < x.nbytes


# ----------------------------------------------------------------------------
# --device: the wiring (the torch kernel itself is tested in test_gpu_backend.py)


def test_device_routes_feature_and_projection_tests_to_torch(monkeypatch):
    """With a GPU "present" (torch's CPU device standing in for it), audit
    sends the per-feature and both projection sets to the torch backend and
    gets the numpy path's numbers."""
    import gaussaudit.stats.gpu as gpu

    calls = []
    real = gpu.feature_normality_torch

    def on_cpu(rows, device, **kw):
        calls.append((device, rows.shape))
        return real(rows, "cpu", **kw)

    real_resolve = gpu.resolve_device
    monkeypatch.setattr(gpu, "resolve_device", lambda name: "cuda" if name == "cuda" else real_resolve(name))
    monkeypatch.setattr(gpu, "feature_normality_torch", on_cpu)
    x = make_embeddings(4000, 24, seed=6)
    cpu = audit(x, sample=0, mv_sample=0)
    gpu_report = audit(x, sample=0, mv_sample=0, device="cuda")
    # the tested rows, the other preparation of them (the paper's Table 2 pair), then the projections
    assert [shape for _, shape in calls] == [(24, 4000), (24, 4000), (128, 4000), (16, 4000)]
    assert {device for device, _ in calls} == {"cuda"}
    assert gpu_report.config.device == "cuda" and gpu_report.to_dict()["settings"]["device"] == "cuda"
    for got, want in ((gpu_report.features, cpu.features), (gpu_report.projections_random.tests, cpu.projections_random.tests),
                      (gpu_report.projections_pca.tests, cpu.projections_pca.tests)):
        np.testing.assert_allclose(got.ad.statistic, want.ad.statistic, rtol=1e-9)
        np.testing.assert_allclose(got.dp.pvalue, want.dp.pvalue, rtol=1e-9)
    assert gpu_report.verdict.gaussian == cpu.verdict.gaussian


def test_device_errors_are_usage_errors(tmp_path):
    import torch

    np.save(tmp_path / "x.npy", make_embeddings(500, 8, seed=1))
    bad = _scan(["scan", "x.npy", "--device", "tpu"], tmp_path)
    assert bad.returncode == 2 and "--device must be" in bad.stderr and "Traceback" not in bad.stderr
    auto = _scan(["scan", "x.npy", "--device", "auto", "--json", "-"], tmp_path)
    assert auto.returncode == 0, auto.stderr
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert json.loads(auto.stdout)["settings"]["device"] == want
    if not torch.cuda.is_available():
        cuda = _scan(["scan", "x.npy", "--device", "cuda"], tmp_path)
        assert cuda.returncode == 2 and "CUDA is not available" in cuda.stderr and "Traceback" not in cuda.stderr


# ----------------------------------------------------------------------------
# fewer rows than dimensions


def test_row_space_basis_equals_the_full_eigendecomposition():
    """With n < d the covariance basis comes from the n × n Gram matrix: the
    same nonzero spectrum and the same covariance as numpy's d × d route."""
    from gaussaudit.prep.whiten import covariance_basis

    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 40)) * rng.uniform(0.5, 2.0, (300, 1)) + 1.0
    basis = covariance_basis(x)
    cov = np.cov(x)
    values = np.linalg.eigvalsh(cov)[::-1]
    assert basis.rank == 39 and basis.eigenvectors.shape == (300, 39)
    np.testing.assert_allclose(basis.eigenvalues, values[:39], rtol=1e-10)
    np.testing.assert_allclose((basis.eigenvectors * basis.eigenvalues) @ basis.eigenvectors.T, cov, atol=1e-12)
    np.testing.assert_allclose(basis.eigenvectors.T @ basis.eigenvectors, np.eye(39), atol=1e-10)


def test_projected_normal_fit_in_the_row_span_equals_the_ambient_fit():
    """The prenormalised null's EM, run in the span of fewer rows than
    dimensions, gives the fit the d-dimensional EM gives."""
    from gaussaudit.prep.whiten import CovarianceBasis
    from gaussaudit.stats.headline import _fit_projected_normal_in, fit_projected_normal

    rng = np.random.default_rng(1)
    x = rng.standard_normal((30, 20)) * np.linspace(0.5, 2.0, 30)[:, None] + 0.3
    u = x / np.linalg.norm(x, axis=0)
    values, vectors = np.linalg.eigh(np.cov(u))
    full_start = CovarianceBasis(mean=u.mean(axis=1), eigenvalues=values[::-1], eigenvectors=vectors[:, ::-1],
                                 rank=19, n=20)
    ambient = _fit_projected_normal_in(u, 30, full_start, 100, 1e-7)
    spanned = fit_projected_normal(u)
    for fit in (ambient, spanned):
        assert fit.eigenvectors.shape[0] == 30
    np.testing.assert_allclose(spanned.mean, ambient.mean, atol=1e-6)
    np.testing.assert_allclose((spanned.eigenvectors * spanned.eigenvalues) @ spanned.eigenvectors.T,
                               (ambient.eigenvectors * ambient.eigenvalues) @ ambient.eigenvectors.T, atol=1e-6)


def test_few_rows_many_dimensions_never_build_a_d_by_d_matrix(monkeypatch):
    """100 × 20,000 once ran > 250 s in 6.4 GB for its d × d eigendecompositions;
    every decomposition is now at most n × n (measured: 4 s, 280 MB)."""
    sizes = []
    eigh = np.linalg.eigh

    def recording_eigh(a, *args, **kwargs):
        sizes.append(np.shape(a)[0])
        return eigh(a, *args, **kwargs)

    monkeypatch.setattr(np.linalg, "eigh", recording_eigh)
    x = np.random.default_rng(2).standard_normal((60, 3000)).astype(np.float32)
    for rows in (x, x / np.linalg.norm(x, axis=1, keepdims=True)):
        report = audit(rows, threads=1)
        assert report.test is not None and report.n_tested == 3000
    assert sizes and max(sizes) <= 60, max(sizes)


def test_threads_bounds_blas_for_the_audit_and_restores_it(monkeypatch):
    """``threads=1`` is one core: BLAS (eigendecompositions, products between our
    pools) ran on every core before, so two one-thread runs side by side
    oversubscribed a 2-core machine. The caller's BLAS setting is back afterwards."""
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    seen = []
    eigh = np.linalg.eigh

    def recording_eigh(a, *args, **kwargs):
        seen.append(blas_threads())
        return eigh(a, *args, **kwargs)

    monkeypatch.setattr(np.linalg, "eigh", recording_eigh)
    x = np.random.default_rng(3).standard_normal((600, 24))
    with threadpool_limits(limits=2, user_api="blas"):
        assert blas_threads() == {2}
        audit(x, threads=1, calibrate=19)
        assert seen and all(threads == {1} for threads in seen), seen
        assert blas_threads() == {2}
        seen.clear()
        audit(x, calibrate=19)  # threads unset: the caller's BLAS, untouched
        assert seen and {2} in seen, seen
