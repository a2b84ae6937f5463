"""Cost of the default scan (projections, Mahalanobis, multivariate tests) against
the per-feature audit alone, as whole processes, and where the time goes.

Run by hand (not a test):  python benchmarks/bench_projections.py [--n 10000] [--d 768] [--repeats 3]

Both commands run as separate processes on the same .npy file, alternating, and
the fastest of --repeats runs of each is compared (timings on shared machines
are noisy; the minimum is the least disturbed). Then each stage is timed in
process on the same prepared sample.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

BASE = ["--projections", "0", "--pca-projections", "0", "--no-mahalanobis", "--mv-sample", "0"]


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def stage_times(x: np.ndarray) -> list[tuple[str, float]]:
    from gaussaudit.prep.whiten import covariance_basis
    from gaussaudit.stats import feature_normality
    from gaussaudit.stats.multivariate import energy_test, henze_zirkler, mardia
    from gaussaudit.stats.projections import projection_normality, random_directions

    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    fm = np.ascontiguousarray(u.T)
    out = []

    def clock(name, func):
        start = time.perf_counter()
        result = func()
        out.append((name, time.perf_counter() - start))
        return result

    clock("per-feature tests", lambda: feature_normality(fm, axis=1))
    basis = clock("covariance + eigenbasis", lambda: covariance_basis(fm))
    clock("128 random projections", lambda: projection_normality(fm, random_directions(fm.shape[0], 128, 0), "random"))
    clock("16 principal projections", lambda: projection_normality(fm, basis.eigenvectors[:, :16], "pca"))
    from gaussaudit.analysis import _squared_mahalanobis

    clock("Mahalanobis norms", lambda: _squared_mahalanobis(fm, basis))
    y = (basis.eigenvectors[:, :16].T @ fm[:, :2000]).T
    clock("Mardia + Henze-Zirkler (2000 x 16)", lambda: (mardia(y), henze_zirkler(y)))
    from gaussaudit import AuditConfig

    reps = AuditConfig().energy_replicates
    clock(f"energy, {reps} replicates (2000 x 16)", lambda: energy_test(y, replicates=reps))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "emb.npy")
        x = np.random.default_rng(0).standard_normal((args.n, args.d), dtype=np.float32)
        np.save(path, x)
        scan = [sys.executable, "-m", "gaussaudit", "scan", path, "--quiet"]
        base, full = [], []
        for _ in range(args.repeats):
            base.append(timed(scan + BASE))
            full.append(timed(scan))
        print(f"scan of {args.n:,} x {args.d} float32 (default sample), whole processes, best of {args.repeats}")
        print(f"  per-feature audit alone       {min(base):7.2f} s   ({' '.join(f'{t:.2f}' for t in base)})")
        print(f"  default (proj. + joint tests) {min(full):7.2f} s   ({' '.join(f'{t:.2f}' for t in full)})")
        print(f"  ratio                         {min(full) / min(base):7.2f} x")
        print("in-process stages on the same sample:")
        for name, seconds in stage_times(x.astype(np.float64)):
            print(f"  {name:36s} {seconds * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
