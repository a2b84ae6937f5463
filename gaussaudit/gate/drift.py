"""``drift``: has the same model's embedding distribution moved on new data?

The rows of a reference set and a current set (a seeded uniform sample of each,
prepared as the scan prepares them: L2-normalised unless ``normalize=False``)
are compared through the Gaussians fitted to them: Fréchet (2-Wasserstein)
distance, KL divergence both ways, a Hotelling T² test of the means, and the
covariance spectra. The Fréchet distance is judged by a permutation test (exact
level under "both sets are draws from one distribution", whatever that
distribution), not by a fixed number. Whether the closed forms describe the
data is what each set's headline Gaussianity test says, and the report says it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaussaudit.config import AuditConfig, configured

DRIFT_SCHEMA = "gaussaudit.drift/1"


@dataclass(frozen=True)
class DriftReport:
    """The drift test and what each set's Gaussianity says about its closed forms."""

    result: object  # gaussaudit.stats.drift.DriftResult
    reference_label: str
    current_label: str
    #: each set's headline test (JSON form, None with calibrate 0): can the closed forms be trusted?
    reference_test: dict | None
    current_test: dict | None
    normalized: bool
    notes: tuple[str, ...] = ()

    @property
    def drifted(self) -> bool:
        return bool(self.result.drifted)

    @property
    def kl_null(self) -> tuple[float, float]:
        """Both KL divergences' mean when nothing has drifted (Gaussian sets): estimation error alone."""
        from gaussaudit.stats.drift import kl_null_mean

        r = self.result
        return kl_null_mean(r.dim, r.n_reference, r.n_current), kl_null_mean(r.dim, r.n_current, r.n_reference)

    @property
    def both_gaussian(self) -> bool | None:
        tests = (self.reference_test, self.current_test)
        if any(t is None for t in tests):
            return None
        return all(bool(t.get("gaussian")) for t in tests)

    def to_dict(self) -> dict:
        r = self.result
        hot = r.mean_shift
        return {
            "schema": DRIFT_SCHEMA,
            "reference": self.reference_label,
            "current": self.current_label,
            "rows": "normalised" if self.normalized else "unnormalised",
            "n_reference": r.n_reference,
            "n_current": r.n_current,
            "dim": r.dim,
            "drifted": self.drifted,
            "alpha": r.alpha,
            "frechet": {"distance": _num(r.frechet), "null_quantile": _num(r.frechet_null_quantile),
                        "p_value": _num(r.frechet_p), "permutations": r.permutations, "seed": r.seed},
            "kl": {"reference_to_current": _num(r.kl_forward), "current_to_reference": _num(r.kl_backward),
                   "null_mean": {"reference_to_current": _num(self.kl_null[0]),
                                 "current_to_reference": _num(self.kl_null[1])}},
            "mean_shift": None if hot is None else {
                "statistic": _num(hot.statistic), "f_statistic": _num(hot.f_statistic), "df1": hot.df1,
                "df2": hot.df2, "p_value": _num(hot.p_value)},
            "spectrum": {"reference": _spectrum(r.reference_spectrum), "current": _spectrum(r.current_spectrum)},
            "gaussianity": {"reference": self.reference_test, "current": self.current_test,
                            "both_gaussian": self.both_gaussian},
            "notes": list(self.notes),
        }


def _num(x):
    x = float(x)
    return x if np.isfinite(x) else None


def _spectrum(s) -> dict:
    return {"participation_ratio": _num(s.participation_ratio), "entropy_rank": _num(s.entropy_rank),
            "rankme": _num(s.rankme), "top_share": _num(s.top_share), "dim": s.dim}


def _raw_test(source, config: AuditConfig, report) -> dict | None:
    """The set's headline test of the raw question ("are the rows Gaussian?"), None without one."""
    if report is None:
        from gaussaudit.audit import audit

        report = audit(source, config).to_dict()
    return (report.get("verdict", {}).get("tests") or {}).get("raw")


def closed_form_note(reference_test: dict | None, current_test: dict | None, normalized: bool = False) -> str:
    """What each set's Gaussianity says about the closed forms (Fréchet, KL, Hotelling)."""
    if normalized:
        return ("the rows compared are L2-normalised: they lie on the unit sphere and are never Gaussian, so the "
                "Fréchet distance is only a lower bound on their 2-Wasserstein distance (Gelbrich's bound), the KL "
                "divergences describe the fitted Gaussians, and Hotelling's F test is approximate; the permutation "
                "p-value of the Fréchet distance holds its level all the same.")
    if reference_test is None or current_test is None:
        return ("no headline Gaussianity test ran (calibrate 0): whether the Gaussian closed forms describe these "
                "sets is unknown; the permutation p-value holds either way.")
    bad = [name for name, t in (("reference", reference_test), ("current", current_test)) if not t.get("gaussian")]
    if not bad:
        return ("neither set's headline test rejects Gaussianity, so the Fréchet distance is (up to sampling error) "
                "the 2-Wasserstein distance between the sets, the KL divergences are those of the sets, and Hotelling's "
                "F test holds its level.")
    which = " and ".join(bad)
    return (f"the {which} set's headline test rejects Gaussianity: the Fréchet distance is then only a lower bound on "
            "the sets' 2-Wasserstein distance (Gelbrich's bound), the KL divergences describe the fitted Gaussians, "
            "not the sets, and Hotelling's F test is only approximate; the permutation p-value of the Fréchet "
            "distance still holds its level.")


def drift(reference, current, *, config: AuditConfig | None = None, permutations: int = 99, alpha: float = 0.05,
          sample: int = 5000, reference_report: dict | None = None, current_report: dict | None = None,
          **options) -> DriftReport:
    """Test whether ``current`` rows come from the distribution of ``reference`` rows.

    Parameters
    ----------
    reference, current : path, list of paths or 2-D array
        Embeddings of the same model, as ``audit`` takes them.
    config : AuditConfig, optional
        How rows are read and prepared (``seed``, ``key``…); keyword
        ``options`` override its fields. Unlike a scan, the default compares
        the rows as the model gives them (``normalize=False``): the Gaussian
        closed forms are about those. The Gaussianity audits use it too.
    permutations : int, default 99
        Relabellings of the pooled rows for the Fréchet distance's p-value.
    alpha : float, default 0.05
        Level of the drift test.
    sample : int, default 5000
        Rows of each set (seeded uniform sample); 0 = every row.
    reference_report, current_report : dict, optional
        JSON reports of these sets already made (the gate's), saving their audits.

    Returns
    -------
    DriftReport

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> same = drift(rng.standard_normal((500, 8)), rng.standard_normal((500, 8)), permutations=19, calibrate=0)
    >>> same.drifted
    False
    >>> moved = drift(rng.standard_normal((500, 8)), rng.standard_normal((500, 8)) + 0.3, permutations=19,
    ...               calibrate=0)
    >>> moved.drifted
    True
    """
    from gaussaudit.stats.drift import drift_test
    from gaussaudit.streaming import sample_rows

    config = configured(config if config is not None else AuditConfig(normalize=False), AuditConfig, options, "drift")
    ref_rows = sample_rows(reference, config, sample)
    cur_rows = sample_rows(current, config, sample)
    from gaussaudit.errors import GaussAuditError

    if ref_rows.shape[1] != cur_rows.shape[1]:
        raise GaussAuditError(f"the reference has {ref_rows.shape[1]} features a row and the current set "
                              f"{cur_rows.shape[1]}: drift compares embeddings of one model.")
    result = drift_test(ref_rows, cur_rows, permutations=permutations, alpha=alpha, seed=config.seed)
    ref_test = cur_test = None
    if config.calibrate and not config.normalize:
        ref_test = _raw_test(reference, config, reference_report)
        cur_test = _raw_test(current, config, current_report)
    notes = (closed_form_note(ref_test, cur_test, config.normalize), *result.notes)
    from gaussaudit.io.sources import source_label

    return DriftReport(result, source_label(reference, "reference"), source_label(current, "current"), ref_test, cur_test,
                       config.normalize, notes)


def drift_checks(report: DriftReport) -> list:
    """The gate's check of a drift report: the Fréchet permutation test alone, so
    that undrifted data fail the gate at rate alpha (Hotelling's test of the
    means, in the drift report, would be a second chance to fail)."""
    from gaussaudit.gate.release import Check

    r = report.result
    return [Check("drift: Fréchet distance", "drift", not r.drifted,
                  f"Fréchet distance {r.frechet:.4g} between the fitted Gaussians, permutation p = {r.frechet_p:.3g} "
                  f"({r.permutations} relabellings; {'above' if r.drifted else 'within'} the {1 - r.alpha:.0%} "
                  f"null quantile {r.frechet_null_quantile:.4g}). {report.notes[0]}",
                  metric="drift.frechet", candidate=r.frechet,
                  limit=f"<= {r.frechet_null_quantile:.4g} (permutation null; p > {r.alpha:g})")]
