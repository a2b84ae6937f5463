"""The paper's table as GitHub-flavoured markdown, for CI step summaries and
pull-request comments."""
from __future__ import annotations

from gaussaudit.report.table import PAPER_ROWS, settings_summary


def _cell(text: str) -> str:
    """A table cell: a '|' would end the cell, a newline the row."""
    return " ".join(str(text).split()).replace("|", "\\|")


def render_markdown(columns) -> str:
    """``columns``: ``(label, AuditReport)`` pairs, one table column each.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussaudit import audit
    >>> report = audit(np.random.default_rng(0).standard_normal((500, 16)))
    >>> print(render_markdown([("gauss", report)]).splitlines()[0])
    | Metric | gauss |
    """
    columns = list(columns)
    lines = [
        "| Metric | " + " | ".join(_cell(label) for label, _ in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for row in PAPER_ROWS:
        label = f"**{row.label}**" if row.label == "Gaussian?" else row.label
        lines.append(f"| {_cell(label)} | " + " | ".join(_cell(row.text(r)) for _, r in columns) + " |")
    reports = [r for _, r in columns]
    lines += ["", f"_{settings_summary(reports)}; AD: Anderson–Darling, DP: D'Agostino–Pearson "
                  "(gaussaudit, *InfoNCE Induces Gaussian Distribution*, ICLR 2026)._"]
    failing = [(label, r) for label, r in columns if not r.verdict.gaussian]
    if failing:
        lines.append("")
        for label, r in failing:
            lines.append(f"- **{_cell(label)}**, paper rule: " + "; ".join(_cell(reason) for reason in r.verdict.reasons))
    return "\n".join(lines) + "\n"
