"""The whole default scan (as a user runs it: a process, import included) of
this checkout against another git revision, on one n × d float32 file.

Run by hand (not a test):

    python benchmarks/bench_default_scan.py --ref b366873 [--n 10000] [--d 768] [--repeat 3]
    python benchmarks/bench_default_scan.py --ref b366873 --option --test-sample --option 2000

The other revision is checked out with ``git worktree`` into a temporary
folder and run with this interpreter (its dependencies must be installed);
each side runs ``--repeat`` times alternately, the best time is kept, and the
ratio this/ref is printed. Options after ``--option`` go to this checkout's
scan only (the old revision may not know them).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def timed_scan(source_root: Path, data: Path, extra: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(source_root)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gaussaudit", "scan", str(data), "--quiet", *extra],
                   check=True, env=env, cwd=tempfile.gettempdir())
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", required=True, help="git revision to compare with (e.g. the last release)")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--d", type=int, default=768)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--option", action="append", default=[], help="extra scan argument for this checkout")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "emb.npy"
        rng = np.random.default_rng(0)
        np.save(data, (rng.standard_normal((args.n, args.d)) @ rng.standard_normal((args.d, args.d))
                       / np.sqrt(args.d)).astype(np.float32))
        old = tmp / "ref"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(old), args.ref], check=True)
        try:
            now, then = [], []
            for _ in range(args.repeat):
                now.append(timed_scan(ROOT, data, args.option))
                then.append(timed_scan(old, data, []))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=True)
    best_now, best_then = min(now), min(then)
    print(f"default scan, {args.n:,} x {args.d} float32, whole process, best of {args.repeat}:")
    print(f"  {args.ref:<12} {best_then:6.2f} s")
    print(f"  {'this':<12} {best_now:6.2f} s   {' '.join(args.option)}")
    print(f"  ratio this/{args.ref}: {best_now / best_then:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
