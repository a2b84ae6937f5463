"""``gate``: judge a candidate scan against a policy and, optionally, a baseline.

Every check is listed with the baseline's value, the candidate's, the change
and the limit; the gate passes when every check does. The candidate and the
baseline are each a JSON report of an earlier scan or embeddings to scan
(with the baseline report's settings, so both are measured alike).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Sequence

from gaussaudit.config import AuditConfig
from gaussaudit.errors import GaussAuditError
from gaussaudit.gate.metrics import GATE_METRICS
from gaussaudit.gate.policy import Policy, load_policy

GATE_SCHEMA = "gaussaudit.gate/1"

#: Settings that change what the statistics measure: two reports that differ in
#: one are not comparable. (How the files are read — key, column, split… — and
#: where the tests run may differ.)
STATISTICAL_SETTINGS = ("normalize", "sample", "seed", "rule", "projections", "pca_projections", "whiten", "mahalanobis",
                        "mv_sample", "mv_dims", "energy_replicates", "calibrate", "test_sample", "alpha")

BASIS_NOTE = ("Coordinate-wise summaries (ad.*, dp.*, moments.*, paper_table.*) depend on the basis a model happens to "
              "use, so across separately trained models they compare as loosely as the paper's table does; norm_cv, "
              "effective_rank, spectrum.* and projections.* do not change when the embedding space is rotated.")


@dataclass(frozen=True)
class Check:
    """One line of the gate: what was checked, the values, the limit, the outcome."""

    name: str
    #: "verdict", "threshold", "tolerance", "comparable" or "drift"
    kind: str
    passed: bool
    #: one sentence: why it passed or failed
    message: str
    metric: str | None = None
    baseline: float | str | None = None
    candidate: float | str | None = None
    delta: float | None = None
    limit: str = ""
    #: shown as a warning; never fails the gate (comparable = "warn")
    warning: bool = False


@dataclass(frozen=True)
class GateResult:
    """What ``gate`` found. ``passed``: every check passed."""

    checks: tuple[Check, ...]
    candidate: dict
    baseline: dict | None
    candidate_label: str
    baseline_label: str | None
    policy: Policy
    notes: tuple[str, ...] = ()
    drift: object | None = None  # gaussaudit.gate.drift.DriftReport
    #: the candidate's AuditReport when the gate scanned it (None for a JSON report): for its HTML report
    candidate_report: object | None = None

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def to_dict(self) -> dict:
        """``{"schema": "gaussaudit.gate/1", "passed", "checks": [...], "candidate": report, "baseline": report}``."""
        return {
            "schema": GATE_SCHEMA,
            "passed": self.passed,
            "policy": self.policy.source,
            "candidate_label": self.candidate_label,
            "baseline_label": self.baseline_label,
            "checks": [{f.name: _plain(getattr(c, f.name)) for f in fields(c)} for c in self.checks],
            "notes": list(self.notes),
            "drift": None if self.drift is None else self.drift.to_dict(),
            "candidate": self.candidate,
            "baseline": self.baseline,
        }


def _plain(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def is_report_path(source) -> bool:
    """A JSON report rather than embeddings: one path ending in .json."""
    return isinstance(source, (str, os.PathLike)) and Path(source).suffix.lower() == ".json"


def baseline_config(document: dict, policy: Policy) -> AuditConfig:
    """The scan options of a candidate judged against the report ``document``:
    its statistical settings, then the policy's ``[scan]`` on top."""
    settings = document.get("settings", {})
    base = AuditConfig(**{k: settings[k] for k in STATISTICAL_SETTINGS if k in settings})
    return policy.audit_config(base)


def _document(source, config: AuditConfig, progress):
    """The report of ``source`` as a dict, and the AuditReport when it was
    scanned here (None when it was read from a JSON report)."""
    from gaussaudit.audit import AuditReport, audit
    from gaussaudit.io.documents import read_report

    if isinstance(source, dict):
        return source, None
    if is_report_path(source):
        return read_report(source), None
    report = source if isinstance(source, AuditReport) else audit(source, config, progress=progress)
    return report.to_dict(), report


def gate(candidate, baseline=None, *, policy: Policy | str | os.PathLike | None = None, progress=None) -> GateResult:
    """Judge ``candidate`` by ``policy``, against ``baseline`` when given.

    Parameters
    ----------
    candidate, baseline : path, list of paths, array, AuditReport or dict
        A JSON report of an earlier scan (``.json``, or the dict), or embeddings
        to scan: files, folders, globs or an array, as ``audit`` takes them.
        Embeddings are scanned with the baseline report's settings (when the
        baseline is a report) and the policy's ``[scan]`` options.
    policy : Policy or path, optional
        Default: the policy found from the working directory upward
        (``gaussaudit.toml`` or ``[tool.gaussaudit]`` in ``pyproject.toml``),
        else gate on the headline test alone.
    progress : Progress, optional
        Receives the scans' progress.

    Returns
    -------
    GateResult

    Examples
    --------
    >>> import numpy as np
    >>> from gaussaudit.gate import gate, parse_policy
    >>> rng = np.random.default_rng(0)
    >>> policy = parse_policy({"thresholds": {"dp.pass_fraction": ">= 0.8"}, "tolerances": {"ad.mean": 0.2}})
    >>> result = gate(rng.standard_normal((2000, 32)), rng.standard_normal((2000, 32)), policy=policy)
    >>> [(c.name, c.passed) for c in result.checks]
    [('comparable', True), ('verdict: headline test', True), ('dp.pass_fraction >= 0.8', True), ('ad.mean vs baseline', True)]
    """
    if not isinstance(policy, Policy):
        policy = load_policy(policy)
    if policy.tolerances and baseline is None:
        raise GaussAuditError(f"{policy.source}: sets tolerances against a baseline "
                              f"({', '.join(t.metric.name for t in policy.tolerances)}); give a baseline "
                              "(--baseline PREVIOUS: its JSON report or its embeddings), or remove [tolerances].")
    if policy.drift.enabled and (baseline is None or is_report_path(baseline) or is_report_path(candidate)
                                 or isinstance(baseline, dict) or isinstance(candidate, dict)):
        raise GaussAuditError(f"{policy.source}: [drift] enabled compares the rows themselves; give embeddings, not "
                              "JSON reports, as both candidate and baseline.")
    config = policy.audit_config()
    base_doc = None
    if baseline is not None:
        base_doc, _ = _document(baseline, config, progress)
        config = baseline_config(base_doc, policy)
    cand_doc, cand_report = _document(candidate, config, progress)
    checks: list[Check] = []
    notes: list[str] = []
    if base_doc is not None:
        comparable = _comparable(base_doc, cand_doc, policy)
        if policy.tolerances:  # only tolerances set one report's numbers against the other's
            checks.append(comparable)
        elif comparable.warning or not comparable.passed:
            notes.append(comparable.message.split(" (comparable")[0])
        versions = [f"{tool} {base_doc['versions'][tool]} vs {cand_doc['versions'][tool]}"
                    for tool in ("gaussaudit", "numpy", "scipy")
                    if base_doc.get("versions", {}).get(tool) != cand_doc.get("versions", {}).get(tool)]
        if versions:
            notes.append("the two reports were computed by different versions (" + "; ".join(versions) + "); the "
                         "statistics agree with scipy to ~1e-12, but a changed default or test would show here.")
        if _same_rows(base_doc, cand_doc):
            notes.append("the candidate's tested rows are bit for bit the baseline's (same input fingerprint): "
                         "the candidate may not be a new model or new data.")
        if any(not t.metric.rotation_invariant for t in policy.tolerances):
            notes.append(BASIS_NOTE)
    if policy.verdict != "none":
        checks.append(_verdict(policy.verdict, base_doc, cand_doc))
    checks += [_threshold(t, base_doc, cand_doc) for t in policy.thresholds]
    checks += [_tolerance(t, base_doc, cand_doc) for t in policy.tolerances]
    drift = None
    if policy.drift.enabled:
        from gaussaudit.gate.drift import drift as drift_between
        from gaussaudit.gate.drift import drift_checks

        drift = drift_between(baseline, candidate, config=replace(config, normalize=policy.drift.normalize),
                              permutations=policy.drift.permutations,
                              alpha=policy.drift.alpha, sample=policy.drift.sample, reference_report=base_doc,
                              current_report=cand_doc)
        checks += drift_checks(drift)
    if not checks:
        notes.append("the policy asks for no check (verdict = 'none', no thresholds): the gate passes vacuously.")
    from gaussaudit.io.sources import source_label

    cand_label = "candidate" if isinstance(candidate, dict) else source_label(candidate)
    base_label = None if baseline is None else "baseline" if isinstance(baseline, dict) else source_label(baseline)
    return GateResult(tuple(checks), cand_doc, base_doc, cand_label, base_label, policy, tuple(notes), drift, cand_report)


def _comparable(base: dict, cand: dict, policy: Policy) -> Check:
    differences = []
    bs, cs = base.get("settings", {}), cand.get("settings", {})
    for key in STATISTICAL_SETTINGS:
        if bs.get(key) != cs.get(key):
            differences.append(f"{key} {bs.get(key)!r} vs {cs.get(key)!r}")
    bn, cn = base.get("input", {}).get("n_used"), cand.get("input", {}).get("n_used")
    if bn != cn:
        differences.append(f"rows tested {bn} vs {cn} (a test's power grows with its rows)")
    for test, constant in (("ad", "critical_value"), ("dp", "alpha")):
        b, c = base["metrics"].get(test, {}).get(constant), cand["metrics"].get(test, {}).get(constant)
        if b != c:
            differences.append(f"{test}.{constant} {b} vs {c}")
    bt, ct = (base.get("verdict", {}).get("test") or {}), (cand.get("verdict", {}).get("test") or {})
    if bt.get("statistic_name") != ct.get("statistic_name"):
        differences.append("the headline test's statistic differs (reports of different gaussaudit versions)")
    if not differences:
        return Check("comparable", "comparable", True, "baseline and candidate were scanned with the same statistical "
                     "settings and row counts.", limit="same settings")
    message = "baseline and candidate were not measured alike: " + "; ".join(differences) + "."
    warn = policy.comparable == "warn"
    return Check("comparable", "comparable", warn, message + (" (comparable = 'warn': not failing the gate)" if warn
                                                              else ""), limit="same settings", warning=warn)


def _same_rows(base: dict, cand: dict) -> bool:
    b = base.get("input", {}).get("fingerprint") or {}
    c = cand.get("input", {}).get("fingerprint") or {}
    return bool(b.get("sample_sha256")) and b.get("sample_sha256") == c.get("sample_sha256")


def _verdict(kind: str, base: dict | None, cand: dict) -> Check:
    if kind == "paper":
        def outcome(doc):
            return "Gaussian" if doc["verdict"].get("gaussian") else "not Gaussian"
        passed = bool(cand["verdict"].get("gaussian"))
        reasons = "; ".join(cand["verdict"].get("reasons") or [])
        return Check("verdict: paper rule", "verdict", passed,
                     f"the paper's rule (AD mean < 0.752 and DP mean p > 0.05, unnormalised rows; a heuristic, not a "
                     f"test) says {outcome(cand)}: {reasons}", baseline=None if base is None else outcome(base),
                     candidate=outcome(cand), limit="Gaussian")
    test = cand["verdict"].get("test")
    if not test:
        return Check("verdict: headline test", "verdict", False,
                     "the candidate report has no headline test (it was scanned with calibrate 0); scan it with "
                     "calibrate 19 or more, or gate on verdict = 'paper'.", limit="p > alpha")
    base_test = None if base is None else base["verdict"].get("test")
    p, alpha = test.get("p_value"), test.get("alpha")
    passed = bool(test.get("gaussian"))
    said = "does not reject" if passed else "rejects"
    message = (f"the headline test ({test.get('question')} rows, n = {test.get('n')}, {test.get('replicates')} "
               f"surrogates) {said} H0 ({test.get('null')}) at alpha = {alpha}: p = {p:.3g}.")
    return Check("verdict: headline test", "verdict", passed, message, metric="test.p_value",
                 baseline=None if not base_test else base_test.get("p_value"), candidate=p,
                 limit=f"p > {alpha}")


def _values(metric, base: dict | None, cand: dict):
    b = None if base is None else metric.value(base)
    c = metric.value(cand)
    delta = None if b is None or c is None else c - b
    return b, c, delta


def _threshold(t, base: dict | None, cand: dict) -> Check:
    b, c, delta = _values(t.metric, base, cand)
    name = f"{t.metric.name} {t.limit}"
    if c is None:
        return Check(name, "threshold", False, f"the candidate report has no {t.metric.name} ({t.metric.label}); "
                     "the scan that made it did not compute it.", metric=t.metric.name, baseline=b, limit=t.limit)
    passed = t.passes(c)
    verb = "meets" if passed else "breaks"
    return Check(name, "threshold", passed, f"{t.metric.label}: {c:.4g} {verb} the limit {t.limit}.",
                 metric=t.metric.name, baseline=b, candidate=c, delta=delta, limit=t.limit)


def _tolerance(t, base: dict, cand: dict) -> Check:
    b, c, delta = _values(t.metric, base, cand)
    name = f"{t.metric.name} vs baseline"
    limit = t.limit(b)
    if b is None or c is None:
        missing = "baseline" if b is None else "candidate"
        return Check(name, "tolerance", False, f"the {missing} report has no {t.metric.name} ({t.metric.label}).",
                     metric=t.metric.name, baseline=b, candidate=c, limit=limit)
    passed = t.passes(b, c)
    worse = t.worsening(b, c)
    if t.metric.better is None:
        how = f"moved by {worse:.4g}"
    else:
        how = f"worsened by {worse:.4g}" if worse > 0 else f"improved by {-worse:.4g}" if worse < 0 else "did not change"
    verdict = "within" if passed else "beyond"
    return Check(name, "tolerance", passed, f"{t.metric.label}: {b:.4g} → {c:.4g}, {how}, {verdict} the tolerance "
                 f"({limit}).", metric=t.metric.name, baseline=b, candidate=c, delta=delta, limit=limit)


def metric_rows(result: GateResult, names: Sequence[str] = ("ad.mean", "ad.pass_fraction", "dp.mean_p",
                                                              "dp.pass_fraction", "norm_cv")) -> list[tuple]:
    """(metric, baseline, candidate, delta) of some headline metrics, for context beside the checks."""
    rows = []
    for name in names:
        b, c, delta = _values(GATE_METRICS[name], result.baseline, result.candidate)
        rows.append((GATE_METRICS[name], b, c, delta))
    return rows
