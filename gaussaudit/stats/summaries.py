"""The per-feature summaries, declared once: the paper's table (AD and DP mean
and share passing), their medians and the effect sizes.

Each :class:`Summary` says what it summarises (an array of
:class:`~gaussaudit.stats.normality.FeatureNormality`, the kernels' output, on
the CPU and on torch alike), how (a reduction over the non-constant features),
its JSON key, its label, how it is written, the paper rule's clause on it (if
any), what Gaussian data give, and the null band it is compared with (if any).
The audit (:func:`summarise`), the paper's rule (:func:`paper_rule`), the JSON
report, the paper table of every view, the projections and the calibration's
band names all iterate over :data:`SUMMARIES`.

Adding a per-feature statistic: its arrays to ``FeatureNormality`` (and the
torch kernel when it is not computed from moments), its :class:`Summary`
entries here, and a test; every report then shows it.

References
----------
.. [1] R. B. D'Agostino and M. A. Stephens, *Goodness-of-Fit Techniques*,
   Marcel Dekker, 1986 (Anderson-Darling with estimated parameters, 5 %
   critical value 0.752).
.. [2] R. B. D'Agostino, A. Belanger and R. B. D'Agostino Jr., "A suggestion
   for using powerful and informative tests of normality", *The American
   Statistician* 44(4), 1990.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from gaussaudit.stats.normality import AD_CRITICAL_5PCT, FeatureNormality

#: Significance level of the per-feature D'Agostino-Pearson pass and of the rule.
DP_ALPHA = 0.05


@dataclass(frozen=True)
class RuleClause:
    """One clause of the paper's rule: the summary must be ``comparison`` ``threshold``."""

    statistic: str  # what the summary is, for the verdict's sentence: "mean A²"
    threshold: float
    comparison: str  # "<" or ">"
    if_passed: str
    if_failed: str

    def passes(self, value: float) -> bool:
        return bool(value < self.threshold) if self.comparison == "<" else bool(value > self.threshold)


@dataclass(frozen=True)
class Summary:
    """One summary of a per-feature statistic over the tested features."""

    #: JSON key under ``metrics`` (and under ``metrics.paper_table.*`` and
    #: ``metrics.projections.*`` for table rows), dotted for nesting: "ad.mean".
    key: str
    #: attribute of the report, the paper column and the projection result: "ad_mean"
    attr: str
    #: the per-feature array it summarises (a FeatureNormality output)
    values: Callable[[FeatureNormality], np.ndarray]
    #: the reduction over the non-constant features' values
    reduce: Callable[[np.ndarray], float]
    #: "number" or "percent": how the views write it (report.table's formatters)
    kind: str = "number"
    #: label of its row in the paper table (table rows only) and its short form
    label: str = ""
    short: str = ""
    #: what Gaussian data give (the single-scan table's last column)
    reference: str = ""
    #: the paper rule's clause on it, None when the rule does not judge it
    rule: RuleClause | None = None
    #: a row of the paper's table (and of the projections' table)
    table: bool = False
    #: its null band's key in ``calibration.metrics.<question>``, None without one
    band: str | None = None
    #: which way is nearer to Gaussian, "lower" or "higher" (what a release gate
    #: calls worse); None when neither is (a signed median)
    better: str | None = None

    @property
    def test(self) -> str:
        """The per-feature test it summarises: its JSON block, "ad" or "dp"."""
        return self.key.split(".")[0]

    @property
    def rule_name(self) -> str:
        """The rule's clause as the verdict names it: "AD mean A²"."""
        return f"{self.test.upper()} {self.rule.statistic}"

    @property
    def table_label(self) -> str:
        """The row label with the rule's threshold: "AD Avg. (< 0.752)"."""
        return f"{self.label} ({self.rule.comparison} {self.rule.threshold:g})" if self.rule else self.label

    def passes(self, value: float) -> bool | None:
        """Whether ``value`` meets the rule's clause (None: the rule does not judge it)."""
        return None if self.rule is None else self.rule.passes(value)


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values))


def _median(values: np.ndarray) -> float:
    return float(np.median(values))


def _median_abs(values: np.ndarray) -> float:
    return float(np.median(np.abs(values)))


SUMMARIES: tuple[Summary, ...] = (
    Summary("ad.mean", "ad_mean", lambda f: f.ad.statistic, _mean, label="AD Avg.", short="AD Avg.",
            reference="≈ 0.38", table=True, better="lower",
            rule=RuleClause("mean A²", AD_CRITICAL_5PCT, "<", "average feature within the 5% critical value",
                            "average feature departs from normal (5% level)")),
    Summary("ad.median", "ad_median", lambda f: f.ad.statistic, _median, better="lower"),
    Summary("ad.pass_fraction", "ad_pass_fraction", lambda f: f.ad.passes(), _mean, kind="percent",
            label="AD Norm. Feat.", short="AD Norm.", reference="≈ 95%", table=True, better="higher"),
    Summary("dp.mean_p", "dp_mean_p", lambda f: f.dp.pvalue, _mean, label="DP Avg.", short="DP Avg.",
            reference="≈ 0.5", table=True, band="dp.mean_p", better="higher",
            rule=RuleClause("mean p", DP_ALPHA, ">", "typical skewness/kurtosis consistent with normal",
                            "typical skewness/kurtosis depart from normal")),
    Summary("dp.median_p", "dp_median_p", lambda f: f.dp.pvalue, _median, better="higher"),
    Summary("dp.pass_fraction", "dp_pass_fraction", lambda f: f.dp.pvalue > DP_ALPHA, _mean, kind="percent",
            label="DP Norm. Feat.", short="DP Norm.", reference="≈ 95%", table=True, band="dp.pass_fraction",
            better="higher"),
    Summary("moments.skewness.median", "skewness_median", lambda f: f.dp.skewness, _median),
    Summary("moments.skewness.median_abs", "skewness_median_abs", lambda f: f.dp.skewness, _median_abs,
            band="skewness.median_abs", better="lower"),
    Summary("moments.excess_kurtosis.median", "excess_kurtosis_median", lambda f: f.dp.excess_kurtosis, _median),
    Summary("moments.excess_kurtosis.median_abs", "excess_kurtosis_median_abs", lambda f: f.dp.excess_kurtosis,
            _median_abs, band="excess_kurtosis.median_abs", better="lower"),
)

#: The paper table's rows, in order.
TABLE_SUMMARIES = tuple(s for s in SUMMARIES if s.table)
#: The summaries the paper's rule judges (AD Avg., DP Avg.).
RULE_SUMMARIES = tuple(s for s in SUMMARIES if s.rule is not None)
BY_ATTR = {s.attr: s for s in SUMMARIES}

#: The per-feature tests the summaries summarise, by JSON block.
TEST_NAMES = {"ad": "Anderson–Darling", "dp": "D'Agostino–Pearson"}
#: Constants each per-feature test's JSON block carries beside its summaries.
TEST_CONSTANTS = {"ad": {"critical_value": AD_CRITICAL_5PCT}, "dp": {"alpha": DP_ALPHA}}


def summarise(features: FeatureNormality, summaries=SUMMARIES) -> dict[str, float]:
    """Every summary's value over the non-constant features (NaN when all are constant).

    Examples
    --------
    >>> import numpy as np
    >>> from gaussaudit.stats import feature_normality
    >>> x = np.random.default_rng(0).standard_normal((16, 2000))   # 16 features
    >>> values = summarise(feature_normality(x, axis=1))
    >>> list(values)[:3], values["ad.mean"] < AD_CRITICAL_5PCT
    (['ad.mean', 'ad.median', 'ad.pass_fraction'], True)
    """
    ok = ~features.constant
    if not ok.any():
        return {s.key: float("nan") for s in summaries}
    return {s.key: s.reduce(s.values(features)[ok]) for s in summaries}


def paper_rule(values: Mapping[str, float]):
    """The paper's rule on summaries: Gaussian iff every clause holds
    (mean A² < 0.752 and mean DP p-value > 0.05). Returns ``(gaussian, clauses)``
    with one ``(summary, value, passed)`` per clause."""
    clauses = [(s, values[s.key], s.rule.passes(values[s.key])) for s in RULE_SUMMARIES]
    return all(passed for _, _, passed in clauses), clauses


class SummaryAttributes:
    """Mixin: each summary readable as an attribute (``result.ad_mean``) of a
    class holding ``metrics``, its values by key."""

    def __getattr__(self, name: str):
        # only called when normal lookup fails; never for dunders (copy, pickle)
        summary = BY_ATTR.get(name)
        metrics = self.__dict__.get("metrics")
        if summary is None or metrics is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return metrics[summary.key]
