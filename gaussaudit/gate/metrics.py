"""The quantities a release gate can put a limit on, declared once: the
per-feature summaries of the registry (:data:`~gaussaudit.stats.summaries.SUMMARIES`)
and the paper table's columns, the projections, the norm CV, the covariance
spectrum and the headline test's p-value, each with where it sits in the JSON
report, which way is worse, and whether it depends on the model's basis.

Two separately trained models have unrelated bases (any rotation of an
embedding space is as good as another), so a quantity computed on coordinates
is comparable across models only in the loose sense of the paper's table; the
``rotation_invariant`` ones (norm CV, spectrum, random and principal
projections) do not change when the space is rotated.
"""
from __future__ import annotations

from dataclasses import dataclass

from gaussaudit.stats.summaries import SUMMARIES, TABLE_SUMMARIES


@dataclass(frozen=True)
class GateMetric:
    """One quantity of a scan report a gate can limit."""

    #: as a policy names it: "ad.mean", "norm_cv", "projections.random.dp.pass_fraction"
    name: str
    #: keys leading to it in the JSON report
    path: tuple[str, ...]
    #: what it is, in words
    label: str
    #: "lower" or "higher": which way is nearer to Gaussian; None: neither
    better: str | None
    #: unchanged when the embedding space is rotated
    rotation_invariant: bool
    #: "number", "percent" or "integer": how it is written
    kind: str = "number"

    def value(self, report: dict) -> float | None:
        """Its value in a JSON report (dict), None when the report has none."""
        node = report
        for key in self.path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        if isinstance(node, bool) or not isinstance(node, (int, float)):
            return None
        return float(node)


def _summary_metrics():
    for s in SUMMARIES:
        label = s.label or s.key
        yield GateMetric(s.key, ("metrics", *s.key.split(".")), f"{label} (coordinates)", s.better, False, s.kind)
    for column in ("unnormalised", "normalised"):
        for s in TABLE_SUMMARIES:
            yield GateMetric(f"paper_table.{column}.{s.key}", ("metrics", "paper_table", column, *s.key.split(".")),
                             f"{s.label}, {column} rows (the paper's table)", s.better, False, s.kind)
    for kind, words in (("random", "random projections"), ("pca", "principal projections")):
        for s in TABLE_SUMMARIES:
            yield GateMetric(f"projections.{kind}.{s.key}", ("metrics", "projections", kind, *s.key.split(".")),
                             f"{s.label} of the {words}", s.better, True, s.kind)


GATE_METRICS: dict[str, GateMetric] = {m.name: m for m in (
    *_summary_metrics(),
    GateMetric("norm_cv", ("metrics", "norm_cv"), "CV of the raw row norms", "lower", True),
    GateMetric("effective_rank", ("metrics", "effective_rank"), "covariance eigenvalues above round-off", None, True,
               "integer"),
    GateMetric("spectrum.participation_ratio", ("metrics", "spectrum", "participation_ratio"),
               "participation ratio (tr Σ)²/tr Σ² of the tested rows", None, True),
    GateMetric("spectrum.entropy_rank", ("metrics", "spectrum", "entropy_rank"),
               "entropy effective rank of the tested rows' covariance", None, True),
    GateMetric("spectrum.rankme", ("metrics", "spectrum", "rankme"),
               "RankMe: entropy effective rank of the tested rows' singular values", "higher", True),
    GateMetric("spectrum.top_share", ("metrics", "spectrum", "top_share"),
               "share of variance along the first principal direction", None, True, "percent"),
    GateMetric("test.p_value", ("verdict", "test", "p_value"), "p-value of the headline test", "higher", False),
)}


def metric_names() -> str:
    """Every metric name, for error messages."""
    return ", ".join(GATE_METRICS)
