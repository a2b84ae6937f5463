"""The paper's table, as data: one definition of its rows and of how each value is
written, shared by the compare/track terminal tables, markdown and HTML."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from gaussaudit.stats import AD_CRITICAL_5PCT


def format_number(x: float) -> str:
    """Three decimals where they say something, else scientific: a DP mean p of
    1e-27 must not print as 0.000."""
    if x != x:  # NaN
        return "n/a"
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        return f"{x:.3f}"
    return f"{x:.2e}"


def format_percent(x: float) -> str:
    return "n/a" if x != x else f"{100 * x:.1f}%"


@dataclass(frozen=True)
class PaperRow:
    """One metric row: its label, how to write a report's value, and whether
    that value meets the rule (None for rows the rule does not judge)."""

    label: str
    text: Callable[[object], str]
    ok: Callable[[object], bool | None]
    short: str = ""  # column header where the label is too wide (track's table)


PAPER_ROWS: tuple[PaperRow, ...] = (
    PaperRow("CV", lambda r: format_number(r.norm_cv), lambda r: None, "CV"),
    PaperRow(f"AD Avg. (< {AD_CRITICAL_5PCT})", lambda r: format_number(r.ad_mean),
             lambda r: bool(r.ad_mean < AD_CRITICAL_5PCT), "AD Avg."),
    PaperRow("AD Norm. Feat.", lambda r: format_percent(r.ad_pass_fraction), lambda r: None, "AD Norm."),
    PaperRow("DP Avg. (> 0.05)", lambda r: format_number(r.dp_mean_p), lambda r: bool(r.dp_mean_p > 0.05), "DP Avg."),
    PaperRow("DP Norm. Feat.", lambda r: format_percent(r.dp_pass_fraction), lambda r: None, "DP Norm."),
    PaperRow("Gaussian?", lambda r: "✓" if r.verdict.gaussian else "✗", lambda r: r.verdict.gaussian, "Gaussian?"),
)


def settings_summary(reports) -> str:
    """One line on what the numbers depend on: rows tested, normalisation, seed."""
    first = reports[0]
    n_used = sorted({r.n_used for r in reports})
    n_text = f"n = {n_used[0]:,} rows tested" if len(n_used) == 1 else "n = " + " / ".join(f"{r.n_used:,}" for r in reports) + " rows tested"
    norm = {r.config.normalize for r in reports}
    norm_text = "rows L2-normalised" if norm == {True} else "rows not normalised" if norm == {False} else "normalisation differs"
    seeds = {r.config.seed for r in reports}
    seed_text = f"seed {first.config.seed}" if len(seeds) == 1 else "seeds differ"
    return f"{n_text} · {norm_text} · {seed_text} · rule '{first.verdict.rule}'"


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
