"""Speed of the drift test against what a user would write without it.

The peer: the FID formula as pytorch-fid computes it (``scipy.linalg.sqrtm`` of
Σa·Σb, covariances from ``np.cov``), recomputed on every relabelling of the
pooled rows: the obvious permutation test of the Fréchet distance. Ours:
``gaussaudit.stats.drift.drift_test``, which reuses the pooled moments and
symmetric eigenproblems. Both compute the same p-value from the same
permutations; the script checks the distances agree, then times both and
prints seconds per relabelling and the ratio (timings are noisy: quote ratios).

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_drift.py --n 5000 --d 768 --permutations 20
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.linalg

from gaussaudit.stats.drift import drift_test


def peer_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """pytorch-fid's calculate_frechet_distance on the two sets' fits."""
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1.dot(s2))
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((s1 + offset).dot(s2 + offset))
    covmean = covmean.real
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def peer_permutation_test(ref: np.ndarray, cur: np.ndarray, permutations: int, seed: int) -> float:
    pooled = np.concatenate([ref, cur])
    observed = peer_frechet(ref, cur)
    rng = np.random.default_rng(seed)
    count = 0
    for _ in range(permutations):
        order = rng.permutation(len(pooled))
        count += peer_frechet(pooled[order[: len(ref)]], pooled[order[len(ref):]]) >= observed
    return (1 + count) / (1 + permutations)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=5000, help="rows of each set (default 5000)")
    ap.add_argument("--d", type=int, default=768, help="dimension (default 768)")
    ap.add_argument("--permutations", type=int, default=20, help="relabellings timed (default 20)")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    scale = 1 / np.sqrt(np.arange(1, args.d + 1))  # an embedding-like decaying spectrum
    ref = rng.standard_normal((args.n, args.d)) * scale
    cur = rng.standard_normal((args.n, args.d)) * scale * 1.01

    ours_value = drift_test(ref, cur, permutations=19).frechet
    peer_value = peer_frechet(ref, cur)
    print(f"Fréchet distance: ours {ours_value:.10g}, pytorch-fid formula {peer_value:.10g} "
          f"(relative difference {abs(ours_value - peer_value) / peer_value:.1e})")

    started = time.perf_counter()
    drift_test(ref, cur, permutations=args.permutations, alpha=0.5)
    ours = (time.perf_counter() - started) / (args.permutations + 1)
    started = time.perf_counter()
    peer_permutation_test(ref, cur, args.permutations, seed=0)
    peer = (time.perf_counter() - started) / (args.permutations + 1)
    print(f"n = {args.n} + {args.n}, d = {args.d}, {args.permutations} relabellings")
    print(f"  seconds per relabelling: ours {ours:.3f}, pytorch-fid formula + np.cov {peer:.3f}; "
          f"peer / ours = {peer / ours:.1f}x")
    print(f"  a default drift check (99 relabellings): ours ~{100 * ours:.0f} s, peer ~{100 * peer:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
