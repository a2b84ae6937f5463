"""Size (type-I error) and power of the headline tests, by simulation.

Run by hand (not a test; the full grid takes hours on two cores):

    python benchmarks/bench_size_power.py --quick              # a small grid, a few minutes
    python benchmarks/bench_size_power.py                      # the full grid, 500 replicates a cell
    python benchmarks/bench_size_power.py --cells 'size:aniso:*' 'power:*:n2000' --reps 200
    python benchmarks/bench_size_power.py --list               # the cell ids of the grid

It writes a markdown report to docs/size-and-power.md (``--out`` to write
elsewhere) and prints it. Every cell is a set of replicates; replicate r draws
its data from ``np.random.default_rng(r)`` and audits with ``seed=r``, so a
cell's numbers are reproducible one by one. Progress goes to stderr, one line
a cell.

Sections (cell ids in brackets):

- size of the headline tests [size:COV:dD:nN]: the raw and the normalised
  test (one audit) on N(0, I) ("iso") or on an anisotropic Gaussian ("aniso":
  Q diag(λ) Qᵀ, Q a random rotation, λ_k ∝ 1/k, trace d, plus a mean of length
  2·√(trace/d) in a random direction), and the normalised test once more on
  the same rows already L2-normalised before the audit;
- size of the joint tests of the raw rows [joint:COV:dD:nN]: Mardia skewness
  and kurtosis, Henze-Zirkler, energy, Mahalanobis (top 16 principal
  components, ``mv_sample`` = n);
- size of the Rayleigh and Bingham tests of uniformity [unif:COV:dD:nN] on
  normalised isotropic Gaussian rows (uniform on the sphere: H0 true), and on
  the anisotropic ones (H0 false, shown for contrast);
- power [power:NAME:dD:nN] on non-Gaussian alternatives, for the raw and the
  normalised test and the paper's rule.
"""
from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from scipy import stats
from threadpoolctl import threadpool_limits

import gaussaudit.analysis as analysis
from gaussaudit import __version__, audit
from gaussaudit.config import AuditConfig
from gaussaudit.stats.headline import STATISTIC

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "size-and-power.md"
DEFAULT_CACHE = ROOT / "benchmarks" / "results" / "size-power.jsonl"
ALPHA = 0.05
#: Options of every headline audit (fast; the tests' defaults otherwise: calibrate=19, test_sample=5000).
FAST = dict(projections=32, pca_projections=0, mv_sample=0)
#: The rows a headline test sees at most (the default of ``test_sample``).
TEST_SAMPLE = AuditConfig().test_sample
FULL = dict(
    size_d=(8, 16, 32, 64, 256, 768), size_n=(200, 2000, 10000),
    joint_d=(8, 64, 768), joint_n=(2000,),
    unif_d=(8, 64, 768), unif_n=(200, 2000),
    power_d=(64,), power_n=(2000, 200),
    reps=500, joint_reps=500, power_reps=200,
)
#: A smoke test of the whole pipeline (a few minutes on two cores); its intervals are wide.
QUICK = dict(
    size_d=(8, 32), size_n=(200, 2000),
    joint_d=(8, 64), joint_n=(2000,),
    unif_d=(8, 64), unif_n=(200, 2000),
    power_d=(64,), power_n=(2000, 200),
    reps=40, joint_reps=20, power_reps=20,
)


# ---------------------------------------------------------------- data

def anisotropic(d: int) -> tuple[np.ndarray, np.ndarray]:
    """(factor, mean) of the anisotropic Gaussian of dimension d: factor = Q·diag(√λ)
    with Q a random rotation, λ_k = d·(1/k)/Σ(1/j) (trace d), and a mean of length
    2·√(trace/d) = 2 in a random direction. Fixed per d (seed [2024, d]), the
    same law for every replicate of a cell."""
    rng = np.random.default_rng([2024, d])
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    q *= np.sign(np.diag(r))
    lam = 1.0 / np.arange(1, d + 1)
    lam *= d / lam.sum()
    u = rng.standard_normal(d)
    mean = 2.0 * np.sqrt(lam.sum() / d) * u / np.linalg.norm(u)
    return q * np.sqrt(lam), mean


def gaussian(cov: str, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    z = rng.standard_normal((n, d))
    if cov == "iso":
        return z
    factor, mean = anisotropic(d)
    return z @ factor.T + mean


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _student(df: int):
    def draw(n, d, rng):
        return rng.standard_t(df, size=(n, d)) / np.sqrt(df / (df - 2))
    return draw


def _elliptical_t(n, d, rng):
    z = rng.standard_normal((n, d))
    return z / np.sqrt(rng.chisquare(5, size=(n, 1)) / 5)


def _mixture(scale: Callable[[int], float]):
    def draw(n, d, rng):
        means = rng.standard_normal((10, d)) * scale(d)
        return means[rng.integers(10, size=n)] + rng.standard_normal((n, d))
    return draw


def _laplace_mix(k_of_d: Callable[[int], int]):
    def draw(n, d, rng):
        k = k_of_d(d)
        mixing = rng.standard_normal((d, k)) / np.sqrt(k)
        return rng.laplace(size=(n, k)) @ mixing.T
    return draw


def _relu(n, d, rng):
    factor, _ = anisotropic(d)
    return np.maximum(0.0, rng.standard_normal((n, d)) @ factor.T)


def _sphere(n, d, rng):
    return unit_rows(rng.standard_normal((n, d)))


def _control(n, d, rng):
    return rng.standard_normal((n, d))


@dataclass(frozen=True)
class Alternative:
    name: str
    label: str
    draw: Callable[[int, int, np.random.Generator], np.ndarray]


ALTERNATIVES = (
    Alternative("gauss", "Gaussian N(0, I) (control: H0 of both tests)", _control),
    Alternative("t5", "iid Student t, 5 df, standardised", _student(5)),
    Alternative("t10", "iid Student t, 10 df, standardised", _student(10)),
    Alternative("t30", "iid Student t, 30 df, standardised", _student(30)),
    Alternative("mvt5", "elliptical t, 5 df: z/√(χ²₅/5), one scalar a row", _elliptical_t),
    Alternative("mix10", "10-cluster mixture, means N(0, I) (between = within variance per coordinate)",
                _mixture(lambda d: 1.0)),
    Alternative("mix10w", "10-cluster mixture, means N(0, 4I/d) (‖mean‖ ≈ 2: weak)",
                _mixture(lambda d: 2.0 / np.sqrt(d))),
    Alternative("lap4", "Laplace mix: A·s, s = 4 iid Laplace, A (d×4) Gaussian (rank 4)", _laplace_mix(lambda d: 4)),
    Alternative("lapd", "Laplace mix: A·s, s = d iid Laplace, A (d×d) Gaussian", _laplace_mix(lambda d: d)),
    Alternative("relu", "ReLU features max(0, g), g ~ N(0, Σ) (Σ the anisotropic covariance)", _relu),
    Alternative("sphere", "uniform on the sphere: rows of N(0, I)/‖·‖", _sphere),
)


# ---------------------------------------------------------------- statistics

def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial (Clopper-Pearson) interval for k successes in n trials."""
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


@dataclass
class Count:
    k: int = 0
    n: int = 0

    def add(self, rejected: bool) -> None:
        self.k += bool(rejected)
        self.n += 1

    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else float("nan")

    def covers(self, p: float = ALPHA) -> bool:
        """Whether p lies in the rate's 95 % interval."""
        lo, hi = clopper_pearson(self.k, self.n)
        return lo <= p <= hi

    def size_cells(self) -> list[str]:
        """k/n | rate | 95% CI | α inside?"""
        lo, hi = clopper_pearson(self.k, self.n)
        return [f"{self.k}/{self.n}", f"{self.rate:.3f}", f"[{lo:.3f}, {hi:.3f}]",
                "yes" if self.covers() else "**NO**"]

    def short(self) -> str:
        if not self.n:  # the test was not asked (rows that arrive normalised have no raw question)
            return "—"
        lo, hi = clopper_pearson(self.k, self.n)
        return f"{self.rate:.3f} [{lo:.2f}, {hi:.2f}]"


# ---------------------------------------------------------------- cells

@dataclass(frozen=True)
class Cell:
    section: str
    kind: str  # covariance ("iso"/"aniso") or alternative name
    d: int
    n: int

    @property
    def id(self) -> str:
        return f"{self.section}:{self.kind}:d{self.d}:n{self.n}"


def grid(g: dict) -> list[Cell]:
    cells = [Cell("size", c, d, n) for c in ("iso", "aniso") for d in g["size_d"] for n in g["size_n"]]
    cells += [Cell("joint", c, d, n) for c in ("iso", "aniso") for d in g["joint_d"] for n in g["joint_n"]]
    cells += [Cell("unif", c, d, n) for c in ("iso", "aniso") for d in g["unif_d"] for n in g["unif_n"]]
    cells += [Cell("power", a.name, d, n) for n in g["power_n"] for d in g["power_d"] for a in ALTERNATIVES]
    return cells


def replicate_size(cell: Cell, r: int, threads: int | None) -> dict:
    x = gaussian(cell.kind, cell.n, cell.d, np.random.default_rng(r))
    rep = audit(x, seed=r, threads=threads, **FAST)
    pre = audit(unit_rows(x), seed=r, threads=threads, **FAST)
    return {"raw": not rep.tests["raw"].gaussian, "normalised": not rep.tests["normalised"].gaussian,
            "prenormalised": not pre.tests["normalised"].gaussian}


JOINT = ("mardia_skew", "mardia_kurt", "hz", "energy", "mahalanobis")


def replicate_joint(cell: Cell, r: int, threads: int | None) -> dict:
    x = gaussian(cell.kind, cell.n, cell.d, np.random.default_rng(r))
    mv = audit(x, seed=r, calibrate=0, projections=0, pca_projections=0, mv_sample=cell.n,
               threads=threads).multivariate
    out = {name: bool(p <= ALPHA) for name, p in zip(
        JOINT, (mv.mardia.skewness_p, mv.mardia.kurtosis_p, mv.henze_zirkler.p_value,
                mv.energy.p_value, mv.mahalanobis.p_value))}
    out["_dim"] = int(mv.dim)
    return out


def replicate_unif(cell: Cell, r: int, threads: int | None) -> dict:
    x = gaussian(cell.kind, cell.n, cell.d, np.random.default_rng(r))
    # pca_projections=1 makes the audit compute the covariance basis the uniformity tests use
    u = audit(x, seed=r, calibrate=0, projections=0, pca_projections=1, mv_sample=0, threads=threads).uniformity
    return {"rayleigh": bool(u.rayleigh_p <= ALPHA), "bingham": bool(u.bingham_p <= ALPHA)}


def replicate_power(cell: Cell, r: int, threads: int | None) -> dict:
    alt = next(a for a in ALTERNATIVES if a.name == cell.kind)
    x = alt.draw(cell.n, cell.d, np.random.default_rng(r))
    rep = audit(x, seed=r, threads=threads, **FAST)
    out = {"normalised": not rep.tests["normalised"].gaussian, "paper": not rep.verdict.gaussian}
    if "raw" in rep.tests:  # unit rows (the sphere alternative) have no raw question
        out["raw"] = not rep.tests["raw"].gaussian
    return out


#: The outcomes a cell's table reads (a cell without some, e.g. power:sphere's raw, prints —).
OUTCOMES = {"size": ("raw", "normalised", "prenormalised"), "joint": JOINT,
            "unif": ("rayleigh", "bingham"), "power": ("raw", "normalised", "paper")}


def tally(section: str, outcomes: list[dict]) -> dict:
    """Counts of a cell's outcomes over its replicates."""
    out = {k: Count() for k in OUTCOMES[section]}
    for o in outcomes:
        for k in OUTCOMES[section]:
            if k in o:
                out[k].add(o[k])
    if section == "joint":
        out["_dim"] = sorted({o["_dim"] for o in outcomes})
    return out


# ---------------------------------------------------------------- cache

def _audit_hash(cases, joint: bool, refit: bool = False) -> str:
    """A hash of the p-values (and the paper verdict) of audits of each (cov, n, d)
    Gaussian of ``cases``, raw and L2-normalised; with ``joint`` the joint tests' too.
    With ``refit`` only the normalised p-value, with the refitted centres as the
    library applies them; without, everything with the refit turned off."""
    h = hashlib.sha1()
    for kind, n, d in cases:
        x = gaussian(kind, n, d, np.random.default_rng(7))
        for rows in (x, unit_rows(x)):
            rep = _fingerprint_audit(rows, n, refit)
            if refit:
                values = [rep.tests["normalised"].p_value]
            else:
                values = [t.p_value for _, t in sorted(rep.tests.items())]
                if joint:
                    mv = rep.multivariate
                    values += [rep.verdict.gaussian, mv.mardia.skewness_p, mv.mardia.kurtosis_p,
                               mv.henze_zirkler.p_value, mv.energy.p_value, mv.mahalanobis.p_value]
                values += [rep.uniformity.rayleigh_p, rep.uniformity.bingham_p]
            # 6 significant digits: a code change moves them; the float32 arithmetic's
            # rounding on another CPU or BLAS (about 1e-7) should not
            h.update(repr([f"{float(v):.6g}" for v in values]).encode())
    return h.hexdigest()[:12]


def _fingerprint_audit(rows: np.ndarray, n: int, refit: bool):
    options = dict(FAST, mv_sample=n, pca_projections=1)
    if refit:
        return audit(rows, seed=7, **options)
    today = analysis.refits_centres
    analysis.refits_centres = lambda d, m: False
    try:
        return audit(rows, seed=7, **options)
    finally:
        analysis.refits_centres = today


FINGERPRINT_CASES = (("iso", 300, 8), ("aniso", 300, 24), ("aniso", 1200, 40))


def fingerprint() -> str:
    """A hash of what the simulated statistics compute: every p-value the cells
    read, on a few small fixed data sets, with the normalised question's
    refitted centres turned off (:func:`refit_fingerprint` keys those).
    Replicates cached under another fingerprint were computed by code that gives
    other numbers and are not reused; edits that leave the statistics alone
    (reports, CLI) keep the cache."""
    return _audit_hash(FINGERPRINT_CASES, joint=True)


def refit_fingerprint() -> str:
    """A hash of the normalised p-values with refitted centres
    (:func:`~gaussaudit.stats.headline.refit_centre`) on :func:`fingerprint`'s
    data sets: cells whose headline audits refit (:func:`refits`) are keyed by
    it too, so that a change of the refit re-runs those cells only."""
    return _audit_hash(FINGERPRINT_CASES, joint=False, refit=True)


def refits(cell_id: str) -> bool:
    """Whether a cell's outcomes depend on refitted centres: a size or power cell
    whose headline audits refit (the joint and uniformity cells run no headline test)."""
    section, _, d, n = cell_id.split(":")
    tested = min(int(n[1:]), TEST_SAMPLE)
    return section in ("size", "power") and analysis.refits_centres(int(d[1:]), tested)


def row_space_fingerprint() -> str:
    """:func:`fingerprint` of the fewer-rows-than-dimensions path (row-space
    covariance basis, the null's isotropic part drawn apart, the EM in the rows'
    span): cells with n < d are keyed by both."""
    return _audit_hash((("aniso", 40, 100),), joint=False)


#: Cells of more dimensions than this are also keyed by :func:`large_d_fingerprint`.
LARGE_D = 64


def large_d_fingerprint() -> str:
    """:func:`fingerprint` of a sample with d > LARGE_D, n ≥ 2d: :func:`fingerprint`'s
    data sets have d ≤ 40; cells with d > LARGE_D are keyed by it too."""
    return _audit_hash((("aniso", 600, 80),), joint=False)


def cell_fingerprint(cell_id: str, base: str, row_space: str, large_d: str, refit: str) -> str:
    """The fingerprint a cell's replicates are cached under (see :func:`row_space_fingerprint`,
    :func:`large_d_fingerprint` and :func:`refit_fingerprint`)."""
    d, n = (int(part[1:]) for part in cell_id.split(":")[2:4])
    return (base + (f"+{row_space}" if n < d else "") + (f"+L{large_d}" if d > LARGE_D else "")
            + (f"+R{refit}" if refits(cell_id) else ""))


class Cache:
    """Replicate outcomes, one JSON line each ({"cell", "rep", "fp", "out"}),
    appended as they are computed, so a long grid can be stopped and resumed, run
    in pieces (``--cells``) and across machines, and rendered from what is there."""

    def __init__(self, path: Path | None, fp: str, row_space_fp: str, large_d_fp: str, refit_fp: str):
        self.path, self.done = path, {}
        self.fp_of = lambda cell_id: cell_fingerprint(cell_id, fp, row_space_fp, large_d_fp, refit_fp)
        if path is not None and path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    rec = json.loads(line)
                    if rec["fp"] == self.fp_of(rec["cell"]):
                        self.done[(rec["cell"], rec["rep"])] = rec["out"]

    def get(self, cell: Cell, r: int):
        return self.done.get((cell.id, r))

    def put(self, cell: Cell, r: int, out: dict) -> None:
        self.done[(cell.id, r)] = out
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"cell": cell.id, "rep": r, "fp": self.fp_of(cell.id), "out": out},
                                   separators=(",", ":")) + "\n")


REPLICATES = {"size": replicate_size, "joint": replicate_joint, "unif": replicate_unif,
              "power": replicate_power}


# ---------------------------------------------------------------- report

def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines)


def source_state() -> str:
    """The commit the library runs from, with a hash of any uncommitted changes to gaussaudit/."""
    def git(*a):
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout
    try:
        commit = git("rev-parse", "--short", "HEAD").strip()
        diff = git("diff", "HEAD", "--", "gaussaudit")
    except OSError:
        return "unknown commit"
    if not commit:
        return "unknown commit"
    if diff:
        digest = hashlib.sha1(diff.encode()).hexdigest()[:10]
        return f"commit {commit} + uncommitted changes to gaussaudit/ (diff sha1 {digest})"
    return f"commit {commit}"


#: The three questions of a size cell, in the table's order.
QUESTIONS = ("raw", "normalised", "prenormalised")
SIZE_HEADER = ["cov", "d", "n", "raw k/R", "raw rate", "raw 95% CI", "in", "norm k/R", "norm rate", "norm 95% CI",
               "in", "pre-norm k/R", "pre-norm rate", "pre-norm 95% CI", "in"]


def _replicates(counts: dict) -> int:
    return max(v.n for v in counts.values() if isinstance(v, Count))


def _flagged_rates(size: list[tuple[Cell, dict]]) -> str:
    """One sentence: how many size rates exclude ALPHA, on which side, against what chance gives."""
    rates = [(c, q, v[q]) for c, v in size for q in QUESTIONS if v[q].n]
    out = [(c, q, k) for c, q, k in rates if not k.covers()]
    side = lambda test: ", ".join(f"{q} {c.kind} d = {c.d}, n = {c.n} ({k.rate:.3f})"  # noqa: E731
                                  for c, q, k in out if test(k.rate)) or "none"
    return (f"**Rates that exclude 0.05:** {len(out)} of {len(rates)} (about {len(rates) / 20:.1f} would by chance "
            f"alone if every size were exactly 0.05). Below 0.05 (conservative): {side(lambda r: r < ALPHA)}. "
            f"Above 0.05: {side(lambda r: r > ALPHA)}.")


def render(results: dict[Cell, dict], args, seconds: float, state: str, fp: str,
           extended: dict[Cell, dict] | None = None) -> str:
    by = lambda s: [(c, v) for c, v in results.items() if c.section == s]  # noqa: E731
    cmd = " ".join(["python benchmarks/bench_size_power.py", *sys.argv[1:]])
    parts = [
        "# Size and power of the headline tests",
        "",
        f"Generated by `{cmd}` (gaussaudit {__version__}, {state}, statistics fingerprint {fp}; "
        f"{seconds / 60:.1f} min in this run, replicates cached by earlier runs reused). "
        "Simulation; replicate r draws its data from `np.random.default_rng(r)` and audits with `seed=r`, "
        f"so every number is reproducible. Headline audits use `{', '.join(f'{k}={v}' for k, v in FAST.items())}` "
        "and the defaults otherwise (`calibrate=19` surrogates, `test_sample=5000`, alpha = 0.05): at n = 10,000 "
        "the headline tests see a 5,000-row subsample. Intervals are exact binomial (Clopper-Pearson) 95 % "
        "intervals of the rejection rate; a size cell is flagged **NO** when 0.05 lies outside its interval "
        "(about 1 cell in 20 by chance alone when the size is exactly 0.05).",
        "",
        f"The headline statistic in this run: {STATISTIC}.",
        "",
        "Covariances: *iso* = N(0, I_d); *aniso* = N(m, Q diag(λ) Qᵀ), Q a random rotation, λ_k ∝ 1/k "
        "(k = 1..d) scaled to trace d, m of length 2·√(trace/d) = 2 in a random direction (Q and m fixed per d, "
        "seed [2024, d]).",
    ]
    size = by("size")
    if size:
        rows = []
        for c, v in size:
            rows.append([c.kind, c.d, c.n, *(cell for q in QUESTIONS for cell in v[q].size_cells())])
        parts += [
            "", "## Size of the headline tests", "",
            "H0 true in every row. *raw*: the raw test (H0: rows iid N(μ, Σ)); *normalised*: the normalised test "
            "(H0: rows are x/‖x‖ of such a Gaussian) in the same audit, on the same Gaussian rows; *pre-normalised*: "
            "the normalised test on the same rows L2-normalised before the audit (the input is already on the "
            "sphere, so the raw rows are gone: the surrogates' Gaussian is fitted to the directions themselves, "
            "the projected normal by EM, a different null fit whose rate need not equal the *normalised* one). "
            "Columns: rejections/replicates, rate, 95 % interval, 0.05 inside.", "",
            table(SIZE_HEADER, rows), "", _flagged_rates(size),
        ]
        if extended:
            parts += [
                "", "Cells that runs with a larger `--reps` extended (replicates 0, 1, … R−1: the rows above are "
                "their first replicates):", "",
                table(SIZE_HEADER, [[c.kind, c.d, c.n, *(cell for q in QUESTIONS for cell in v[q].size_cells())]
                                    for c, v in extended.items()]),
            ]
        high = [c for c, v in size if clopper_pearson(v["prenormalised"].k, v["prenormalised"].n)[0] > ALPHA]
        if high:
            parts += [
                "",
                "**Pre-normalised input:** the normalised test rejects Gaussian-derived unit rows well above 0.05 in "
                + ", ".join(f"{c.kind} d = {c.d}, n = {c.n} ({v['prenormalised'].rate:.2f})" for c, v in size
                            if c in high)
                + ". Its null is x/‖x‖ with x ~ N(μ̂, Σ̂) fitted to the *raw* rows; given rows that are already "
                "unit vectors the audit can only fit N(mean, covariance) to the unit rows, and normalising that "
                "Gaussian does not give back the law of x/‖x‖ unless μ = 0 and Σ ∝ I. Rows normalised before the "
                "audit are therefore tested against a wrong null.",
            ]
    joint = by("joint")
    if joint:
        rows = []
        for c, v in joint:
            dims = "/".join(map(str, v["_dim"]))
            rows.append([c.kind, c.d, c.n, dims] + [f"{v[k].k}/{v[k].n} = {v[k].short()}"
                                                    + ("" if v[k].covers() else " **NO**") for k in JOINT])
        parts += [
            "", "## Size of the joint tests of the raw rows", "",
            "H0 true. The audit's multivariate tests on every row (`mv_sample` = n) projected on the top "
            "principal components of the raw rows (at most `mv_dims` = 16: *p* below); level 0.05. Energy and "
            "Mahalanobis p-values are Monte Carlo (19 replicates); Mardia and Henze-Zirkler asymptotic. "
            "Entry: rejections/replicates = rate [95 % interval], **NO** when 0.05 is outside it. "
            "When d > 16 the components are the sample's own leading ones (chosen for their variance), "
            "which the tests' nulls do not account for.", "",
            table(["cov", "d", "n", "p", "Mardia skewness", "Mardia kurtosis", "Henze-Zirkler", "energy",
                   "Mahalanobis"], rows),
        ]
    unif = by("unif")
    if unif:
        rows = []
        for c, v in unif:
            role = "H0 true (size)" if c.kind == "iso" else "H0 false (power)"
            rows.append([c.kind, c.d, c.n, role] + [f"{v[k].k}/{v[k].n} = {v[k].short()}"
                                                    + (" **NO**" if c.kind == "iso" and not v[k].covers() else "")
                                                    for k in ("rayleigh", "bingham")])
        parts += [
            "", "## Uniformity of the normalised rows: Rayleigh and Bingham", "",
            "Normalised rows of isotropic mean-zero Gaussian data are uniform on the sphere: H0 of both tests is "
            "true for *iso* and false for *aniso* (a mean direction and unequal axes), so the *aniso* rows are "
            "power, not size. Both p-values are asymptotic χ² (Bingham's has (d−1)(d+2)/2 degrees of freedom, "
            "which exceeds n at d = 64, n = 200 and at d = 768).", "",
            table(["cov", "d", "n", "", "Rayleigh", "Bingham"], rows),
        ]
    power = by("power")
    if power:
        rows = []
        for c, v in power:
            alt = next(a for a in ALTERNATIVES if a.name == c.kind)
            rows.append([c.kind, alt.label, c.d, c.n, v["raw"].short(), v["normalised"].short(),
                         v["paper"].short()])
        parts += [
            "", "## Power", "",
            "Rejection rates [95 % interval] of the raw and the normalised headline test, and the share of "
            "replicates the paper's rule calls *not Gaussian* (its verdict on the unnormalised rows: mean A² "
            "< 0.752 and mean DP p > 0.05; a heuristic, not a test with a level).", "",
            table(["name", "alternative", "d", "n", "raw rejects", "normalised rejects", "paper rule: not Gaussian"],
                  rows),
            "",
            "Reading the power table:",
            "",
            "- *gauss* is the control: both tests should reject at about 0.05.",
            "- *mvt5* (elliptical t): x = z/√(χ²₅/5) with one scalar a row, so x/‖x‖ = z/‖z‖ exactly — the "
            "normalised rows are those of a Gaussian. The normalised test should **not** reject it (at about its "
            "level): normalisation hides elliptical tails, which only the raw test (and the row norms) can see.",
            "- *sphere*: rows uniform on the sphere are the normalised rows of N(0, I), so the normalised test "
            "should not reject them; they arrive normalised, so there is no raw question (—).",
            "- *mix10*: 10 equally likely clusters N(m_k, I) with m_k ~ N(0, I_d): per coordinate the between-cluster "
            "variance equals the within-cluster one (clusters ≈ √(2d) within-SDs apart), a clearly clustered "
            "law whose one-dimensional margins are nonetheless smooth 10-component mixtures. *mix10w* draws "
            "m_k ~ N(0, 4I/d) (‖m_k‖ ≈ 2): each coordinate's mean spread is 2/√d SDs, nearly invisible to "
            "one-dimensional tests.",
            "- *lap4* lies in a 4-dimensional subspace (each coordinate a mix of 4 Laplace variables, excess "
            "kurtosis ≈ 3·Σa⁴/(Σa²)²); *lapd* mixes d of them, so by the central limit theorem its margins are "
            "close to Gaussian (excess kurtosis ≈ 9/(d+2) on average).",
        ]
    return "\n".join(parts) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="small grid (size: d 8 and 32, n 200 and 2000), few replicates: a smoke test")
    ap.add_argument("--reps", type=int,
                    help="replicates a size/joint/uniformity cell (default 500; 40, joint 20, with --quick)")
    ap.add_argument("--power-reps", type=int, help="replicates a power cell (default 200; 20 with --quick)")
    ap.add_argument("--first-rep", type=int, default=0, metavar="K",
                    help="compute only replicates K, K+1, ... (with a separate --cache each, runs side by "
                         "side share one cell's replicates; a table counts a cell's replicates 0, 1, ... "
                         "up to the first one missing)")
    ap.add_argument("--power-d", type=int, nargs="+", help="dimensions of the power cells (default 64)")
    ap.add_argument("--cells", nargs="+", metavar="PATTERN",
                    help="run only cells whose id matches one of these glob patterns, e.g. 'size:iso:*' 'power:t5:*'")
    ap.add_argument("--list", action="store_true", help="print the cell ids of the grid and exit")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="markdown file to write (default docs/size-and-power.md)")
    ap.add_argument("--cache", default=str(DEFAULT_CACHE),
                    help="JSON-lines file of replicate outcomes to reuse and extend (default "
                         "benchmarks/results/size-power.jsonl)")
    ap.add_argument("--no-cache", action="store_true", help="compute every replicate, store nothing")
    ap.add_argument("--stop-after", type=float, metavar="MINUTES",
                    help="start no new replicate after this many minutes; render what is there")
    ap.add_argument("--threads", type=int,
                    help="threads of each audit, and of BLAS (default: all cores); with --threads 1, "
                         "runs side by side do not oversubscribe the cores")
    args = ap.parse_args(argv)
    if args.threads:
        # the audit's own threads cap BLAS inside its pool, not in the calling thread,
        # where two-threaded eigh and products slowed two parallel runs 2-3x
        threadpool_limits(limits=args.threads, user_api="blas")

    g = dict(QUICK if args.quick else FULL)
    if args.power_d:
        g["power_d"] = tuple(args.power_d)
    if args.first_rep < 0:
        ap.error("--first-rep must be 0 or more")
    reps = args.reps or g["reps"]
    joint_reps = args.reps or g["joint_reps"]
    power_reps = args.power_reps or g["power_reps"]
    cells = grid(g)
    if args.cells:
        cells = [c for c in cells if any(fnmatch.fnmatchcase(c.id, p) for p in args.cells)]
    if args.list:
        print("\n".join(c.id for c in cells))
        return 0
    if not cells:
        ap.error("no cell matches --cells")

    # the library was imported above: this is the code the simulation runs
    state = source_state()
    fp, row_space_fp, large_d_fp = fingerprint(), row_space_fingerprint(), large_d_fingerprint()
    refit_fp = refit_fingerprint()
    cache = Cache(None if args.no_cache else Path(args.cache), fp, row_space_fp, large_d_fp, refit_fp)
    keys = (f"{fp} (n < d cells: +{row_space_fp}; d > {LARGE_D} cells: +L{large_d_fp}; "
            f"cells with refitted centres: +R{refit_fp})")
    print(f"statistics fingerprint {keys}; {len(cache.done)} replicates cached under them", file=sys.stderr)
    started = time.perf_counter()
    deadline = started + 60 * args.stop_after if args.stop_after else None
    target = {c: {"power": power_reps, "joint": joint_reps}.get(c.section, reps) for c in cells}
    # cheap cells first, so that a run stopped by --stop-after has the most cells complete
    for i, cell in enumerate(sorted(cells, key=lambda c: c.n * c.d * (1 + c.d / 64)), 1):
        t0, computed = time.perf_counter(), 0
        for r in range(args.first_rep, target[cell]):
            if cache.get(cell, r) is None:
                if deadline is not None and time.perf_counter() > deadline:
                    break
                cache.put(cell, r, REPLICATES[cell.section](cell, r, args.threads))
                computed += 1
        present = [v for r in range(target[cell]) if (v := cache.get(cell, r)) is not None]
        have = len(present)
        counts = tally(cell.section, present)
        rates = "  ".join(f"{k} {v.rate:.3f}" for k, v in counts.items() if isinstance(v, Count))
        print(f"[{i}/{len(cells)}] {cell.id}  {have}/{target[cell]} reps ({computed} computed)  "
              f"{time.perf_counter() - t0:.1f} s  {rates}", file=sys.stderr, flush=True)
    # a cell's numbers: its first replicates 0, 1, ... that are all there (never a selection)
    def leading(cell: Cell, limit: int | None = None) -> list[dict]:
        """The cell's cached replicates 0, 1, ... up to the first missing one (or ``limit``)."""
        out = []
        while (limit is None or len(out) < limit) and (v := cache.get(cell, len(out))) is not None:
            out.append(v)
        return out

    results = {}
    for cell in cells:
        if first := leading(cell, target[cell]):
            results[cell] = tally(cell.section, first)
    # size cells an earlier run extended past this run's target (--reps on those cells): all their replicates
    extended = {}
    for cell in cells:
        if cell.section == "size" and len(every := leading(cell)) > target[cell]:
            extended[cell] = tally(cell.section, every)
    short = [f"{c.id} ({_replicates(results[c])}/{target[c]})"
             for c in cells if c in results and _replicates(results[c]) < target[c]]
    missing = [c.id for c in cells if c not in results]
    text = render(results, args, time.perf_counter() - started, state, keys, extended)
    if short or missing:
        text += ("\n**Incomplete grid.** " + (f"Cells with fewer replicates than the {reps} (power {power_reps}) "
                 "asked: " + ", ".join(short) + ". " if short else "")
                 + (f"Cells not run yet: {', '.join(missing)}. " if missing else "")
                 + "Rerun the same command to add replicates (they are cached).\n")
    if source_state() != state:
        text += ("\n**Warning:** gaussaudit/ changed while this ran (" + source_state() + " at the end); "
                 "the numbers are those of the code imported at the start.\n")
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
