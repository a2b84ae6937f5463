"""Run a per-feature kernel over blocks of features on a small thread pool.

numpy's sort and ufunc loops release the GIL, so threads over feature blocks use
every core without the copies that processes would need. Blocks are sized to stay
in cache (a few MB) so the kernel's temporaries never grow with the data.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

import numpy as np
from threadpoolctl import threadpool_limits

T = TypeVar("T")
R = TypeVar("R")

_TARGET_BLOCK_VALUES = 1 << 19  # ~4 MB of float64 per block


def default_threads() -> int:
    """Threads to use: every core this process may run on (at most 32)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 32))


def as_feature_rows(x: np.ndarray, axis: int) -> np.ndarray:
    """View ``x`` as a 2-D array with one feature per row (samples along axis 1).

    float32 stays float32 (kernels sort in it and sum in float64); any other
    dtype becomes float64.
    """
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError("expected an array of samples, got a scalar")
    x = np.moveaxis(x, axis, -1)
    x = x.reshape(int(np.prod(x.shape[:-1])), x.shape[-1])
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    return x


def map_feature_blocks(
    kernel: Callable[[np.ndarray], dict[str, np.ndarray]],
    rows: np.ndarray,
    threads: int | None = None,
) -> dict[str, np.ndarray]:
    """Apply ``kernel`` to blocks of rows of ``rows`` and concatenate its outputs.

    ``kernel`` takes a C-contiguous ``(b, n)`` block (``rows``' dtype) and returns a dict of
    length-``b`` arrays. The result does not depend on ``threads`` or on the block
    size: every feature is computed from its own row alone.
    """
    d, n = rows.shape
    if d == 0:
        return {k: np.empty(0) for k in kernel(np.empty((0, max(n, 1)))).keys()}
    block = max(1, _TARGET_BLOCK_VALUES // max(n, 1))
    starts = list(range(0, d, block))
    threads = default_threads() if threads is None else max(1, int(threads))

    def run(start: int) -> dict[str, np.ndarray]:
        return kernel(np.ascontiguousarray(rows[start : start + block]))

    parts = parallel_map(run, starts, threads)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def parallel_map(func: Callable[[T], R], items: Iterable[T], threads: int | None = None) -> list[R]:
    """``[func(x) for x in items]`` on a thread pool, results in order.

    While our threads run, BLAS is held to one thread each: BLAS threads on top
    of ours oversubscribe the cores, which on a busy 2-core machine made the
    energy bootstrap 30× slower.
    """
    items = list(items)
    threads = default_threads() if threads is None else max(1, int(threads))
    if threads == 1 or len(items) <= 1:
        return [func(x) for x in items]
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(max_workers=min(threads, len(items))) as pool:
        return list(pool.map(func, items))
