"""Size of the headline tests by simulation, at a small scale (CI).

Replicate r draws its data from ``np.random.default_rng(r)`` and audits with
``seed=r``, so every rate here is deterministic; the bounds are nonetheless the
central 99 % binomial interval of the rejection count when the true rate is
exactly the nominal one (``scipy.stats.binom.ppf``), so a correct test would
fail them only about 1 % of the time over a change of seeds. The larger grid
(and power) is benchmarks/bench_size_power.py → docs/size-and-power.md.

The simulations are cached per cell and shared by the tests that read them
(the size of both questions and the null-band coverage come from one audit).
A cell's replicates run one process a core, each audit on one thread: at these
sizes an audit's own threads gained nothing (d = 32, n = 200: 99 ms an audit on
one thread, 112 ms on two), and the cells were most of the suite's time (this
module on two cores: 214 s in one process, 134 s in two, the same counts). The
counts do not depend on how the replicates are spread (each has its own seeds).
"""
from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from threadpoolctl import threadpool_limits

from gaussaudit import audit
from gaussaudit.stats._blocks import default_threads

# The data of the size cells: the laws of the benchmark's grid, one definition.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_size_power as bench  # noqa: E402

ALPHA = 0.05
#: Replicates of a Gaussian n = 200 size cell (and of the band coverage, from the same audits).
SIZE_REPS = 400
#: Replicates of the costlier cells (the joint tests).
REPS = 200
#: Replicates of the cells whose rows arrive normalised (sphere-uniform; pre-normalised
#: Gaussian): every surrogate refits the projected normal by EM, 0.7-1.5 s a replicate here.
#: 100 still catch the 93-100 % rejections of the test before the EM fit, and the
#: benchmark's 500 a cell measure the rate (docs/size-and-power.md).
EM_REPS = 100
#: Replicates of a power cell.
POWER_REPS = 40
FAST = dict(projections=16, pca_projections=0, mv_sample=0, threads=1)

_POOL: list[ProcessPoolExecutor] = []


@pytest.fixture(scope="module", autouse=True)
def _close_pool():
    yield
    while _POOL:
        _POOL.pop().shutdown()


def _one_blas_thread() -> None:
    # one process a core already: BLAS threads in each would oversubscribe the
    # cores (the audits' threads=1 keeps only their own thread pools out)
    threadpool_limits(limits=1)


def simulate(replicate, *args, reps: int) -> list:
    """``[replicate(*args, r) for r in range(reps)]``, spread over one process a core."""
    workers = min(default_threads(), reps)
    if workers <= 1:
        return [replicate(*args, r) for r in range(reps)]
    if not _POOL:
        # spawn, not fork: the parent may hold torch's and BLAS's thread pools
        _POOL.append(ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_one_blas_thread))
    return list(_POOL[0].map(replicate, *([a] * reps for a in args), range(reps), chunksize=4))


def binomial_bounds(reps: int, p: float, level: float = 0.99) -> tuple[int, int]:
    """Central ``level`` interval [lo, hi] of a Binomial(reps, p) count."""
    tail = (1 - level) / 2
    return int(stats.binom.ppf(tail, reps, p)), int(stats.binom.ppf(1 - tail, reps, p))


def assert_rate(k: int, reps: int, p: float, what: str) -> None:
    lo, hi = binomial_bounds(reps, p)
    assert lo <= k <= hi, (f"{what}: {k}/{reps} = {k / reps:.3f}, outside the 99% binomial interval "
                           f"[{lo}, {hi}] = [{lo / reps:.3f}, {hi / reps:.3f}] around {p}")


def gaussian(cov: str, n: int, d: int, r: int) -> np.ndarray:
    return bench.gaussian(cov, n, d, np.random.default_rng(r))


def sphere(n: int, d: int, r: int) -> np.ndarray:
    return bench.unit_rows(np.random.default_rng(r).standard_normal((n, d)))


def gaussian_replicate(cov: str, d: int, n: int, r: int) -> dict[str, bool]:
    rep = audit(gaussian(cov, n, d, r), seed=r, **FAST)
    return dict(raw=not rep.tests["raw"].gaussian, normalised=not rep.tests["normalised"].gaussian,
                band_dp=rep.calibration.bands["normalised"]["dp.mean_p"].inside,
                band_cv=rep.calibration.norm_cv.inside)


def tally(outcomes: list[dict[str, bool]]) -> dict[str, int]:
    return {key: sum(bool(o[key]) for o in outcomes) for key in outcomes[0]}


@lru_cache(maxsize=None)
def gaussian_cell(cov: str, d: int, n: int = 200) -> dict[str, int]:
    """Counts over SIZE_REPS Gaussian replicates: rejections of each question,
    and how often the data fall inside the null bands."""
    out = tally(simulate(gaussian_replicate, cov, d, n, reps=SIZE_REPS))
    print(f"\n[size] {cov} d={d} n={n}: " + ", ".join(f"{k} {v}/{SIZE_REPS} = {v / SIZE_REPS:.3f}"
                                                  for k, v in out.items()))
    return out


def sphere_replicate(d: int, n: int, r: int) -> dict[str, bool]:
    rep = audit(sphere(n, d, r), seed=r, **FAST)
    assert set(rep.tests) == {"normalised"}  # unit rows: there are no raw rows to ask about
    return dict(normalised=not rep.tests["normalised"].gaussian, paper=not rep.verdict.gaussian,
                rayleigh=rep.uniformity.rayleigh_p <= ALPHA)


@lru_cache(maxsize=None)
def sphere_cell(d: int = 16, n: int = 2000) -> dict[str, int]:
    """Rows uniform on the sphere (normalised N(0, I)): the normalised null holds."""
    out = tally(simulate(sphere_replicate, d, n, reps=EM_REPS))
    print(f"\n[sphere] d={d} n={n}: " + ", ".join(f"{k} {v}/{EM_REPS} = {v / EM_REPS:.3f}"
                                                 for k, v in out.items()))
    return out


CELLS = [(cov, d) for d in (8, 32) for cov in ("iso", "aniso")]


@pytest.mark.parametrize("question", ["raw", "normalised"])
@pytest.mark.parametrize("cov,d", CELLS)
def test_size_of_headline_test(cov, d, question):
    """Gaussian rows (n = 200): each question's test rejects at about alpha."""
    k = gaussian_cell(cov, d)[question]
    assert_rate(k, SIZE_REPS, ALPHA, f"size of the {question} test, {cov} d={d} n=200")


@pytest.mark.parametrize("band", ["band_dp", "band_cv"])
@pytest.mark.parametrize("cov,d", [pytest.param(cov, d, id=f"{cov}-{d}") for cov, d in CELLS])
def test_null_band_coverage(cov, d, band):
    """A Gaussian sample's normalised mean DP p-value and its norm CV fall
    inside their 19-surrogate null bands (the surrogates' range) about 90 % of
    the time. The norm-CV band is built on the pivot CV − (the CV a Gaussian
    fitted to the same rows predicts); on the CV alone it held 95-96 % of
    anisotropic samples with a mean, because the data's CV and the covariance
    the surrogates are drawn from come from the same rows."""
    k = gaussian_cell(cov, d)[band]
    name = {"band_dp": 'bands["normalised"]["dp.mean_p"]', "band_cv": "norm_cv"}[band]
    assert_rate(k, SIZE_REPS, 0.90, f"coverage of {name}, {cov} d={d} n=200")


def test_sphere_uniform_passes_normalised_test_but_not_the_paper_rule():
    """Rows uniform on the sphere (d = 16, n = 2000) are exactly normalised
    Gaussian data, so the normalised test rejects them at about alpha. The
    paper's rule, judged on the unnormalised rows — here the unit rows
    themselves, whose coordinates are Beta-like with excess kurtosis
    −6/(d + 2) — calls them not Gaussian nearly always: the rule asks "is each
    coordinate normal?", not "is this what normalised Gaussian data look
    like?"."""
    cell = sphere_cell()
    assert_rate(cell["normalised"], EM_REPS, ALPHA, "normalised test on sphere-uniform rows, d=16 n=2000")
    assert cell["paper"] >= 0.9 * EM_REPS, f"paper rule rejected only {cell['paper']}/{EM_REPS}"


def prenormalised_replicate(cov: str, d: int, n: int, r: int) -> bool:
    rep = audit(bench.unit_rows(gaussian(cov, n, d, r)), seed=r, **FAST)
    assert set(rep.tests) == {"normalised"} and rep.calibration.prenormalised
    return not rep.test.gaussian


@lru_cache(maxsize=None)
def prenormalised_cell(cov: str, d: int, n: int) -> int:
    """Rejections of the normalised test when the Gaussian rows arrive already
    L2-normalised (its null is then fitted to the directions by EM)."""
    k = sum(simulate(prenormalised_replicate, cov, d, n, reps=EM_REPS))
    print(f"\n[prenormalised] {cov} d={d} n={n}: normalised {k}/{EM_REPS} = {k / EM_REPS:.3f}")
    return k


@pytest.mark.parametrize("cov,d,n", [("aniso", 8, 2000), ("aniso", 32, 200)])
def test_size_on_rows_that_arrive_normalised(cov, d, n):
    """Before the EM fit, Gaussian directions that arrived normalised failed 93-100 % of the time."""
    assert_rate(prenormalised_cell(cov, d, n), EM_REPS, ALPHA, f"normalised test on pre-normalised {cov} d={d} n={n}")


def test_rayleigh_size_on_sphere_uniform_rows():
    k = sphere_cell()["rayleigh"]
    assert_rate(k, EM_REPS, ALPHA, "Rayleigh test on sphere-uniform rows, d=16 n=2000")


def _laplace(r):
    return np.random.default_rng(r).laplace(size=(500, 16))


def _relu(r):
    factor, _ = bench.anisotropic(16)
    return np.maximum(0.0, np.random.default_rng(r).standard_normal((500, 16)) @ factor.T)


def power_replicate(draw, r: int) -> dict[str, bool]:
    rep = audit(draw(r), seed=r, **FAST)
    return dict(raw=not rep.tests["raw"].gaussian, normalised=not rep.tests["normalised"].gaussian)


@pytest.mark.parametrize("draw", [_laplace, _relu], ids=["iid-laplace", "relu"])
def test_clearly_non_gaussian_data_are_rejected(draw):
    """iid Laplace coordinates and ReLU features (d = 16, n = 500): both tests reject in >= 95 %."""
    counts = tally(simulate(power_replicate, draw, reps=POWER_REPS))
    print(f"\n[power] {draw.__name__.strip('_')} d=16 n=500: "
          + ", ".join(f"{k} {v}/{POWER_REPS}" for k, v in counts.items()))
    for question, k in counts.items():
        assert k >= 0.95 * POWER_REPS, f"{question} test rejected only {k}/{POWER_REPS}"


def joint_replicate(r: int) -> dict[str, bool]:
    x = np.random.default_rng(r).standard_normal((200, 4)) * np.array([1.0, 2.0, 0.5, 3.0]) + 1.0
    mv = audit(x, seed=r, calibrate=0, projections=0, pca_projections=0, mv_sample=200, mv_dims=4,
               threads=1).multivariate
    assert mv.dim == 4 and mv.n == 200
    return dict(energy=mv.energy.p_value <= ALPHA, mahalanobis=mv.mahalanobis.p_value <= ALPHA)


def test_energy_and_mahalanobis_size():
    """Monte Carlo p-values of the joint energy and Mahalanobis tests (19
    replicates) on Gaussian raw rows, n = 200, d = 4: size about alpha."""
    counts = tally(simulate(joint_replicate, reps=REPS))
    print("\n[joint] d=4 n=200: " + ", ".join(f"{k} {v}/{REPS} = {v / REPS:.3f}"
                                             for k, v in counts.items()))
    for name, k in counts.items():
        assert_rate(k, REPS, ALPHA, f"size of the {name} test, d=4 n=200")


@pytest.mark.parametrize("d,n,projections,inner", [(8, 200, 16, 80), (40, 1000, 7, 16), (5, 300, 0, 8)])
def test_refit_centre_is_the_mean_of_each_draws_own_statistics(d, n, projections, inner):
    """The refitted centre batches its draws through row_moments; it must equal,
    to the last bit, the mean of the normalised z-scores of each draw computed
    on its own (views_and_moments), which is what the size cells above measured."""
    from gaussaudit.prep.whiten import covariance_basis
    from gaussaudit.stats.headline import GaussianNull, common_normals, coupled_factor, refit_centre, views_and_moments

    rng = np.random.default_rng(d)
    x = (rng.standard_normal((n, d)) @ rng.standard_normal((d, d))).T + 1.0
    fit = GaussianNull.fit(covariance_basis(x), n)
    base = common_normals(np.random.SeedSequence(1), inner, fit.factor.shape[0], n)
    directions = rng.standard_normal((d, projections)) if projections else None
    drawn = coupled_factor(fit)
    k = drawn.factor.shape[1]
    one_by_one = [views_and_moments(drawn.factor @ base[c, :k] + drawn.mean[:, None], directions,
                                    questions=("normalised",))[0]["normalised"].z for c in range(inner)]
    np.testing.assert_array_equal(refit_centre(fit, base, directions), np.mean(one_by_one, axis=0))


def test_coupled_factor_moves_little_with_the_fit_where_the_eigenvector_factor_jumps():
    """Why refitted centres draw through coupled_factor: fits to two samples of the
    same anisotropic law (a 1/k spectrum, whose tail eigenvalues are closer than
    their sampling error) have eigenvector factors that differ by a random
    rotation, so the same normals make unrelated draws (gap near √2 or more);
    through their Cholesky factors the draws differ by about the fits' own
    sampling error (measured: 0.14 at d = 64, n = 2,000)."""
    from gaussaudit.prep.whiten import covariance_basis
    from gaussaudit.stats.headline import GaussianNull, coupled_factor

    d, n = 64, 2000
    fits = [GaussianNull.fit(covariance_basis(bench.gaussian("aniso", n, d, np.random.default_rng(s)).T), n)
            for s in (3, 4)]
    z = np.random.default_rng(5).standard_normal((d, 500)).astype(np.float32)

    def draw_gap(a, b):
        first, second = a.factor @ z[: a.factor.shape[1]], b.factor @ z[: b.factor.shape[1]]
        return np.linalg.norm(first - second) / np.linalg.norm(first)

    coupled = [coupled_factor(f) for f in fits]
    for fit, drawn in zip(fits, coupled):  # the same law
        np.testing.assert_allclose(drawn.factor @ drawn.factor.T, fit.factor @ fit.factor.T, atol=1e-5)
    assert draw_gap(*coupled) < 0.3
    assert draw_gap(*fits) > 1.0


def test_the_reported_statistic_names_the_refit_rule_in_force():
    """The report's statistic_name says where refitted centres apply; it must say
    what refits_centres does (a sentence the report prints is a claim)."""
    from gaussaudit.stats.headline import REFIT_MAX_DIM, REFIT_ROWS_PER_DIM, STATISTIC, refits_centres

    assert f"d <= {REFIT_MAX_DIM} with {REFIT_ROWS_PER_DIM}+ rows a dimension" in STATISTIC
    d = REFIT_MAX_DIM
    assert refits_centres(d, REFIT_ROWS_PER_DIM * d)
    assert not refits_centres(d, REFIT_ROWS_PER_DIM * d - 1)
    assert not refits_centres(d + 1, 100 * d)


def test_coupled_factor_keeps_the_law_with_an_isotropic_part_and_a_constant_feature():
    """Fewer rows than dimensions: the fit's isotropic part is drawn apart (iso on
    the live features); coupled_factor must fold it into the factor, and keep a
    constant feature constant."""
    from gaussaudit.prep.whiten import covariance_basis
    from gaussaudit.stats.headline import GaussianNull, coupled_factor

    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 20)) * np.linspace(1, 3, 50)[:, None]
    x[3] = 1.0
    fit = GaussianNull.fit(covariance_basis(x), 20)
    assert fit.iso > 0 and not fit.live[3]
    law = fit.factor.astype(float) @ fit.factor.T.astype(float) + np.diag(fit.live * fit.iso**2)
    coupled = coupled_factor(fit)
    assert coupled.iso == 0.0
    np.testing.assert_allclose(coupled.factor.astype(float) @ coupled.factor.T.astype(float), law, atol=1e-5)
    assert not coupled.factor[3].any()
