"""The report as GitHub-flavoured markdown, for CI step summaries and
pull-request comments: a heading, the paper's table, then every section the scan
computed (:func:`~gaussaudit.report.sections.report_sections`)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from gaussaudit.report.sections import Cell, Section, preparation_line, provenance_lines, report_sections, sampling_line
from gaussaudit.report.table import PAPER_ROWS, settings_summary, table_columns
from gaussaudit.stats.summaries import TEST_NAMES

if TYPE_CHECKING:
    from gaussaudit.audit import AuditReport


def _cell(text: str) -> str:
    """A table cell: a '|' would end the cell, a newline the row."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(header, rows) -> list[str]:
    return ["| " + " | ".join(_cell(h) for h in header) + " |",
            "|---|" + "---:|" * (len(header) - 1),
            *("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)]


def paper_table_lines(columns: Sequence[tuple[str, AuditReport]]) -> list[str]:
    """The paper's table, its columns as :func:`~gaussaudit.report.table.table_columns` chooses."""
    table = table_columns(columns)
    rows = []
    for row in PAPER_ROWS:
        label = f"**{row.label}**" if row.label == "Gaussian?" else row.label
        rows.append([label, *(row.text(*args) for _, args in table)])
    return _table(["Metric", *(header for header, _ in table)], rows)


def _cell_text(cell: Cell) -> str:
    return f"**{cell.text}**" if cell.flag and cell.text else cell.text


def section_lines(section: Section, level: str = "###") -> list[str]:
    subtitle = f" ({section.subtitle})" if section.subtitle else ""
    lines = ["", f"{level} {section.title}{subtitle}"]
    if section.rows:
        lines += ["", *_table(section.header, [[_cell_text(c) for c in row] for row in section.rows])]
    if section.summary is not None:
        lines += ["", f"**{_cell(section.summary.text)}**"]
    if section.notes:
        lines += ["", *(f"- {_cell(note)}" for note in section.notes)]
    return lines


def render_markdown(columns: Sequence[tuple[str, AuditReport]], title: str | None = None) -> str:
    """``columns``: ``(label, AuditReport)`` pairs.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussaudit import audit
    >>> report = audit(np.random.default_rng(0).standard_normal((500, 16)), calibrate=0)
    >>> print("\\n".join(render_markdown([("gauss", report)]).splitlines()[:3]))
    # gaussaudit scan · gauss
    <BLANKLINE>
    | Metric | unnormalised | normalised |
    """
    columns = list(columns)
    labels = [label for label, _ in columns]
    if title is None:
        title = (f"gaussaudit scan · {labels[0]}" if len(columns) == 1
                 else f"gaussaudit compare · {', '.join(labels)}")
    reports = [r for _, r in columns]
    lines = [f"# {_cell(title)}", "", *paper_table_lines(columns)]
    tests = ", ".join(f"{key.upper()}: {name}" for key, name in TEST_NAMES.items())
    lines += ["", f"_{settings_summary(reports)}; {tests} "
                  "(gaussaudit, *InfoNCE Induces Gaussian Distribution*, ICLR 2026). In sections, bold "
                  "values lie outside their Gaussian null band._"]
    failing = [(label, r) for label, r in columns if not r.verdict.gaussian]
    if failing and len(columns) > 1:
        lines.append("")
        for label, r in failing:
            lines.append(f"- **{_cell(label)}**, paper rule: " + "; ".join(_cell(reason) for reason in r.verdict.reasons))
    for label, report in columns:
        if len(columns) > 1:
            lines += ["", f"## {_cell(label)}"]
        lines += ["", *(f"- {_cell(line)}" for line in (sampling_line(report), preparation_line(report),
                                                          *provenance_lines(report)))]
        for section in report_sections(report):
            lines += section_lines(section)
    return "\n".join(lines) + "\n"
