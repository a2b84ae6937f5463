"""Full audit of an n × d float32 matrix with --sample 0, as whole processes:
gaussaudit vs the per-feature scipy loop a user would write.

Run by hand (not a test):  python benchmarks/bench_scan.py [--n 100000] [--d 768]

Both sides run as separate processes from a cold start on the same .npy file,
so imports, loading and normalisation count. The scipy side does exactly what
gaussaudit's metrics define: norms on raw rows, L2 normalisation, then
`scipy.stats.anderson` per column and `scipy.stats.normaltest` on the matrix.
The script prints both times, the ratio, and the largest relative difference
between the two sets of statistics.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

PER_FEATURE_ONLY = ["--projections", "0", "--pca-projections", "0", "--no-mahalanobis", "--mv-sample", "0"]

SCIPY_LOOP = r"""
import json, sys, warnings
import numpy as np
from scipy import stats
x = np.load(sys.argv[1]).astype(np.float64)
norms = np.linalg.norm(x, axis=1)
u = x / norms[:, None]
warnings.simplefilter("ignore", FutureWarning)  # scipy 1.17 asks for a p-value method; A² is the same
a2 = [stats.anderson(u[:, j], "norm").statistic for j in range(u.shape[1])]
p = stats.normaltest(u, axis=0).pvalue
a2 = np.array(a2)
n = len(u)
json.dump({"norm_cv": float(norms.std() / norms.mean()), "a2": a2.tolist(), "p": p.tolist(),
           "ad_mean": float(a2.mean()), "dp_mean_p": float(p.mean()),
           "ad_pass": float(np.mean(a2 * (1 + 0.75 / n + 2.25 / n**2) < 0.752)),
           "dp_pass": float(np.mean(p > 0.05))}, open(sys.argv[2], "w"))
"""


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "emb.npy")
        rng = np.random.default_rng(args.seed)
        # Contrastive-like: a mildly non-Gaussian mix, so the statistics are not trivial.
        x = rng.standard_normal((args.n, args.d), dtype=np.float32)
        x[:, : args.d // 4] += 0.3 * rng.laplace(size=(args.n, args.d // 4)).astype(np.float32)
        np.save(data, x)
        del x

        ours_json = os.path.join(tmp, "ours.json")
        ref_json = os.path.join(tmp, "ref.json")
        script = os.path.join(tmp, "scipy_loop.py")
        with open(script, "w") as fh:
            fh.write(SCIPY_LOOP)

        scan = [sys.executable, "-m", "gaussaudit", "scan", data, "--sample", "0", "--quiet"]
        # Like for like: the per-feature metrics alone, as the scipy loop computes them.
        # Best of 3 for gaussaudit (a few seconds each); the scipy loop runs once.
        t_ours = min(timed(scan + PER_FEATURE_ONLY + ["--json", ours_json, "--per-feature", "--overwrite"])
                     for _ in range(3))
        t_default = min(timed(scan + ["--json", os.path.join(tmp, "default.json"), "--overwrite"]) for _ in range(3))
        t_ref = timed([sys.executable, script, data, ref_json])

        ours = json.load(open(ours_json))
        ref = json.load(open(ref_json))
        a2_ours = np.array(ours["features"]["ad_statistic"], dtype=float)
        p_ours = np.array(ours["features"]["dp_pvalue"], dtype=float)
        a2_ref, p_ref = np.array(ref["a2"]), np.array(ref["p"])
        def rel(a, b):
            return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))

        print(f"audit of {args.n:,} x {args.d} float32, --sample 0, whole processes")
        print(f"  gaussaudit scan, per-feature metrics only   {t_ours:8.2f} s  (best of 3)")
        print(f"  scipy per-feature loop                      {t_ref:8.2f} s")
        print(f"  ratio                                       {t_ref / t_ours:8.2f} x faster")
        print(f"  gaussaudit scan, default (+ projections, joint tests) {t_default:8.2f} s")
        print("agreement (max relative difference, per feature):")
        print(f"  A² vs scipy.stats.anderson     {rel(a2_ours, a2_ref):.2e}")
        print(f"  DP p vs scipy.stats.normaltest {rel(p_ours, p_ref):.2e}")
        m = ours["metrics"]
        print(f"  norm CV  {m['norm_cv']:.10f} vs {ref['norm_cv']:.10f}")
        print(f"  AD mean  {m['ad']['mean']:.10f} vs {ref['ad_mean']:.10f}; "
              f"pass {m['ad']['pass_fraction']:.4f} vs {ref['ad_pass']:.4f}")
        print(f"  DP mean p {m['dp']['mean_p']:.10f} vs {ref['dp_mean_p']:.10f}; "
              f"pass {m['dp']['pass_fraction']:.4f} vs {ref['dp_pass']:.4f}")


if __name__ == "__main__":
    main()
