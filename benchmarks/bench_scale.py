"""How the full-data audit scales with n and d: gaussaudit against the per-feature
scripts a user would write with scipy or statsmodels, and against a bare sort.

Run by hand (not a test); it takes a long time at the default sizes:

    python benchmarks/bench_scale.py                        # n in {1e4, 1e5, 1e6} x d in {512, 768, 1024}
    python benchmarks/bench_scale.py --n 10000 100000 --d 512 --repeat 3
    python benchmarks/bench_scale.py --sizes 10000x768 100000x1024 --peers full per-feature sort
    python benchmarks/bench_scale.py --markdown-out scale.md [--overwrite]

For each size the script writes one float32 .npy file of seeded standard-normal
rows into a temporary folder (chunk by chunk, so the generator never holds the
matrix twice), runs every column below on that same file as a separate process,
and deletes the file after the row of the table. Every entry is the wall time of
a whole process, from start to exit (interpreter start, imports, loading the
file from the page cache, the work, exit), and the peak RSS of that process
alone (/usr/bin/time -f %M). With --repeat R each column runs R
times, round-robin across the columns, and the best (smallest) time is kept,
with the peak RSS of that run.

Columns (--peers picks which run; names in brackets):
  gaussaudit full [full]
      python -m gaussaudit scan X.npy --sample 0 -q: the default audit on every
      row (per-feature AD and DP tests, random and PCA projection tests,
      Mahalanobis norms, multivariate tests), using every core.
  per-feature [per-feature]
      the same plus --projections 0 --pca-projections 0 --no-mahalanobis
      --mv-sample 0: only the per-feature Anderson-Darling and
      D'Agostino-Pearson tests, the work the peers below do.
  scipy loop [scipy]
      load X, row norms, L2-normalise rows in float64, scipy.stats.anderson on
      every column in a Python loop, scipy.stats.normaltest(u, axis=0) (the
      SCIPY_LOOP script of benchmarks/bench_scan.py; single-threaded).
  statsmodels [statsmodels]
      load and normalise the same way, then one vectorised call
      statsmodels.stats.diagnostic.normal_ad(u, axis=0) plus
      scipy.stats.normaltest(u, axis=0).
  bare sort [sort]
      load X and np.sort(x, axis=0), nothing else: a floor for any exact
      per-feature AD test, which has to sort every column.

Skipping. Before a size's runs, every selected column is run once on the first
8 and the first 32 columns of the file (same n); time and peak RSS are
extrapolated linearly in d. A peer (scipy, statsmodels, sort) whose estimate
exceeds --max-seconds is skipped ("skipped (est. 1234 s)"); any column, the
gaussaudit ones included, whose estimated peak memory exceeds --max-memory-gb
or the memory available right now is skipped ("skipped (needs ~N GB)"). The
statsmodels memory estimate is at least 5 float64 n x d temporaries plus x and
u, whatever the extrapolation says. As a last guard a watchdog kills any run
whose RSS passes the memory limit, and a peer run that passes twice
--max-seconds.

Afterwards the script prints how cost grows: the least-squares slope b of
log(time) = a + b log(n) over n at each d, and over d at each n, for gaussaudit
full and per-feature. At small n process start-up dominates, so b < 1 there.
"""
from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_scan import PER_FEATURE_ONLY, SCIPY_LOOP  # noqa: E402  (same scipy script, same flags)

STATSMODELS_VEC = r"""
import json, sys, warnings
import numpy as np
from scipy import stats
from statsmodels.stats.diagnostic import normal_ad
x = np.load(sys.argv[1]).astype(np.float64)
norms = np.linalg.norm(x, axis=1)
u = x / norms[:, None]
warnings.simplefilter("ignore", FutureWarning)
a2, _ = normal_ad(u, axis=0)
p = stats.normaltest(u, axis=0).pvalue
json.dump({"norm_cv": float(norms.std() / norms.mean()), "a2": a2.tolist(), "p": p.tolist()},
          open(sys.argv[2], "w"))
"""

BARE_SORT = r"""
import sys
import numpy as np
x = np.load(sys.argv[1])
np.sort(x, axis=0)
"""

PEERS = ["full", "per-feature", "scipy", "statsmodels", "sort"]
LABELS = {"full": "gaussaudit full", "per-feature": "per-feature", "scipy": "scipy loop",
          "statsmodels": "statsmodels", "sort": "bare sort"}
TIME_CAPPED = {"scipy", "statsmodels", "sort"}  # peers: skipped when too slow; gaussaudit always runs
EST_COLS = (8, 32)
GB = 1024**3


# ---------------------------------------------------------------- processes

@dataclass
class Run:
    seconds: float
    rss_bytes: int
    error: str | None = None


TIME = "/usr/bin/time"


def child_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            kids = fh.read().split()
        return int(kids[0]) if kids else None
    except (OSError, ValueError):
        return None


def vm_rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next((int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS:")), 0)
    except (OSError, ValueError):
        return 0


def run_process(cmd: list[str], env: dict, mem_limit: float, time_limit: float | None) -> Run:
    """Wall time and peak RSS of one process running cmd.

    The command runs under /usr/bin/time -f '%M', which forks it from a small
    process: a child forked straight from this script would inherit this
    script's RSS as the start of its own high-water mark (Linux keeps maxrss
    across fork and exec), so os.wait4's rusage would never read below it.
    Without /usr/bin/time, os.wait4's rusage of the child is used, with that
    floor. Wall time is measured here, from just before the start to the exit.

    A watchdog thread kills the command if its RSS passes mem_limit bytes or it
    runs longer than time_limit seconds."""
    use_time = os.access(TIME, os.X_OK)
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r", suffix=".time") as rss_file:
        argv = [TIME, "-f", "%M", "-o", rss_file.name] + cmd if use_time else cmd
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
        done = threading.Event()
        lock = threading.Lock()
        killed: list[str] = []

        def watch() -> None:
            target = None
            while not done.wait(0.1):
                with lock:
                    if done.is_set():
                        return
                    if target is None:
                        target = child_pid(proc.pid) if use_time else proc.pid
                        if target is None:
                            continue
                    rss = vm_rss(target)
                    why = None
                    if rss > mem_limit:
                        why = f"killed at {rss / GB:.1f} GB RSS"
                    elif time_limit is not None and time.perf_counter() - start > time_limit:
                        why = f"killed after {time_limit:.0f} s"
                    if why:
                        killed.append(why)
                        try:
                            os.kill(target, signal.SIGKILL)  # /usr/bin/time then exits by itself
                        except ProcessLookupError:
                            pass
                        return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        with lock:
            done.set()
        proc.returncode = os.waitstatus_to_exitcode(status)
        watcher.join()
        rss = usage.ru_maxrss * 1024
        if use_time:
            lines = rss_file.read().split()
            rss = int(lines[-1]) * 1024 if lines and lines[-1].isdigit() else 0
        error = None
        if killed:
            error = killed[0]
        elif proc.returncode != 0:
            err.seek(0)
            tail = [line for line in err.read().decode(errors="replace").strip().splitlines()
                    if not line.startswith("Command exited with non-zero status")]
            error = f"exit {proc.returncode}: {tail[-1] if tail else ''}"
        return Run(seconds, rss, error)


#: Extra options for the gaussaudit runs (``--device cuda`` on a GPU machine).
SCAN_EXTRA: list[str] = []


def commands(path: str, scripts: dict[str, str], out_json: str) -> dict[str, list[str]]:
    scan = [sys.executable, "-m", "gaussaudit", "scan", path, "--sample", "0", "-q", *SCAN_EXTRA]
    return {
        "full": scan,
        "per-feature": scan + PER_FEATURE_ONLY,
        "scipy": [sys.executable, scripts["scipy"], path, out_json],
        "statsmodels": [sys.executable, scripts["statsmodels"], path, out_json],
        "sort": [sys.executable, scripts["sort"], path],
    }


# ---------------------------------------------------------------- data

def write_normal(path: str, n: int, d: int, seed: int) -> None:
    """Seeded standard-normal float32 n x d .npy, written chunk by chunk."""
    rng = np.random.default_rng([seed, n, d])
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    step = max(1, (64 << 20) // (4 * d))
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        out[lo:hi] = rng.standard_normal((hi - lo, d), dtype=np.float32)
    out.flush()
    del out


def write_columns(src: str, dst: str, k: int) -> None:
    """The first k columns of the .npy at src, as a C-ordered .npy at dst."""
    x = np.load(src, mmap_mode="r")
    out = np.lib.format.open_memmap(dst, mode="w+", dtype=x.dtype, shape=(x.shape[0], k))
    step = max(1, (64 << 20) // (4 * x.shape[1]))
    for lo in range(0, x.shape[0], step):
        out[lo:lo + step] = x[lo:lo + step, :k]
    out.flush()
    del out, x


# ---------------------------------------------------------------- machine

def meminfo(key: str) -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def machine_lines() -> list[str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    import scipy
    try:
        import statsmodels
        sm = statsmodels.__version__
    except ImportError:
        sm = "not installed"
    blas = "?"
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{cfg.get('name', '?')} {cfg.get('version', '')}".strip()
    except Exception:
        pass
    env = child_env()
    ga = subprocess.run([sys.executable, "-c", "import gaussaudit, os; print(gaussaudit.__version__, "
                         "os.path.dirname(os.path.dirname(gaussaudit.__file__)))"],
                        env=env, capture_output=True, text=True).stdout.strip() or "?"
    return [
        f"- CPU: {cpu}; {len(os.sched_getaffinity(0))} cores usable (os.sched_getaffinity), {os.cpu_count()} online",
        f"- RAM: {meminfo('MemTotal') / GB:.1f} GB total, {meminfo('MemAvailable') / GB:.1f} GB available at start",
        f"- Python {platform.python_version()}; numpy {np.__version__}; scipy {scipy.__version__}; "
        f"statsmodels {sm}; BLAS {blas}",
        f"- gaussaudit {ga}",
    ]


def child_env() -> dict:
    """Children import gaussaudit from this checkout, whatever is installed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([REPO] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


# ---------------------------------------------------------------- one size

@dataclass
class Cell:
    best: Run | None = None
    skipped: str | None = None
    est_seconds: float | None = None
    est_bytes: float | None = None


@dataclass
class Row:
    n: int
    d: int
    cells: dict[str, Cell] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def floor_bytes(peer: str, n: int, d: int) -> float:
    """Known lower bounds on peak memory, used when above the extrapolation."""
    if peer == "statsmodels":
        return (5 + 2) * n * d * 8  # x and u in float64, ~5 float64 temporaries in normal_ad
    if peer == "scipy":
        return 2 * n * d * 8 + n * d * 4
    if peer == "sort":
        return 2 * n * d * 4
    return n * d * 4


def extrapolate(k1: int, v1: float, k2: int, v2: float, d: int) -> float:
    slope = max(0.0, (v2 - v1) / (k2 - k1))
    return v2 + slope * (d - k2)


def run_size(n: int, d: int, args, tmp: str, scripts: dict[str, str], env: dict, log) -> Row:
    row = Row(n, d, {p: Cell() for p in args.peers})
    path = os.path.join(tmp, f"x_{n}x{d}.npy")
    out_json = os.path.join(tmp, "out.json")
    need = n * d * 4 * (1 + 8 / d + 32 / d)
    if os.statvfs(tmp).f_bavail * os.statvfs(tmp).f_frsize < need + GB:
        for cell in row.cells.values():
            cell.skipped = f"skipped (no disk for {need / GB:.1f} GB)"
        return row
    t0 = time.perf_counter()
    write_normal(path, n, d, args.seed)
    log(f"[{n:,} x {d}] wrote {n * d * 4 / GB:.2f} GB in {time.perf_counter() - t0:.1f} s")
    try:
        mem_limit = args.max_memory_gb * GB
        # Estimates from the first 8 and 32 columns, extrapolated linearly in d.
        if d > EST_COLS[1]:
            subs = {}
            for k in EST_COLS:
                subs[k] = os.path.join(tmp, f"x_{n}x{k}.npy")
                write_columns(path, subs[k], k)
            for peer in args.peers:
                runs = {}
                for k in EST_COLS:
                    runs[k] = run_process(commands(subs[k], scripts, out_json)[peer], env, mem_limit,
                                          2 * args.max_seconds)
                cell = row.cells[peer]
                if any(r.error for r in runs.values()):
                    why = next(r.error for r in runs.values() if r.error)
                    cell.skipped = "skipped (estimate failed)"
                    row.notes.append(f"{LABELS[peer]}, estimate on {EST_COLS} columns: {why}")
                    log(f"[{n:,} x {d}] {peer}: estimate failed: {why}")
                    continue
                (k1, r1), (k2, r2) = sorted(runs.items())
                cell.est_seconds = extrapolate(k1, r1.seconds, k2, r2.seconds, d)
                cell.est_bytes = max(extrapolate(k1, r1.rss_bytes, k2, r2.rss_bytes, d), floor_bytes(peer, n, d))
                log(f"[{n:,} x {d}] {peer}: est. {cell.est_seconds:.1f} s, {cell.est_bytes / GB:.2f} GB "
                    f"(from {k1} cols {r1.seconds:.2f} s {r1.rss_bytes / 2**20:.0f} MB, "
                    f"{k2} cols {r2.seconds:.2f} s {r2.rss_bytes / 2**20:.0f} MB)")
            for sub in subs.values():
                os.remove(sub)
        else:
            for peer in args.peers:
                row.cells[peer].est_bytes = floor_bytes(peer, n, d)
        for peer, cell in row.cells.items():
            if cell.skipped:
                continue
            avail = meminfo("MemAvailable")
            if cell.est_bytes is not None and cell.est_bytes > min(mem_limit, avail):
                need = cell.est_bytes / GB
                digits = 2 if need < 1 else 1 if need < 10 else 0
                cell.skipped = f"skipped (needs ~{need:.{digits}f} GB"
                cell.skipped += ")" if cell.est_bytes > mem_limit else f", {avail / GB:.1f} GB free)"
            elif peer in TIME_CAPPED and cell.est_seconds is not None and cell.est_seconds > args.max_seconds:
                cell.skipped = f"skipped (est. {cell.est_seconds:.0f} s)"
            if cell.skipped:
                log(f"[{n:,} x {d}] {peer}: {cell.skipped}")
        # The real runs, round-robin over the columns, best of --repeat.
        cmds = commands(path, scripts, out_json)
        for rep in range(args.repeat):
            for peer, cell in row.cells.items():
                if cell.skipped:
                    continue
                r = run_process(cmds[peer], env, mem_limit, 2 * args.max_seconds if peer in TIME_CAPPED else None)
                log(f"[{n:,} x {d}] {peer} run {rep + 1}/{args.repeat}: {r.seconds:.2f} s, "
                    f"{r.rss_bytes / 2**20:.0f} MB" + (f"  ({r.error})" if r.error else ""))
                if r.error:
                    cell.skipped = "failed" if r.error.startswith("exit") else r.error
                    row.notes.append(f"{LABELS[peer]}: {r.error}")
                    cell.best = None
                elif cell.best is None or r.seconds < cell.best.seconds:
                    cell.best = r
    finally:
        for f in os.listdir(tmp):
            if f.endswith(".npy") or f == "out.json":
                os.remove(os.path.join(tmp, f))
    return row


# ---------------------------------------------------------------- report

def fmt_cell(cell: Cell | None) -> str:
    if cell is None:
        return "—"
    if cell.best is not None:
        return f"{cell.best.seconds:.2f}"
    return cell.skipped or "—"


def seconds_of(cell: Cell | None, allow_estimate: bool = False) -> tuple[float | None, bool]:
    if cell is None:
        return None, False
    if cell.best is not None:
        return cell.best.seconds, False
    if allow_estimate and cell.skipped and cell.skipped.startswith("skipped (est.") and cell.est_seconds:
        return cell.est_seconds, True
    return None, False


def ratio(row: Row, a: str, b: str) -> str:
    ta, ea = seconds_of(row.cells.get(a), allow_estimate=True)
    tb, eb = seconds_of(row.cells.get(b), allow_estimate=True)
    if ta is None or tb is None or tb <= 0:
        return "—"
    return f"≈{ta / tb:.1f}" if ea or eb else f"{ta / tb:.2f}"


def table(rows: list[Row]) -> list[str]:
    head = ["n", "d", "gaussaudit full s", "per-feature s", "scipy loop s", "statsmodels s", "bare sort s",
            "scipy / per-feature", "scipy / full", "full / sort", "per-feature / sort", "full peak RSS MB"]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" for _ in head) + "|"]
    for row in rows:
        full = row.cells.get("full")
        rss = f"{full.best.rss_bytes / 2**20:.0f}" if full and full.best else "—"
        vals = [f"{row.n:,}", str(row.d)] + [fmt_cell(row.cells.get(p)) for p in PEERS] + [
            ratio(row, "scipy", "per-feature"), ratio(row, "scipy", "full"),
            ratio(row, "full", "sort"), ratio(row, "per-feature", "sort"), rss]
        out.append("| " + " | ".join(vals) + " |")
    return out


def rss_table(rows: list[Row], peers: list[str]) -> list[str]:
    head = ["n", "d"] + [f"{LABELS[p]} MB" for p in peers]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" for _ in head) + "|"]
    for row in rows:
        vals = [f"{row.n:,}", str(row.d)]
        for p in peers:
            c = row.cells.get(p)
            vals.append(f"{c.best.rss_bytes / 2**20:.0f}" if c and c.best else "—")
        out.append("| " + " | ".join(vals) + " |")
    return out


def slope(xs: list[float], ys: list[float]) -> float:
    lx, ly = np.log(xs), np.log(ys)
    return float(np.polyfit(lx, ly, 1)[0])


def growth(rows: list[Row], peers: list[str]) -> list[str]:
    out = []
    for peer in [p for p in ("full", "per-feature") if p in peers]:
        for over, other in (("n", "d"), ("d", "n")):
            groups: dict[int, list[tuple[int, float]]] = {}
            for row in rows:
                c = row.cells.get(peer)
                if c and c.best:
                    groups.setdefault(getattr(row, other), []).append((getattr(row, over), c.best.seconds))
            for key in sorted(groups):
                pts = sorted(groups[key])
                if len({x for x, _ in pts}) < 2:
                    continue
                b = slope([x for x, _ in pts], [t for _, t in pts])
                rng = f"{pts[0][0]:,}..{pts[-1][0]:,}"
                out.append(f"| {LABELS[peer]} | {over} ({rng}) | {other} = {key:,} | {b:.2f} |")
    if not out:
        return ["(needs at least two sizes of n or of d with results)"]
    return ["| command | over | at | exponent b |", "|---|---|---|---:|"] + out


def report(rows: list[Row], args, machine: list[str], done: bool) -> str:
    lines = ["# gaussaudit scaling benchmark (benchmarks/bench_scale.py)", ""]
    if SCAN_EXTRA:
        lines += [f"gaussaudit runs with {' '.join(SCAN_EXTRA)}", ""]
    lines += machine
    lines += ["", f"Seeded standard-normal float32 data; every entry is a whole process (start to exit, "
                  f"data in the page cache), best of {args.repeat} run{'s' if args.repeat > 1 else ''} "
                  f"(--repeat {args.repeat}); time in seconds. Peers are skipped above --max-seconds "
                  f"{args.max_seconds:g} (estimated from the first {EST_COLS[0]} and {EST_COLS[1]} columns, "
                  f"linear in d); any column above --max-memory-gb {args.max_memory_gb:.1f}. "
                  f"≈ marks a ratio using a skipped peer's estimate.", ""]
    if not done:
        lines += ["(in progress)", ""]
    lines += table(rows)
    notes = [f"- {row.n:,} x {row.d}: {note}" for row in rows for note in row.notes]
    if notes:
        lines += ["", "Notes:"] + notes
    lines += ["", "Peak RSS of each process (MB):", ""] + rss_table(rows, args.peers)
    lines += ["", "How cost grows: least-squares slope b of log(time) = a + b log(size), "
                  "gaussaudit full and per-feature:", ""] + growth(rows, args.peers)
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main

def parse_size(text: str) -> tuple[int, int]:
    try:
        n, d = text.lower().replace("_", "").split("x")
        return int(n), int(d)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NxD such as 100000x768, got {text!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="See the module docstring for what each column measures.")
    ap.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000, 1_000_000], help="row counts")
    ap.add_argument("--d", type=int, nargs="+", default=[512, 768, 1024], help="dimensions")
    ap.add_argument("--sizes", type=parse_size, nargs="+", metavar="NxD",
                    help="explicit sizes such as 10000x512 (instead of the --n x --d grid)")
    ap.add_argument("--peers", nargs="+", choices=PEERS, default=PEERS, help="columns to run (default: all)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per entry; the best is reported (default 1)")
    ap.add_argument("--max-seconds", type=float, default=240.0,
                    help="skip a peer whose estimated time exceeds this (default 240)")
    ap.add_argument("--max-memory-gb", type=float, default=None,
                    help="skip any column whose estimated peak memory exceeds this (default: 70%% of MemTotal)")
    ap.add_argument("--markdown-out", metavar="FILE", help="also write the report as markdown to FILE")
    ap.add_argument("--overwrite", action="store_true", help="allow --markdown-out to replace an existing file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="--device for the gaussaudit runs: cpu (default), cuda, auto")
    ap.add_argument("--tmpdir", default=None, help="folder for the temporary .npy files (default: system temp)")
    args = ap.parse_args()

    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    SCAN_EXTRA[:] = [] if args.device == "cpu" else ["--device", args.device]
    if args.max_memory_gb is None:
        args.max_memory_gb = 0.7 * meminfo("MemTotal") / GB
    args.peers = [p for p in PEERS if p in args.peers]
    if args.markdown_out:
        if os.path.isdir(args.markdown_out):
            ap.error(f"--markdown-out {args.markdown_out} is a folder")
        if os.path.exists(args.markdown_out) and not args.overwrite:
            ap.error(f"--markdown-out {args.markdown_out} exists; pass --overwrite to replace it")
    sizes = args.sizes or [(n, d) for n in args.n for d in args.d]
    for n, d in sizes:
        if n < 8 or d < 2:
            ap.error(f"size {n}x{d} is too small")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    machine = machine_lines()
    env = child_env()
    rows: list[Row] = []

    def save(done: bool) -> None:
        if args.markdown_out:
            with open(args.markdown_out, "w") as fh:
                fh.write(report(rows, args, machine, done))

    with tempfile.TemporaryDirectory(prefix="bench_scale_", dir=args.tmpdir) as tmp:
        scripts = {}
        for name, text in (("scipy", SCIPY_LOOP), ("statsmodels", STATSMODELS_VEC), ("sort", BARE_SORT)):
            # Not named scipy.py: a script's folder comes first on sys.path and would shadow the package.
            scripts[name] = os.path.join(tmp, f"peer_{name}.py")
            with open(scripts[name], "w") as fh:
                fh.write(text)
        for n, d in sizes:
            rows.append(run_size(n, d, args, tmp, scripts, env, log))
            save(done=False)
    save(done=True)
    print(report(rows, args, machine, done=True), end="")


if __name__ == "__main__":
    main()
