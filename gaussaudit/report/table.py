"""The paper's table, as data: one definition of its rows and of how each value is
written, shared by the compare/track terminal tables, markdown and HTML."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from gaussaudit.stats.summaries import RULE_SUMMARIES, TABLE_SUMMARIES, Summary

if TYPE_CHECKING:
    from gaussaudit.audit import AuditReport


def format_number(x: float) -> str:
    """Three decimals where they say something, else scientific: a DP mean p of
    1e-27 must not print as 0.000."""
    if x != x:  # NaN
        return "n/a"
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        return f"{x:.3f}"
    return f"{x:.2e}"


def format_signed(x: float) -> str:
    """:func:`format_number` with its sign always shown (an excess, a skewness).

    Examples
    --------
    >>> format_signed(0.0123), format_signed(-2.5e-5)
    ('+0.012', '-2.50e-05')
    """
    text = format_number(x)
    return text if x != x or text.startswith("-") else "+" + text


def format_p(p: float) -> str:
    """An analytic p-value: three decimals, scientific below 0.001.

    Examples
    --------
    >>> format_p(0.4567), format_p(8.86e-28), format_p(0.0)
    ('0.457', '8.9e-28', '< 1e-300')
    """
    if p != p:
        return "n/a"
    return "< 1e-300" if p == 0 else (f"{p:.3f}" if p >= 0.001 else f"{p:.1e}")


def format_monte_carlo_p(p: float, replicates: int) -> str:
    """A Monte Carlo p-value; at its floor 1/(R + 1) no replicate reached the
    statistic, so the true p-value is at most that.

    Examples
    --------
    >>> format_monte_carlo_p(0.05, 19), format_monte_carlo_p(0.4, 19), format_monte_carlo_p(0.025, 39)
    ('≤ 0.05', '0.4', '≤ 0.025')
    """
    floor = 1 / (replicates + 1)
    return f"≤ {floor:.3g}" if p <= floor else f"{p:.3g}"


def format_percent(x: float) -> str:
    return "n/a" if x != x else f"{100 * x:.1f}%"


@dataclass(frozen=True)
class PaperRow:
    """One metric row: its label, how to write a report's value in one column
    of the paper's Table 2 pair ("unnormalised", the default and the one the
    paper's rule is judged on, or "normalised"), and whether that value meets
    the rule (None for rows the rule does not judge)."""

    label: str
    text: Callable[..., str]
    ok: Callable[..., bool | None]
    short: str = ""  # column header where the label is too wide (track's table)
    #: what Gaussian data give (the single-scan terminal table's last column)
    reference: str = ""


#: Which headline test belongs to which column of the pair.
COLUMN_QUESTION = {"unnormalised": "raw", "normalised": "normalised"}


def _column(report: AuditReport, column: str):
    return report.paper_columns[column]


def _test(report: AuditReport, column: str | None):
    """The column's headline test; with no column (one column per input) the
    test of the question the scan asks, the one ``--check`` gates on."""
    return report.test if column is None else report.tests.get(COLUMN_QUESTION[column])


def _test_text(report: AuditReport, column: str | None = None) -> str:
    test = _test(report, column)
    if test is None:
        return "n/a"
    return f"{'✓' if test.gaussian else '✗'} p {format_monte_carlo_p(test.p_value, test.replicates)}"


def _test_ok(report: AuditReport, column: str | None = None) -> bool | None:
    test = _test(report, column)
    return None if test is None else test.gaussian


#: How a summary of each kind is written.
FORMATS: dict[str, Callable[[float], str]] = {"number": format_number, "percent": format_percent}


def summary_text(summary: Summary, value: float) -> str:
    """A summary's value as every view writes it."""
    return FORMATS[summary.kind](value)


def _summary_row(summary: Summary) -> PaperRow:
    """The paper table's row of one registered summary, its value taken from
    the report's paper column."""
    def text(r, c="unnormalised"):
        return summary_text(summary, _column(r, c).metrics[summary.key])

    def ok(r, c="unnormalised"):
        return summary.passes(_column(r, c).metrics[summary.key])

    return PaperRow(summary.table_label, text, ok, summary.short, summary.reference)


PAPER_ROWS: tuple[PaperRow, ...] = (
    PaperRow("CV", lambda r, c="unnormalised": format_number(r.norm_cv) if c == "unnormalised" else "",
             lambda r, c="unnormalised": None, "CV", "small (thin shell)"),
    *(_summary_row(s) for s in TABLE_SUMMARIES),
    PaperRow("Gaussian?", lambda r, c="unnormalised": "✓" if _column(r, c).verdict.gaussian else "✗",
             lambda r, c="unnormalised": _column(r, c).verdict.gaussian, "Gaussian?", "paper rule: a heuristic"),
    PaperRow("Headline test", _test_text, _test_ok, "Test", "level-α test"),
)


def rule_legend() -> str:
    """The paper's rule and the share columns in one line: "Gaussian: AD Avg. <
    0.752 and DP Avg. > 0.05. Norm.: share passing at 5%."."""
    clauses = " and ".join(f"{s.label} {s.rule.comparison} {s.rule.threshold:g}" for s in RULE_SUMMARIES)
    return f"Gaussian: {clauses}. Norm.: share passing at 5%."


def table_columns(columns: Sequence[tuple[str, AuditReport]]) -> list[tuple[str, tuple]]:
    """The paper table's columns as ``(header, args)``, each row's value being
    ``row.text(*args)``: one input gets the Table 2 pair (unnormalised and
    normalised rows), several get one column each (unnormalised rows, the
    paper's Table 1 protocol, and the test of the question each scan asks)."""
    if len(columns) == 1:
        (_, report), = columns
        return [(name, (report, name)) for name in ("unnormalised", "normalised")]
    return [(label, (report,)) for label, report in columns]


def settings_summary(reports: Sequence[AuditReport]) -> str:
    """One line on what the numbers depend on: rows tested, normalisation, seed.

    The table's values are of the unnormalised rows (the paper's Table 1), its
    test row that of the question the scan asks (the one ``--check`` gates on);
    ``normalize`` decides what the projections and the terminal's other blocks
    are about."""
    first = reports[0]
    n_used = sorted({r.n_used for r in reports})
    if len(n_used) == 1:
        n_text = f"n = {n_used[0]:,} rows tested"
    else:
        n_text = "n = " + " / ".join(f"{r.n_used:,}" for r in reports) + " rows tested"
    norm = {r.config.normalize for r in reports}
    norm_text = ("table of unnormalised rows, the rest L2-normalised" if norm == {True}
                 else "rows not normalised" if norm == {False} else "normalisation differs")
    seeds = {r.config.seed for r in reports}
    seed_text = f"seed {first.config.seed}" if len(seeds) == 1 else "seeds differ"
    questions = {r.question for r in reports}
    test_text = f"test: {questions.pop()} question" if len(questions) == 1 else "test questions differ"
    return f"{n_text} · {norm_text} · {seed_text} · rule '{first.verdict.rule}' · {test_text}"


def norm_display_range(histogram) -> tuple[float, float]:
    """Range that holds the bulk of the norms (0.1 %–99.9 %), padded, so one far
    outlier does not squash the shell into a single bar; at least ±1 % of the
    centre wide, so already-normalised rows show as one spike rather than their
    rounding noise spread over the whole axis."""
    lo, hi = histogram.quantile(0.001), histogram.quantile(0.999)
    pad = 0.05 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    centre, half = (lo + hi) / 2, max((hi - lo) / 2, 0.01 * abs((lo + hi) / 2), 1e-12)
    return max(centre - half, 0.0), centre + half
