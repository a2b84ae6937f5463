"""The torch backend of the per-feature normality statistics (``--device cuda``).

On torch's CPU device ``feature_normality_torch`` must give what the numpy path
``feature_normality(rows, axis=1)`` gives: to the issue's 1e-5 relative, and, in
float64 (the arithmetic is the same, only summation orders differ), to 1e-10
relative. A² = -n - Σ(...) sums n terms of order 1 down to a number of order 1,
so its rounding is absolute, of order n·eps: A² and its p-value also get an
absolute tolerance of 1e-14·n (observed: at most 2e-15·n). The CUDA test runs
only where torch sees a GPU.
"""
from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.stats as ss

from gaussaudit import GaussAuditError
from gaussaudit.stats import feature_normality
from gaussaudit.stats.gpu import feature_normality_torch, resolve_device

torch = pytest.importorskip("torch")

HAS_CUDA = torch.cuda.is_available()
ISSUE_RTOL = 1e-5
TIGHT_RTOL = 1e-10
A2_ATOL_PER_SAMPLE = 1e-14
FIELDS = {
    "ad.statistic": lambda r: r.ad.statistic,
    "ad.adjusted_statistic": lambda r: r.ad.adjusted_statistic,
    "ad.pvalue": lambda r: r.ad.pvalue,
    "dp.statistic": lambda r: r.dp.statistic,
    "dp.pvalue": lambda r: r.dp.pvalue,
    "dp.z_skewness": lambda r: r.dp.z_skewness,
    "dp.z_kurtosis": lambda r: r.dp.z_kurtosis,
    "skewness": lambda r: r.dp.skewness,
    "excess_kurtosis": lambda r: r.dp.excess_kurtosis,
    "mean": lambda r: r.mean,
    "std": lambda r: r.std,
}
_ANDERSON_KW = {"method": "interpolate"} if "method" in inspect.signature(ss.anderson).parameters else {}


def assert_same(res, ref, rtol: float, a2_atol: float = 0.0) -> None:
    """Every field of two FeatureNormality results agrees (NaN where the other is NaN)."""
    assert res.n == ref.n == res.ad.n == res.dp.n
    np.testing.assert_array_equal(res.constant, ref.constant)
    assert res.constant.dtype == bool
    for name, get in FIELDS.items():
        got, want = get(res), get(ref)
        assert got.shape == want.shape and got.dtype == np.float64, name
        atol = a2_atol if name.startswith("ad.") else 0.0
        if name == "mean":  # the mean of centred data is rounding-sized: compare on the data's scale
            atol = rtol * float(np.nanmax(ref.std, initial=1.0))
        if name == "std":
            # A constant feature's std is rounding noise of its mean, different for
            # each summation order; `constant` bounds it by resolution·|mean|.
            const = ref.constant
            bound = 2 * np.finfo(np.float64).resolution * np.abs(ref.mean[const])
            assert (np.abs(got[const]) <= bound).all() and (np.abs(want[const]) <= bound).all(), name
            got, want = got[~const], want[~const]
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=name)


def check_against_numpy(rows: np.ndarray, **kw) -> None:
    res = feature_normality_torch(rows, "cpu", **kw)
    ref = feature_normality(rows, axis=1)
    assert_same(res, ref, ISSUE_RTOL)
    # float32 input is sorted as float32 by both paths, and everything after is
    # float64, so float32 input is held to the tight tolerance too.
    assert_same(res, ref, TIGHT_RTOL, a2_atol=A2_ATOL_PER_SAMPLE * rows.shape[1])


def data(kind: str, d: int, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng([seed, d, n, len(kind)])
    if kind == "normal":
        return rng.normal(3.0, 2.0, (d, n))
    if kind == "laplace":
        return rng.laplace(-1.0, 0.5, (d, n))
    if kind == "student_t3":
        return rng.standard_t(3, (d, n))
    raise AssertionError(kind)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["normal", "laplace", "student_t3"])
@pytest.mark.parametrize("n", [20, 57, 5000])
def test_matches_numpy(kind, n, dtype):
    check_against_numpy(data(kind, 12, n).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_large_odd_n(dtype):
    rows = data("laplace", 4, 50_001).astype(dtype)
    rows[1] = data("normal", 1, 50_001)[0]
    check_against_numpy(rows)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [20, 300, 5000])
def test_constant_features(n, dtype):
    rows = data("normal", 6, n).astype(dtype)
    rows[0] = 0.0
    rows[2] = 0.1  # not exactly representable: the mean rounds, m2 is tiny but not 0
    rows[5] = -7.25e6
    res = feature_normality_torch(rows, "cpu")
    ref = feature_normality(rows, axis=1)
    assert res.constant.tolist() == [True, False, True, False, False, True]
    for name, get in FIELDS.items():
        if name not in ("mean", "std"):
            assert np.isnan(get(res)[res.constant]).all(), name
    assert_same(res, ref, TIGHT_RTOL, a2_atol=A2_ATOL_PER_SAMPLE * rows.shape[1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_far_outlier_uses_log_ndtr(dtype):
    n = 5000
    rows = data("normal", 3, n)
    rows[1, 17] = 1e4  # |w| ≈ 70: Φ(-|w|) underflows, so the log_ndtr branch must take it
    rows[2, 4000] = -1e4
    rows = rows.astype(dtype)
    y = rows.astype(np.float64)
    w = np.abs(y - y.mean(axis=1, keepdims=True)) / y.std(axis=1, ddof=1, keepdims=True)
    assert w[1].max() > 40 and w[2].max() > 40 and w[0].max() < 30
    res = feature_normality_torch(rows, "cpu")
    assert np.isfinite(res.ad.statistic).all()
    check_against_numpy(rows)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [57, 40_001])
def test_block_size_does_not_matter(n, dtype):
    rows = np.concatenate([data("normal", 5, n), data("laplace", 4, n)]).astype(dtype)
    rows[3] = 2.0
    whole = feature_normality_torch(rows, "cpu")
    for max_block_values in (1, n, 2 * n + 1, 4 * n - 1, 10**9):
        part = feature_normality_torch(rows, "cpu", max_block_values=max_block_values)
        # Equal to rounding: torch's CPU reductions split a long row over threads
        # when a block has few rows, so the last bits may change with the block.
        assert_same(part, whole, 1e-12, a2_atol=1e-15 * n)
    check_against_numpy(rows, max_block_values=2 * n + 1)


def test_against_scipy():
    n = 3001
    rows = np.concatenate([data("normal", 3, n), data("laplace", 3, n), data("student_t3", 2, n)])
    res = feature_normality_torch(rows, "cpu", max_block_values=3 * n)
    for i, x in enumerate(rows):
        a2 = ss.anderson(x, "norm", **_ANDERSON_KW).statistic
        np.testing.assert_allclose(res.ad.statistic[i], a2, rtol=1e-8)
        dp = ss.normaltest(x)
        np.testing.assert_allclose(res.dp.statistic[i], dp.statistic, rtol=1e-8)
        np.testing.assert_allclose(res.dp.pvalue[i], dp.pvalue, rtol=1e-8)
        np.testing.assert_allclose(res.dp.skewness[i], ss.skew(x), rtol=1e-8)
        np.testing.assert_allclose(res.dp.excess_kurtosis[i], ss.kurtosis(x), rtol=1e-8)
        np.testing.assert_allclose(res.std[i], x.std(ddof=1), rtol=1e-12)


def test_other_dtypes_and_layouts():
    rows = data("normal", 5, 200)
    ref = feature_normality(rows, axis=1)
    # a non-contiguous view, and integers (converted to float64)
    wide = np.zeros((5, 400))
    wide[:, ::2] = rows
    assert_same(feature_normality_torch(wide[:, ::2], "cpu", max_block_values=400), ref, TIGHT_RTOL, a2_atol=1e-12)
    ints = np.round(rows * 1000).astype(np.int32)
    assert_same(feature_normality_torch(ints, "cpu"), feature_normality(ints, axis=1), TIGHT_RTOL, a2_atol=1e-12)


def test_input_untouched_and_read_only(recwarn):
    rows = data("laplace", 4, 500).astype(np.float32)
    rows[1] = 3.0
    copy = rows.copy()
    rows.setflags(write=False)  # as a memory-mapped store gives it
    res = feature_normality_torch(rows, "cpu")
    np.testing.assert_array_equal(rows, copy)
    assert not [w for w in recwarn if "writable" in str(w.message)]
    assert_same(res, feature_normality(copy, axis=1), TIGHT_RTOL, a2_atol=1e-12)
    rows64 = copy.astype(np.float64)
    feature_normality_torch(rows64, "cpu")
    np.testing.assert_array_equal(rows64, copy)


def test_no_features():
    res = feature_normality_torch(np.empty((0, 50), dtype=np.float32), "cpu")
    assert res.n == 50
    assert res.ad.statistic.shape == res.dp.pvalue.shape == res.mean.shape == res.constant.shape == (0,)


def test_bad_input():
    with pytest.raises(GaussAuditError, match="at least 20 samples"):
        feature_normality_torch(np.zeros((3, 19)), "cpu")
    with pytest.raises(GaussAuditError, match="2-D"):
        feature_normality_torch(np.zeros(100), "cpu")
    with pytest.raises(GaussAuditError, match="^device must be"):
        feature_normality_torch(np.zeros((3, 100)), "tpu")


# ----------------------------------------------------------------------------
# resolve_device


def test_resolve_cpu_and_auto():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device(" CPU ") == "cpu"
    assert resolve_device("auto") == ("cuda" if HAS_CUDA else "cpu")


@pytest.mark.parametrize("name", ["gpu", "tpu", "cuda:", "cuda:x", "cuda0", "mps", ""])
def test_resolve_unknown(name):
    with pytest.raises(GaussAuditError, match=r"auto, cpu, cuda or cuda:N"):
        resolve_device(name)


@pytest.mark.skipif(HAS_CUDA, reason="a CUDA GPU is present")
@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_resolve_cuda_without_gpu(name):
    with pytest.raises(GaussAuditError, match=r"is_available\(\) is False.*device='cpu'"):
        resolve_device(name)


def test_resolve_cuda_index(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda") == "cuda"
    assert resolve_device("CUDA:1") == "cuda:1"
    assert resolve_device("auto") == "cuda"
    with pytest.raises(GaussAuditError, match="2 CUDA device"):
        resolve_device("cuda:2")


def test_torch_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    for name in ("cuda", "cuda:0"):
        # names torch itself, not the whole extract extra (torch is all --device needs)
        with pytest.raises(GaussAuditError, match=r"needs torch.*pip install torch ") as info:
            resolve_device(name)
        assert "\n" not in str(info.value) and "gaussaudit[extract]" not in str(info.value)
    assert resolve_device("auto") == "cpu"
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(GaussAuditError, match=r"pip install torch "):
        feature_normality_torch(np.zeros((2, 30)), "cpu")


def test_import_does_not_load_torch():
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
    code = "import sys, gaussaudit, gaussaudit.stats.gpu; assert 'torch' not in sys.modules, 'torch imported'"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


# ----------------------------------------------------------------------------
# on a GPU


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU visible to torch")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_matches_numpy(dtype):
    n, d = 20_000, 64
    rng = np.random.default_rng(7)
    rows = np.concatenate([
        rng.standard_normal((d // 2, n)),
        rng.laplace(size=(d // 4, n)),
        rng.standard_t(5, size=(d // 4, n)),
    ]).astype(dtype)
    rows[3] = 1.25  # constant
    rows[5, 11] = 5e3  # far outlier: |w| > 30, the log_ndtr branch
    ref = feature_normality(rows, axis=1)
    for max_block_values in (None, 7 * n):
        res = feature_normality_torch(rows, "cuda", max_block_values=max_block_values)
        assert_same(res, ref, ISSUE_RTOL)
