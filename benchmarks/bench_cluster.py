"""The reading pass on a Dask cluster against one process: rows/s, peak memory,
exactness, and the scheduler's overhead per shard.

Run by hand (not a test); needs the ``dask`` extra:

    python benchmarks/bench_cluster.py            # 20 shards of 100,000 x 512 float32 .npy (4.1 GB), ~4 min on 2 cores
    python benchmarks/bench_cluster.py --quick    # 4 shards of 20,000 x 128 and a 200-task plan, under a minute
    python benchmarks/bench_cluster.py --shards 8 --rows 50000 --dim 256 --plan-tasks 500

Part 1. The shards are written once into ``--data`` (default
/tmp/gaussaudit-bench-cluster; file names carry the shape, so files of the
right shape are reused, and a quick run does not overwrite the full one's).
Every file is read once, untimed, before the runs, so the OS page cache is
warm for all of them alike (``--no-warm`` skips it: then say so when quoting).
Each configuration then runs in a fresh subprocess, so peak memory does not
mix between them:

* single process, ``threads=1``, and with the default threads (every core);
* a LocalCluster of 1 worker, and of 2 workers (``gaussaudit.cluster.connect
  ("local", n)``: processes, one thread per worker). The cluster is started
  and its workers import gaussaudit before the clock starts (reported apart);
* the same two clusters with Dask's default ``MALLOC_TRIM_THRESHOLD_=65536``
  on the workers ("Dask's trim default"; ``--skip-malloc`` leaves them out).
  Dask's nannies set it (``distributed.nanny.pre-spawn-environ``), which
  stops glibc from raising its mmap threshold: every slab the pass allocates
  is then a fresh mmap, page-faulted in and unmapped again, and the pass ran
  about 2.3x slower on a worker than in a process. ``connect("local")``
  unsets it; a cluster started elsewhere has it unless its config unsets it
  (docs/scale.md).

In each, the reading pass alone is timed, ``read_pass(open_dataset(paths),
chosen)`` with ``chosen = sample_indices(n, --sample, seed=0)`` (``client=``
on a cluster), and then the whole ``audit(paths, sample=--sample)``. Peak
memory is the process's ``VmHWM`` (/proc/self/status; ``ru_maxrss`` is not
used: after exec it keeps the parent's peak when that was higher): of the
process for a single process; of the client process (which also runs the LocalCluster's
scheduler) and of each worker process (via ``client.run``) on a cluster; the
nannies are not counted. Peaks after the audit include the pass's. The
pass's every-row state and sample (hashed bit for bit) and the audit's
``to_dict()`` (less ``timing``) of every configuration are checked against
the single process with threads=1; the script exits 1 if any differs.

Part 2, a simulated plan of ``--plan-tasks`` shards (metadata only): on a
2-worker LocalCluster, ``gaussaudit.cluster.cluster_pass`` runs over a
dataset of that many shards (the real .npy shards' metadata, repeated), with
the worker side replaced by a function that takes the same arguments (the
pickled shard, its ~``sample / tasks`` sample indices, ...) and returns, without
reading, a ShardPart of the real size (the every-row state of a real shard,
and the shard's sample columns). So everything cluster_pass does per shard
(plan, submit, schedule, send, gather, merge) is timed, except the reading.
Wall time / tasks is the overhead per shard; it is compared with the read
time of one shard, single process, threads=1, from part 1 (scaled to a
100,000 x 512 shard when the shards are of another size, marked "est."). The
criterion: under 5 %.

``--save`` appends the numbers as one JSON line to benchmarks/results/cluster.jsonl.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "benchmarks", "results", "cluster.jsonl")
DEFAULT_DATA = "/tmp/gaussaudit-bench-cluster"
#: The shard the overhead criterion is about.
REFERENCE_SHARD = (100_000, 512)
OVERHEAD_LIMIT = 0.05

#: name -> (label, workers or None for one process, threads, Dask's default MALLOC_TRIM_THRESHOLD_ on the workers)
CONFIGS = {
    "single-1": ("single process, threads=1", None, 1, False),
    "single": ("single process, default threads", None, None, False),
    "cluster-1": ("LocalCluster, 1 worker", 1, None, False),
    "cluster-2": ("LocalCluster, 2 workers", 2, None, False),
    "cluster-1-malloc": ("LocalCluster, 1 worker, Dask's trim default", 1, None, True),
    "cluster-2-malloc": ("LocalCluster, 2 workers, Dask's trim default", 2, None, True),
}
MALLOC_ROWS = ("cluster-1-malloc", "cluster-2-malloc")
BASELINE = "single-1"


# ---------------------------------------------------------------- data

def shard_paths(folder: str, shards: int, rows: int, dim: int) -> list[str]:
    return [os.path.join(folder, f"part-{i:05d}-{rows}x{dim}.npy") for i in range(shards)]


def _has_shape(path: str, rows: int, dim: int) -> bool:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception:
        return False
    return arr.shape == (rows, dim) and arr.dtype == np.float32 and arr.flags.c_contiguous


def prepare_data(paths: list[str], rows: int, dim: int, seed: int) -> tuple[int, float]:
    """Write the shards that are missing or of another shape; return (written, seconds)."""
    os.makedirs(os.path.dirname(paths[0]), exist_ok=True)
    rng = np.random.default_rng(seed)
    scale = (0.5 + rng.random(dim)).astype(np.float32)  # anisotropic, non-zero mean: a non-trivial norm CV
    shift = (0.2 * rng.standard_normal(dim)).astype(np.float32)
    written, started = 0, time.perf_counter()
    for i, path in enumerate(paths):
        if _has_shape(path, rows, dim):
            continue
        x = np.random.default_rng([seed, i]).standard_normal((rows, dim), dtype=np.float32)
        x *= scale
        x += shift
        tmp = path + ".tmp.npy"
        np.save(tmp, x)
        os.replace(tmp, path)
        written += 1
    return written, time.perf_counter() - started


def warm_cache(paths: list[str]) -> tuple[float, int]:
    """Read every file once; return (seconds, bytes)."""
    started, total = time.perf_counter(), 0
    buf = bytearray(16 << 20)
    for path in paths:
        with open(path, "rb", buffering=0) as fh:
            while n := fh.readinto(buf):
                total += n
    return time.perf_counter() - started, total


# ---------------------------------------------------------------- exactness

def _feed(obj, h) -> None:
    """Hash ``obj`` bit for bit: arrays by dtype, shape and bytes; floats by hex."""
    if isinstance(obj, np.ndarray):
        h.update(f"a{obj.dtype.str}{obj.shape}".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, (float, np.floating)):
        h.update(b"f" + float(obj).hex().encode())
    elif obj is None or isinstance(obj, (bool, int, str, np.integer, np.bool_)):
        h.update(b"s" + repr(obj).encode())
    elif isinstance(obj, (list, tuple)):
        h.update(b"[")
        for item in obj:
            _feed(item, h)
        h.update(b"]")
    elif isinstance(obj, dict):
        h.update(b"{")
        for key in sorted(obj):
            _feed(key, h)
            _feed(obj[key], h)
        h.update(b"}")
    elif dataclasses.is_dataclass(obj):
        h.update(type(obj).__name__.encode())
        _feed({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}, h)
    else:
        raise TypeError(f"cannot hash {type(obj).__name__}")


def digest(obj) -> str:
    h = hashlib.sha256()
    _feed(obj, h)
    return h.hexdigest()


def report_digest(report) -> str:
    d = report.to_dict()
    d.pop("timing", None)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------- children

def _peak_self() -> int:
    """This process's peak RSS in bytes: VmHWM, which starts afresh at exec. (ru_maxrss
    does not: a child started by exec reports its parent's peak when that was higher.)"""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _worker_peak() -> int:
    return _peak_self()


def _worker_import() -> bool:
    import gaussaudit.cluster  # noqa: F401
    import gaussaudit.streaming  # noqa: F401

    return True


def child_config(name: str, paths: list[str], sample: int) -> dict:
    from gaussaudit import audit
    from gaussaudit.io import open_dataset
    from gaussaudit.prep import sample_indices
    from gaussaudit.streaming import read_pass

    _, workers, threads, dask_trim = CONFIGS[name]
    out: dict = {"config": name, "peak_start": _peak_self()}

    def measure(client):
        dataset = open_dataset(paths)
        chosen = sample_indices(dataset.n_rows, sample, seed=0)
        started = time.perf_counter()
        passed = read_pass(dataset, chosen, threads=threads, client=client)
        out["read_s"] = time.perf_counter() - started
        out["pass_digest"] = digest(passed)
        del passed
        out["peak_read"] = _peak_self()
        if client is not None:
            out["worker_peak_read"] = sorted(client.run(_worker_peak).values())
        started = time.perf_counter()
        report = audit(paths, sample=sample, threads=threads, client=client)
        out["audit_s"] = time.perf_counter() - started
        out["audit_digest"] = report_digest(report)
        out["verdict"] = bool(report.verdict.gaussian)
        out["peak_audit"] = _peak_self()
        if client is not None:
            out["worker_peak_audit"] = sorted(client.run(_worker_peak).values())

    if workers is None:
        measure(None)
    else:
        from gaussaudit.cluster import connect

        if dask_trim:  # what Dask's nannies give workers by default (connect("local") unsets it)
            os.environ["MALLOC_TRIM_THRESHOLD_"] = "65536"  # the workers inherit it from this process
        started = time.perf_counter()
        with connect("local", workers) as client:
            client.wait_for_workers(workers)
            client.run(_worker_import)  # every worker has imported gaussaudit before the clock starts
            out["cluster_start_s"] = time.perf_counter() - started
            out["worker_peak_start"] = sorted(client.run(_worker_peak).values())
            measure(client)
    return out


def _install_template(stats, dask_worker=None):
    dask_worker._gaussaudit_bench_stats = stats
    return True


def _simulated_shard_part(shard, chosen, normalize, threads, exponent):
    """shard_part's signature and result, without the reading: the every-row
    state of a real shard (installed on the worker once) and zero-filled sample
    columns of the shard's share of the sample."""
    import distributed

    from gaussaudit.streaming import ShardPart

    stats = distributed.get_worker()._gaussaudit_bench_stats
    m = shard.n_rows if chosen is None else len(chosen)
    return ShardPart(stats, np.zeros((shard.dim, m), dtype=np.float32), np.ones(m), np.ones(m, dtype=bool),
                     shard.n_rows)


def _simulated_first_exponent(shard):
    return 0


def _noop(i):
    return i


def child_plan(paths: list[str], sample: int, tasks: int, repeats: int) -> dict:
    import pickle

    import distributed

    import gaussaudit.cluster as gc
    from gaussaudit.cluster import cluster_pass, connect
    from gaussaudit.io import open_dataset
    from gaussaudit.io.sources import Dataset
    from gaussaudit.prep import sample_indices
    from gaussaudit.streaming import shard_part

    real = open_dataset(paths)
    template = shard_part(real.shards[0], None, True, 1, 0)  # a real shard's every-row state
    dataset = Dataset([real.shards[i % len(real.shards)] for i in range(tasks)])
    chosen = sample_indices(dataset.n_rows, sample, seed=0)
    warm_set = Dataset(dataset.shards[:20])
    warm_chosen = sample_indices(warm_set.n_rows, min(sample, warm_set.n_rows // 2), seed=0)
    out: dict = {"tasks": tasks, "sample": sample, "workers": 2,
                 "stats_bytes": len(pickle.dumps(template.stats)),
                 "shard_arg_bytes": len(pickle.dumps(real.shards[0])),
                 "rows_per_task": (len(chosen) if chosen is not None else dataset.n_rows) / tasks}
    saved = gc.shard_part, gc.first_exponent
    gc.shard_part, gc.first_exponent = _simulated_shard_part, _simulated_first_exponent
    try:
        with connect("local", 2) as client:
            client.wait_for_workers(2)
            client.run(_worker_import)
            client.run(_install_template, template.stats)
            cluster_pass(client, warm_set, warm_chosen)  # untimed: the function reaches the workers
            walls = []
            for _ in range(repeats):
                started = time.perf_counter()
                result = cluster_pass(client, dataset, chosen)
                walls.append(time.perf_counter() - started)
                assert result.stats.norms.count == tasks * template.stats.norms.count
                assert result.tested.shape == (real.dim, len(chosen))
                del result
            futures = [client.submit(_noop, i, pure=False) for i in range(20)]
            client.gather(futures)
            started = time.perf_counter()
            futures = [client.submit(_noop, i, pure=False) for i in range(tasks)]
            for future in distributed.as_completed(futures):
                future.result()
            out["noop_s"] = time.perf_counter() - started
            del futures
    finally:
        gc.shard_part, gc.first_exponent = saved
    out["walls"] = walls
    out["wall_s"] = statistics.median(walls)
    return out


def run_child(args, kind: str) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    cmd = [sys.executable, os.path.abspath(__file__), "--_child", kind, "--_out", out, "--data", args.data,
           "--shards", str(args.shards), "--rows", str(args.rows), "--dim", str(args.dim),
           "--sample", str(args.sample), "--plan-tasks", str(args.plan_tasks), "--plan-repeats", str(args.plan_repeats)]
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    try:
        if proc.returncode != 0:
            sys.exit(f"{kind} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}")
        with open(out) as fh:
            return json.load(fh)
    finally:
        os.unlink(out)


# ---------------------------------------------------------------- report

def mib(b: float) -> str:
    return f"{b / 2**20:,.0f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths), *map(fmt, rows)])


def render_part1(results: dict, n_rows: int, stage: str) -> str:
    base, default = results[BASELINE], results["single"]
    wall, peak, wpeak = f"{stage}_s", f"peak_{stage}", f"worker_peak_{stage}"
    rows = []
    for name, (label, workers, _, _) in CONFIGS.items():
        if name not in results:
            continue
        r = results[name]
        total = r[peak] + sum(r.get(wpeak, []))
        rows.append([
            label,
            f"{r[wall]:.2f}",
            f"{n_rows / r[wall]:,.0f}",
            f"{base[wall] / r[wall]:.2f}x",
            f"{default[wall] / r[wall]:.2f}x",
            mib(r[peak]),
            "-" if workers is None else " / ".join(mib(w) for w in r[wpeak]),
            mib(total),
            f"{total / base[peak]:.2f}x",
        ])
    header = ["configuration", "wall s", "rows/s", "speed vs 1t", "vs default", "peak MiB (process/client)",
              "per worker MiB", "sum MiB", "mem vs 1t"]
    return table(header, rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DEFAULT_DATA, help=f"folder for the shards (default {DEFAULT_DATA}; kept)")
    ap.add_argument("--shards", type=int, default=None, help="shards (default 20; --quick 4)")
    ap.add_argument("--rows", type=int, default=None, help="rows per shard (default 100,000; --quick 20,000)")
    ap.add_argument("--dim", type=int, default=None, help="dimension (default 512; --quick 128)")
    ap.add_argument("--sample", type=int, default=10_000, help="rows of the seeded sample (default 10,000)")
    ap.add_argument("--plan-tasks", type=int, default=None, help="shards of the simulated plan (default 1,000; --quick 200)")
    ap.add_argument("--plan-repeats", type=int, default=3, help="timed runs of the plan; the median is reported (default 3)")
    ap.add_argument("--quick", action="store_true", help="4 shards of 20,000 x 128 and a 200-task plan")
    ap.add_argument("--no-warm", action="store_true", help="skip the untimed read that warms the page cache")
    ap.add_argument("--skip-plan", action="store_true", help="part 1 only")
    ap.add_argument("--skip-malloc", action="store_true",
                    help="leave out the cluster rows with Dask's default MALLOC_TRIM_THRESHOLD_ on the workers")
    ap.add_argument("--seed", type=int, default=0, help="seed of the data (default 0)")
    ap.add_argument("--save", action="store_true", help=f"append a JSON line to {os.path.relpath(RESULTS, REPO)}")
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    ap.add_argument("--_out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    quick = dict(shards=4, rows=20_000, dim=128, plan_tasks=200)
    full = dict(shards=20, rows=100_000, dim=512, plan_tasks=1_000)
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    paths = shard_paths(args.data, args.shards, args.rows, args.dim)

    if args._child:
        if args._child == "plan":
            out = child_plan(paths, args.sample, args.plan_tasks, args.plan_repeats)
        else:
            out = child_config(args._child, paths, args.sample)
        with open(args._out, "w") as fh:
            json.dump(out, fh)
        return 0

    try:
        import distributed  # noqa: F401
    except ImportError:
        sys.exit("needs dask.distributed: pip install 'gaussaudit[dask]'")
    started = time.perf_counter()
    n_rows = args.shards * args.rows
    written, write_s = prepare_data(paths, args.rows, args.dim, args.seed)
    size = sum(os.path.getsize(p) for p in paths)
    cores = len(os.sched_getaffinity(0))
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    print(f"machine: {platform.processor() or platform.machine()}, {cores} cores, {ram / 2**30:.1f} GiB RAM, "
          f"Python {platform.python_version()}")
    print(f"data: {args.shards} x {args.rows:,} x {args.dim} float32 .npy = {n_rows:,} rows, {size / 2**30:.2f} GiB "
          f"in {args.data} ({f'{written} written in {write_s:.0f} s' if written else 'reused'}); "
          f"sample {args.sample:,}, seed 0")
    if args.no_warm:
        print("page cache: not warmed on purpose (files may still be cached from earlier runs or from writing)")
    else:
        warm_s, warm_b = warm_cache(paths)
        print(f"page cache: warmed by one untimed read of every file ({warm_b / 2**30:.2f} GiB in {warm_s:.1f} s, "
              f"{warm_b / 2**20 / warm_s:,.0f} MiB/s)" + ("; the data is more than half the RAM: reads may still "
                                                          "hit the disk" if size > ram / 2 else ""))

    results = {}
    for name in CONFIGS:
        if args.skip_malloc and name in MALLOC_ROWS:
            continue
        print(f"  running {CONFIGS[name][0]} ...", flush=True)
        results[name] = run_child(args, name)

    print()
    print("Part 1: reading pass only, read_pass(open_dataset(paths), chosen)"
          f" (speed ratios vs single process threads=1 and default threads={cores}; memory vs threads=1)")
    print(render_part1(results, n_rows, "read"))
    print()
    print(f"Part 1: whole audit(paths, sample={args.sample:,}) (the tests after the pass run in the process/client: "
          "on 1 thread in the threads=1 row, on the default threads in the others)")
    print(render_part1(results, n_rows, "audit"))
    if any(name in results for name in MALLOC_ROWS):
        print("  Dask's trim default: the workers run with MALLOC_TRIM_THRESHOLD_=65536, as Dask's nannies set it "
              "(see the docstring); the other cluster rows are gaussaudit.cluster.connect as it is, which unsets it")
    for name in [n for n in CONFIGS if n.startswith("cluster") and n in results]:
        r = results[name]
        print(f"  {CONFIGS[name][0]}: started, workers importing gaussaudit, in {r['cluster_start_s']:.1f} s "
              f"(not timed above); worker peak before the pass {' / '.join(mib(w) for w in r['worker_peak_start'])} MiB")
    print(f"  process/client peak at start (imports): {mib(results[BASELINE]['peak_start'])} MiB; "
          "the client's peak includes the LocalCluster's scheduler, the nannies are not counted")
    base, default = results[BASELINE], results["single"]
    mismatches = []
    for name, r in results.items():
        if name == BASELINE:
            continue
        same = r["pass_digest"] == base["pass_digest"]
        mismatches += [] if same else [f"{name} (pass)"]
        print(f"  exact: {CONFIGS[name][0]}: pass state + sample vs {CONFIGS[BASELINE][0]}: "
              f"{'identical' if same else 'DIFFERENT'}")
    for name in [n for n in CONFIGS if n.startswith("cluster") and n in results]:
        same = results[name]["audit_digest"] == default["audit_digest"]
        mismatches += [] if same else [f"{name} (audit)"]
        print(f"  exact: {CONFIGS[name][0]}: audit to_dict() less timing vs {CONFIGS['single'][0]} "
              f"(the same tests after the pass): {'identical' if same else 'DIFFERENT'}")
    same = default["audit_digest"] == base["audit_digest"]
    print(f"  (audit to_dict() threads=1 vs default threads: {'identical' if same else 'differs'}"
          + ("" if same else ": the tests after the pass, not the pass, depend on the BLAS thread count") + ")")

    plan = None
    if not args.skip_plan:
        print(f"  running the simulated {args.plan_tasks:,}-shard plan ...", flush=True)
        plan = run_child(args, "plan")
        per_task = plan["wall_s"] / plan["tasks"]
        per_shard = base["read_s"] / args.shards
        scale = (REFERENCE_SHARD[0] * REFERENCE_SHARD[1]) / (args.rows * args.dim)
        reference = per_shard * scale
        estimated = scale != 1
        share = per_task / reference
        two = reference / 2  # two workers finish a shard every half read time
        plan.update(per_task_s=per_task, reference_shard_read_s=reference, reference_estimated=estimated, share=share,
                    share_vs_2_workers=per_task / two,  passed=share < OVERHEAD_LIMIT)
        print()
        print(f"Part 2: simulated {plan['tasks']:,}-shard plan (metadata only), LocalCluster of 2 workers")
        print(f"  each task: a pickled .npy shard ({plan['shard_arg_bytes']:,} B) and ~{plan['rows_per_task']:.0f} "
              f"sample indices in; a ShardPart out (every-row state {plan['stats_bytes']:,} B + "
              f"{args.dim} x ~{plan['rows_per_task']:.0f} sample columns)")
        print(f"  cluster_pass wall: {' / '.join(f'{w:.2f}' for w in plan['walls'])} s, median {plan['wall_s']:.2f} s "
              f"-> {per_task * 1e3:.2f} ms per shard")
        shape = f"{REFERENCE_SHARD[0]:,} x {REFERENCE_SHARD[1]}"
        how = (f"est. from the measured {per_shard * 1e3:.1f} ms per {args.rows:,} x {args.dim} shard, x{scale:.1f}"
               if estimated else "measured in part 1")
        print(f"  one {shape} shard, single process threads=1: {reference * 1e3:.0f} ms ({how})")
        print(f"  overhead share: {per_task * 1e3:.2f} / {reference * 1e3:.0f} ms = {share:.2%} "
              f"-> {'PASS' if share < OVERHEAD_LIMIT else 'FAIL'} (limit {OVERHEAD_LIMIT:.0%})"
              + (" [est.]" if estimated else ""))
        print(f"  (stricter: with 2 workers a shard finishes every {two * 1e3:.0f} ms: {per_task / two:.2%} of that; "
              f"bare Dask, {plan['tasks']:,} no-op tasks submitted and gathered: {plan['noop_s'] / plan['tasks'] * 1e3:.2f} "
              "ms per task)")
    print(f"total {time.perf_counter() - started:.0f} s")

    if args.save:
        os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
        line = {"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "cores": cores, "shards": args.shards, "rows": args.rows,
                "dim": args.dim, "sample": args.sample, "warm": not args.no_warm,
                "configs": {k: {key: v for key, v in r.items() if not key.endswith("digest")} for k, r in results.items()},
                "exact": not mismatches, "plan": plan}
        with open(RESULTS, "a") as fh:
            fh.write(json.dumps(line) + "\n")
        print(f"appended to {os.path.relpath(RESULTS, REPO)}")
    if mismatches:
        print(f"results differ from the single process: {', '.join(mismatches)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
