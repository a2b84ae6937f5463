"""Size of the normalised headline test with the centring pooled (the rule
above d = REFIT_MAX_DIM) and with refitted centres (:func:`refit_centre`), on
the size grid's Gaussians, by simulation. Run by hand; not a test.

    python benchmarks/bench_refit_centres.py aniso 256 2000 --reps 300
    python benchmarks/bench_refit_centres.py aniso 256 10000 --reps 200 --modes pooled

Replicate r draws its data from ``np.random.default_rng(r)`` and audits with
``seed=r`` and the size grid's settings (``bench_size_power.FAST``, one
thread), as ``bench_size_power.py`` does, so the rows of the mode the grid's
cell uses reproduce its column replicate by replicate. "pooled" never refits;
"refit" turns the refitted
centres on at every d with 2+ rows a dimension (the rule's n-condition kept);
``--inner K`` draws K samples behind each refitted centre instead of
INNER_DRAWS (mode "refit-K": its cost is most of the refit's).
"eigen" ("eigen-K") is the refit drawn through each fit's eigenvector factor
instead of :func:`coupled_factor`'s Cholesky factor, as it was before
(results file rows before 2026-12-06 named "refit" are these; "chol-K" rows
of then are today's "refit-K"; "refit-2-em100" rows are pre-normalised
refits whose EM ran to convergence, before REFIT_EM_ITERATIONS).
``--prenormalised`` audits the same rows L2-normalised first (the grid's
pre-normalised column; the surrogates' refits are then projected-normal EM fits).

    python benchmarks/bench_refit_centres.py aniso 256 2000 --reps 300 --modes refit --inner 2

Each replicate's p-value goes to benchmarks/results/refit-centres.jsonl (a run
adds to it and skips what is there). What it prints: per mode the rejection
rate at 0.05 and the share of p-values ≤ 0.10 and ≤ 0.25 (an exact Monte
Carlo test with 19 surrogates gives 0.05, 0.10 and 0.25 exactly) and the mean
p (0.525, standard error 0.289/√R): a p-value distribution pushed up means a
conservative test, far more visibly than the rejection rate alone.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_size_power as bench  # noqa: E402

import gaussaudit.analysis as analysis  # noqa: E402
import gaussaudit.stats.headline as headline  # noqa: E402
from gaussaudit import audit  # noqa: E402
from gaussaudit.stats.headline import REFIT_ROWS_PER_DIM  # noqa: E402

RESULTS = HERE / "results" / "refit-centres.jsonl"
TODAY, TODAY_INNER, TODAY_COUPLING = analysis.refits_centres, analysis.INNER_DRAWS, headline.coupled_factor


def never(d: int, n: int) -> bool:
    return False


def refit_everywhere(d: int, n: int) -> bool:
    return n >= REFIT_ROWS_PER_DIM * d


def eigenvector_factor(fit):
    """The fit as it is: draws through its eigenvector factor (mode "eigen"),
    the refit before :func:`coupled_factor` (see there for why it lost)."""
    return fit


def replicate(cov: str, d: int, n: int, r: int, mode: str, prenormalised: bool = False) -> dict:
    """One replicate's normalised p-value; ``mode`` "pooled", "refit", "refit-K"
    (K draws a centre), "eigen" or "eigen-K" (the refit with eigenvector factors)."""
    analysis.refits_centres = never if mode == "pooled" else refit_everywhere
    if "-" in mode:
        analysis.INNER_DRAWS = int(mode.split("-")[1])
    if mode.startswith("eigen"):
        headline.coupled_factor = eigenvector_factor
    try:
        x = bench.gaussian(cov, n, d, np.random.default_rng(r))
        if prenormalised:
            x = bench.unit_rows(x)  # as the grid makes its pre-normalised column
        start = time.perf_counter()
        rep = audit(x, seed=r, threads=1, **bench.FAST)
        row = {"cov": cov, "d": d, "n": n, "mode": mode, "r": r, "p": rep.tests["normalised"].p_value,
               "seconds": round(time.perf_counter() - start, 3)}
        return {**row, "input": "prenormalised"} if prenormalised else row
    finally:
        analysis.refits_centres, analysis.INNER_DRAWS = TODAY, TODAY_INNER
        headline.coupled_factor = TODAY_COUPLING


def summary(rows: list[dict]) -> str:
    p = np.array([row["p"] for row in rows])
    seconds = np.median([row["seconds"] for row in rows])
    return (f"{len(p)} replicates: rejects {np.mean(p <= 0.05):.3f}, p ≤ 0.10 {np.mean(p <= 0.10):.3f}, "
            f"p ≤ 0.25 {np.mean(p <= 0.25):.3f}, mean p {p.mean():.3f} (exact 0.525 ± {0.2887 / np.sqrt(len(p)):.3f}); "
            f"median {seconds:.1f} s an audit")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cov", choices=["iso", "aniso"])
    ap.add_argument("d", type=int)
    ap.add_argument("n", type=int)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--modes", nargs="+", choices=["pooled", "refit", "eigen"], default=["pooled", "refit"],
                    help="eigen: the refit drawn through eigenvector factors, not coupled_factor's")
    ap.add_argument("--inner", type=int, help="draws behind each refitted centre (mode refit-K; default: INNER_DRAWS)")
    ap.add_argument("--prenormalised", action="store_true", help="audit the rows L2-normalised first")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if args.inner is not None and args.inner < 1:
        ap.error("--inner must be at least 1")
    modes = [f"{mode}-{args.inner}" if mode in ("refit", "eigen") and args.inner else mode for mode in args.modes]
    source = "prenormalised" if args.prenormalised else "raw"
    threadpool_limits(limits=1, user_api="blas")  # the audits run one thread: so does BLAS (see bench_size_power)
    done = []
    if args.results.exists():
        done = [json.loads(line) for line in args.results.read_text().splitlines() if line.strip()]
    for mode in modes:
        mine = {row["r"]: row for row in done
                if (row["cov"], row["d"], row["n"], row["mode"], row.get("input", "raw"))
                == (args.cov, args.d, args.n, mode, source)}
        with args.results.open("a") as out:
            for r in range(args.reps):
                if r not in mine:
                    mine[r] = replicate(args.cov, args.d, args.n, r, mode, args.prenormalised)
                    out.write(json.dumps(mine[r]) + "\n")
                    out.flush()
        print(f"{args.cov} d={args.d} n={args.n} {source} {mode}: {summary([mine[r] for r in range(args.reps)])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
