"""The versioned JSON report. Keys listed in docs/json-schema.md are stable:
add fields freely, never rename one without bumping SCHEMA."""
from __future__ import annotations

import dataclasses
import json
import math
from typing import TYPE_CHECKING, Mapping

import numpy as np

from gaussaudit.stats.headline import STATISTIC
from gaussaudit.stats.summaries import SUMMARIES, TABLE_SUMMARIES, TEST_CONSTANTS

if TYPE_CHECKING:
    from gaussaudit.audit import AuditReport

SCHEMA = "gaussaudit.report/2"


def _num(x):
    """JSON has no NaN/inf: they become null."""
    x = float(x)
    return x if math.isfinite(x) else None


def _worst(w):
    return {"feature": w.feature, "value": _num(w.value)}


def _nest(out: dict, values: Mapping[str, float], summaries) -> dict:
    """``values`` (by dotted key) written into ``out`` as nested blocks, in the
    registry's order: "ad.mean" → ``out["ad"]["mean"]``."""
    for s in summaries:
        *groups, name = s.key.split(".")
        block = out
        for group in groups:
            block = block.setdefault(group, {})
        block[name] = _num(values[s.key])
    return out


def _projection(p) -> dict:
    out = _nest({"k": p.k}, p.metrics, TABLE_SUMMARIES)
    if p.explained is not None:
        out["explained_variance"] = _num(p.explained)
    return out


def report_to_dict(report: AuditReport, per_feature: bool = False) -> dict:
    """Plain-Python dict of an AuditReport, ready for ``json.dumps``."""
    from gaussaudit import __version__

    out = {
        "schema": SCHEMA,
        "gaussaudit_version": __version__,
        "input": {
            "paths": list(report.paths),
            "layouts": list(report.layouts),
            "provenance": [dict(p) for p in report.provenance],
            "dtype": report.dtype,
            "n_total": report.n_total,
            "n_used": report.n_used,
            "dim": report.dim,
            "constant_features": len(report.constant_features),
            "constant_feature_indices": [int(j) for j in report.constant_features],
            "nonfinite_rows_dropped": report.nonfinite_rows_dropped,
            "zero_norm_rows": report.zero_norm_rows,
            "fingerprint": {"rows": report.n_used, "dim": report.dim, "sample_sha256": report.sample_sha256},
        },
        "versions": _versions(),
        "settings": _settings(report.config),
        "metrics": {
            "norm_cv": _num(report.norm_cv),
            "norm_cv_gaussian": None if report.norm_cv_gaussian is None else _num(report.norm_cv_gaussian),
            "norm_mean": _num(report.norm_mean),
            "norm_std": _num(report.norm_std),
            "features_tested": report.n_tested,
            "feature_space": report.feature_space,
            "effective_rank": report.effective_rank,
            "spectrum": None if report.spectrum is None else {
                "participation_ratio": _num(report.spectrum.participation_ratio),
                "entropy_rank": _num(report.spectrum.entropy_rank),
                "rankme": _num(report.spectrum.rankme),
                "top_share": _num(report.spectrum.top_share),
            },
        },
        "verdict": {
            "gaussian": report.verdict.gaussian,
            "rule": report.verdict.rule,
            "rows": "unnormalised",
            "reasons": report.verdict.reasons,
            "conditions": [
                {
                    "name": c.name,
                    "value": _num(c.value),
                    "comparison": c.comparison,
                    "threshold": c.threshold,
                    "passed": c.passed,
                }
                for c in report.verdict.conditions
            ],
        },
        "timing": {"seconds": round(report.seconds, 4)},
    }
    metrics = _nest(out["metrics"], report.metrics, SUMMARIES)
    for test, constants in TEST_CONSTANTS.items():
        metrics[test].update(constants)
    metrics["ad"]["worst_features"] = [_worst(w) for w in report.worst_ad_features]
    metrics["moments"]["skewness"]["worst"] = _worst(report.skewness_worst)
    metrics["moments"]["excess_kurtosis"]["worst"] = _worst(report.excess_kurtosis_worst)
    out["verdict"]["test"] = _test(report.test) if report.test is not None else None
    out["verdict"]["tests"] = {q: _test(t) for q, t in report.tests.items()}
    if report.paper_columns:
        metrics["paper_table"] = {name: _paper_column(c) for name, c in report.paper_columns.items()}
    if report.moments is not None:
        metrics["moments_every_row"] = _every_row(report.moments)
    projections = {p.kind: _projection(p) for p in (report.projections_random, report.projections_pca) if p is not None}
    if projections:
        metrics["projections"] = projections
    if report.multivariate is not None:
        mv = report.multivariate
        metrics["multivariate"] = {
            "rows": "unnormalised",
            "n": mv.n,
            "dim": mv.dim,
            "source_dim": mv.source_dim,
            "explained_variance": _num(mv.explained),
            "mardia": {
                "skewness": _num(mv.mardia.skewness),
                "skewness_statistic": _num(mv.mardia.skewness_statistic),
                "skewness_p": _num(mv.mardia.skewness_p),
                "kurtosis": _num(mv.mardia.kurtosis),
                "kurtosis_statistic": _num(mv.mardia.kurtosis_statistic),
                "kurtosis_p": _num(mv.mardia.kurtosis_p),
            },
            "henze_zirkler": {"statistic": _num(mv.henze_zirkler.statistic), "p_value": _num(mv.henze_zirkler.p_value)},
            "energy": {
                "statistic": _num(mv.energy.statistic),
                "p_value": _num(mv.energy.p_value),
                "replicates": mv.energy.replicates,
            },
        }
        if mv.mahalanobis is not None:
            m = mv.mahalanobis
            metrics["mahalanobis"] = {
                "statistic": _num(m.statistic),
                "p_value": _num(m.p_value),
                "rank": m.rank,
                "n": m.n,
                "replicates": m.replicates,
                "reference": "KS distance of n·D²/(n−1)² from Beta(r/2, (n−r−1)/2) (raw rows, multivariate "
                             "subsample, top PCs); Monte Carlo p-value",
            }
    if report.uniformity is not None:
        u = report.uniformity
        metrics["uniformity"] = {
            "rows": "normalised",
            "n": u.n,
            "dim": u.dim,
            "mean_resultant_length": _num(u.mean_resultant_length),
            "rayleigh": {"statistic": _num(u.rayleigh_statistic), "df": u.rayleigh_df, "p_value": _num(u.rayleigh_p)},
            "bingham": {"statistic": _num(u.bingham_statistic), "df": u.bingham_df, "p_value": _num(u.bingham_p)},
        }
    if report.calibration is not None:
        cal = report.calibration
        out["calibration"] = {
            "replicates": cal.replicates,
            "n": cal.n,
            "coverage": _num(cal.coverage),
            "prenormalised": cal.prenormalised,
            "norm_cv": (None if cal.norm_cv is None
                        else {**_band(cal.norm_cv), "gaussian_formula": _num(cal.norm_cv_formula)}),
            "metrics": {q: {name: _band(b) for name, b in bands.items()} for q, bands in cal.bands.items()},
        }
    out["notes"] = list(report.notes)
    if per_feature and out["metrics"]["spectrum"] is not None and report.spectrum_eigenvalues is not None:
        out["metrics"]["spectrum"]["eigenvalues"] = [_num(v) for v in report.spectrum_eigenvalues]
    if per_feature:
        f = report.features
        out["features"] = {
            "ad_statistic": [_num(v) for v in f.ad.statistic],
            "ad_pvalue": [_num(v) for v in f.ad.pvalue],
            "dp_statistic": [_num(v) for v in f.dp.statistic],
            "dp_pvalue": [_num(v) for v in f.dp.pvalue],
            "skewness": [_num(v) for v in f.dp.skewness],
            "excess_kurtosis": [_num(v) for v in f.dp.excess_kurtosis],
        }
        if report.moments is not None:
            m = report.moments
            out["features"].update({
                "every_row_mean": [_num(v) for v in m.mean],
                "every_row_std": [_num(v) for v in m.std],
                "every_row_skewness": [_num(v) for v in m.skewness],
                "every_row_excess_kurtosis": [_num(v) for v in m.excess_kurtosis],
            })
    return out


def _versions() -> dict:
    """What computed the numbers: a later gate says when two reports' differ."""
    import scipy

    from gaussaudit import __version__

    return {"gaussaudit": __version__, "numpy": np.__version__, "scipy": scipy.__version__}


#: Options that change how an audit runs, not what it finds: not in ``settings``.
_NOT_SETTINGS = ("threads",)


def _settings(config) -> dict:
    """Every option the numbers depend on, in AuditConfig's order (a new
    option appears here by itself)."""
    out = {}
    for f in dataclasses.fields(config):
        if f.name not in _NOT_SETTINGS:
            value = getattr(config, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def _test(t) -> dict:
    return {
        "question": t.question,
        "gaussian": t.gaussian,
        "alpha": t.alpha,
        "p_value": _num(t.p_value),
        "p_floor": _num(t.p_floor),
        "statistic": _num(t.statistic),
        "statistic_name": STATISTIC,
        "null": t.null,
        "replicates": t.replicates,
        "n": t.n,
    }


def _band(b) -> dict:
    return {"observed": _num(b.observed), "null_low": _num(b.null_low), "null_high": _num(b.null_high),
            "null_mean": _num(b.null_mean), "percentile": _num(b.percentile)}


def _paper_column(c) -> dict:
    return {**_nest({"normalized": c.normalized}, c.metrics, TABLE_SUMMARIES), "paper_rule": c.verdict.gaussian}


def _every_row(m) -> dict:
    """Effect sizes over every row (the tests see only the sample)."""
    ok = ~m.constant
    out = {"rows": m.count, "constant_features": int(np.count_nonzero(m.constant))}
    for name, values in (("skewness", m.skewness), ("excess_kurtosis", m.excess_kurtosis)):
        if ok.any():
            size = np.abs(values[ok])
            worst = int(np.flatnonzero(ok)[np.argmax(size)])
            out[name] = {"median": _num(np.median(values[ok])), "median_abs": _num(np.median(size)),
                         "worst": {"feature": worst, "value": _num(values[worst])}}
        else:
            out[name] = {"median": None, "median_abs": None, "worst": None}
    return out


def render_json(report: AuditReport, per_feature: bool = False) -> str:
    return json.dumps(report_to_dict(report, per_feature=per_feature), indent=2, ensure_ascii=False) + "\n"
