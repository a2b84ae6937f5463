"""Streaming a shard set larger than the scan's memory: wall time, peak memory,
rows/s, and the exactness of the every-row numbers.

Run by hand (not a test):

    python benchmarks/bench_stream.py                      # 2,000,000 x 512 in 20 parquet shards (4 GB)
    python benchmarks/bench_stream.py --rows 200000 --shards 4 --dim 64   # a quick look

The shards are float32 embeddings (a Gaussian with an anisotropic covariance
and a non-zero mean, so the norm CV is not trivial), written as parquet
fixed-size-list columns into a temporary folder (``--dir`` to choose it,
``--keep`` to keep it). While writing, the script keeps every row's norm in
float64 (16 MB for 2M rows), so the scan's ``input.n_total`` and
``metrics.norm_cv`` can be checked against numpy on every row. (The every-row
moments are checked against scipy in tests/test_scale.py.)

The scan runs as a whole process, ``gaussaudit scan DIR --json out.json -q``
with the default sample (10,000 rows), under ``/usr/bin/time`` for its peak RSS.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_shards(folder: str, rows: int, dim: int, shards: int, seed: int):
    """Write the shard set; return every row's float64 norm and the sums for the moments."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    scale = (0.5 + rng.random(dim)).astype(np.float32)
    shift = (0.2 * rng.standard_normal(dim)).astype(np.float32)
    norms = np.empty(rows)
    bounds = np.linspace(0, rows, shards + 1).astype(np.int64)
    block = 50_000
    for i in range(shards):
        writer = None
        path = os.path.join(folder, f"part-{i:05d}.parquet")
        for start in range(bounds[i], bounds[i + 1], block):
            stop = min(start + block, bounds[i + 1])
            x = rng.standard_normal((stop - start, dim), dtype=np.float32)
            x *= scale
            x += shift
            x64 = x.astype(np.float64)
            norms[start:stop] = np.sqrt(np.einsum("ij,ij->i", x64, x64))
            column = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), dim)
            table = pa.table({"id": pa.array(np.arange(start, stop)), "embedding": column})
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=block)
        writer.close()
    return norms


def peak_and_wall(cmd: list[str], env: dict) -> tuple[float, float, subprocess.CompletedProcess]:
    timed = ["/usr/bin/time", "-f", "%e %M", *cmd]
    proc = subprocess.run(timed, capture_output=True, text=True, env=env)
    last = proc.stderr.strip().splitlines()[-1]
    wall, kb = last.split()
    return float(wall), int(kb) * 1024, proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--shards", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", default=None, help="folder for the shards (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the shards afterwards")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more scan options, e.g. --extra --sample 50000")
    args = ap.parse_args()

    folder = args.dir or tempfile.mkdtemp(prefix="gaussaudit-stream-")
    os.makedirs(folder, exist_ok=True)
    if any(name.endswith(".parquet") for name in os.listdir(folder)):
        sys.exit(f"{folder} already holds parquet files; give an empty --dir")
    try:
        t0 = time.perf_counter()
        norms = write_shards(folder, args.rows, args.dim, args.shards, args.seed)
        written = time.perf_counter() - t0
        size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
        out = os.path.join(folder, "_report.json")  # "_" files are not read as shards
        env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
        cmd = [sys.executable, "-m", "gaussaudit", "scan", folder, "--json", out, "-q", *args.extra]
        wall, peak, proc = peak_and_wall(cmd, env)
        if proc.returncode not in (0, 1):
            sys.exit(f"scan failed ({proc.returncode}):\n{proc.stderr}")
        report = json.load(open(out))
        cv_exact = norms.std() / norms.mean()
        cv = report["metrics"]["norm_cv"]
        print(f"machine: {platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
              f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB RAM")
        print(f"data: {args.rows:,} x {args.dim} float32 in {args.shards} parquet shards, {size / 2**30:.2f} GiB on disk "
              f"(written in {written:.0f} s)")
        print(f"scan: {' '.join(cmd[3:])}")
        print(f"  wall {wall:.1f} s, {args.rows / wall:,.0f} rows/s, peak RSS {peak / 2**30:.2f} GiB")
        print(f"  input.n_total {report['input']['n_total']:,} (expected {args.rows:,}), n_used {report['input']['n_used']:,}")
        print(f"  norm CV {cv:.15f} vs every-row float64 {cv_exact:.15f}: "
              f"relative difference {abs(cv - cv_exact) / cv_exact:.1e}")
        every = report["metrics"].get("moments_every_row", {})
        print(f"  every-row moments over {every.get('rows', 0):,} rows; median |excess kurtosis| "
              f"{every.get('excess_kurtosis', {}).get('median_abs')}")
        print(f"  verdict gaussian={report['verdict']['gaussian']}, {report['timing']['seconds']:.1f} s inside audit()")
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
