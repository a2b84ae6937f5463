"""One self-contained HTML file: the paper's table, the verdicts and every figure
inline as a base64 ``data:`` URI. Nothing is fetched from the network, so the
file opens offline, attaches to a CI run as one artefact, and prints."""
from __future__ import annotations

import base64
import html
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Sequence

from gaussaudit.report.sections import Cell, Section, preparation_line, provenance_lines, report_sections
from gaussaudit.report.table import (
    PAPER_ROWS,
    format_monte_carlo_p,
    format_number,
    settings_summary,
    table_columns,
)
from gaussaudit.stats.summaries import RULE_SUMMARIES, TEST_NAMES

if TYPE_CHECKING:
    from gaussaudit.audit import AuditReport

#: The paper rule's clauses, from the summaries it judges.
_RULE_LEGEND = ", ".join(f"{s.test.upper()}: {TEST_NAMES[s.test]} ({s.rule.statistic} {html.escape(s.rule.comparison)} "
                         f"{s.rule.threshold:g})" for s in RULE_SUMMARIES)

_CSS = """
:root { --pass: #2f855a; --fail: #c53030; --muted: #5a6472; --rule: #d8dee6; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1a202c; margin: 0 auto; padding: 24px 32px 48px; max-width: 1180px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 6px; padding-top: 12px; border-top: 2px solid var(--rule); }
h3 { font-size: 15px; margin: 0 0 6px; }
.muted { color: var(--muted); }
table.paper { border-collapse: collapse; margin: 16px 0; font-variant-numeric: tabular-nums; }
table.paper th, table.paper td { padding: 6px 14px; border-bottom: 1px solid var(--rule); text-align: right; }
table.paper th:first-child, table.paper td:first-child { text-align: left; }
table.paper thead th { border-bottom: 2px solid #1a202c; word-break: break-all; max-width: 260px; }
table.paper tr.verdict td { font-weight: 700; font-size: 18px; border-bottom: 2px solid #1a202c; }
.pass { color: var(--pass); } .fail { color: var(--fail); }
ul.reasons { margin: 4px 0 0; padding-left: 20px; }
table.section { border-collapse: collapse; margin: 8px 0; font-size: 14px; font-variant-numeric: tabular-nums; }
table.section th, table.section td { padding: 3px 10px; border-bottom: 1px solid var(--rule); text-align: right; }
table.section th:first-child, table.section td:first-child { text-align: left; }
td.flag { background: #fff3cd; }
p.summary { font-weight: 700; margin: 6px 0; }
ul.notes { margin: 4px 0 0; padding-left: 20px; color: var(--muted); font-size: 13px; }
.side { display: grid; grid-template-columns: repeat(var(--inputs), minmax(320px, 1fr)); gap: 18px 24px;
        overflow-x: auto; }
.side > div { min-width: 0; }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 18px 24px; margin-top: 12px; }
figure { margin: 0; break-inside: avoid; page-break-inside: avoid; }
figure.wide { grid-column: 1 / -1; }
figure.single img { max-width: 780px; }
figure img { width: 100%; height: auto; border: 1px solid var(--rule); display: block; }
figcaption { font-size: 13px; color: var(--muted); margin-top: 4px; }
footer { margin-top: 40px; font-size: 12px; color: var(--muted); }
@media (max-width: 800px) { .grid { grid-template-columns: 1fr; } }
@media print {
  body { padding: 0; max-width: none; font-size: 11pt; }
  h2.page { break-before: page; page-break-before: always; }
  .grid, .side { display: block; }
  figure { margin: 0 0 14pt; }
  figure img { max-width: 100%; max-height: 9.5in; }
}
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _table(columns: Sequence[tuple[str, AuditReport]]) -> str:
    """The paper's table, its columns as :func:`~gaussaudit.report.table.table_columns` chooses."""
    table = table_columns(columns)
    head = "".join(f"<th>{_e(header)}</th>" for header, _ in table)
    rows = []
    for row in PAPER_ROWS:
        cells = []
        for _, args in table:
            ok = row.ok(*args)
            cls = "" if ok is None else f' class="{"pass" if ok else "fail"}"'
            cells.append(f"<td{cls}>{_e(row.text(*args))}</td>")
        cls = ' class="verdict"' if row.label == "Gaussian?" else ""
        rows.append(f"<tr{cls}><td>{_e(row.label)}</td>{''.join(cells)}</tr>")
    return (f'<table class="paper"><thead><tr><th>Metric</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _td(cell: Cell) -> str:
    classes = ([] if cell.ok is None else ["pass" if cell.ok else "fail"]) + (["flag"] if cell.flag else [])
    cls = f' class="{" ".join(classes)}"' if classes else ""
    return f"<td{cls}>{_e(cell.text)}</td>"


def _section_body(section: Section) -> str:
    parts = []
    if section.subtitle:
        parts.append(f'<p class="muted">{_e(section.subtitle)}</p>')
    if section.rows:
        head = "".join(f"<th>{_e(h)}</th>" for h in section.header)
        body = "".join("<tr>" + "".join(_td(c) for c in row) + "</tr>" for row in section.rows)
        parts.append(f'<table class="section"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')
    if section.summary is not None:
        ok = section.summary.ok
        cls = "" if ok is None else (" pass" if ok else " fail")
        parts.append(f'<p class="summary{cls}">{_e(section.summary.text)}</p>')
    if section.notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{_e(n)}</li>" for n in section.notes) + "</ul>")
    return "".join(parts)


def _sections(columns: Sequence[tuple[str, AuditReport]]) -> str:
    """Every section of every input; with several inputs, each section's inputs
    side by side (one grid column each)."""
    per_input = [{s.key: s for s in report_sections(report)} for _, report in columns]
    keys = list(dict.fromkeys(key for sections in per_input for key in sections))
    parts = []
    for key in keys:
        present = [sections[key] for sections in per_input if key in sections]
        parts.append(f'<section id="section-{key}"><h2>{_e(present[0].title)}</h2>')
        if len(columns) == 1:
            parts.append(_section_body(present[0]))
        else:
            cells = []
            for (label, _), sections in zip(columns, per_input):
                body = _section_body(sections[key]) if key in sections else '<p class="muted">not computed</p>'
                cells.append(f"<div><h3>{_e(label)}</h3>{body}</div>")
            parts.append(f'<div class="side" style="--inputs: {len(columns)}">{"".join(cells)}</div>')
        parts.append("</section>")
    return "".join(parts)


def _details(label: str, report) -> str:
    test = report.test
    ok = report.verdict.gaussian if test is None else test.gaussian
    verdict = "Gaussian" if ok else "not Gaussian"
    cls = "pass" if ok else "fail"
    how = "" if test is None else (f" (headline test, {test.question} rows: p "
                                   f"{format_monte_carlo_p(test.p_value, test.replicates)}, level {100 * test.alpha:g} %)")
    paper = "Gaussian" if report.verdict.gaussian else "not Gaussian"
    files = ", ".join(report.paths[:3]) + (f" … ({len(report.paths)} files)" if len(report.paths) > 3 else "")
    reasons = "".join(f"<li>{_e(reason)}</li>" for reason in report.verdict.reasons)
    return (
        f'<p><strong>{_e(label)}</strong>: <span class="{cls}"><strong>{verdict}</strong>{_e(how)}</span> '
        f'<span class="muted">· {_e(files)} · rows {report.n_total:,}, tested {report.n_used:,} · dim {report.dim}'
        f" · median |skewness| {format_number(report.skewness_median_abs)}"
        f" · median |excess kurtosis| {format_number(report.excess_kurtosis_median_abs)}</span></p>"
        f'<p class="muted">{_e(preparation_line(report))}</p>'
        + "".join(f'<p class="muted">{_e(line)}</p>' for line in provenance_lines(report))
        + f'<p>paper rule (unnormalised rows; a heuristic, not a test): {paper}</p>'
        f'<ul class="reasons">{reasons}</ul>'
    )


def _figure(img, label: str) -> str:
    wide = ' class="wide"' if img.name.startswith("qq") else ""  # three panels side by side
    return (f'<figure{wide}><h3>{_e(img.title)}</h3>'
            f'<img src="{_data_uri(img.png)}" alt="{_e(img.title)} ({_e(label)})">'
            f"<figcaption>{_e(img.caption)}</figcaption></figure>")


def _figures(columns: Sequence[tuple[str, AuditReport]], images) -> str:
    """One input: its figures in a two-column grid. Several: each figure's
    inputs side by side, one grid column per input."""
    if len(columns) == 1:
        (label, _), = columns
        return (f'<h2 class="page">Figures: {_e(label)}</h2><div class="grid">'
                + "".join(_figure(img, label) for img in images[0]) + "</div>")
    labels = [label for label, _ in columns]
    parts = [f'<h2 class="page">Figures: {_e(", ".join(labels))}</h2>']
    by_name = [{img.name: img for img in column_images} for column_images in images]
    names = list(dict.fromkeys(img.name for column_images in images for img in column_images))
    for name in names:
        cells = []
        for label, figures in zip(labels, by_name):
            cells.append(f"<div><h3>{_e(label)}</h3>{_figure(figures[name], label) if name in figures else ''}</div>")
        parts.append(f'<div class="side" style="--inputs: {len(columns)}">{"".join(cells)}</div>')
    return "".join(parts)


def render_html(columns: Sequence[tuple[str, AuditReport]], title: str = "gaussaudit report", images=None) -> str:
    """The whole page for ``columns`` (``(label, AuditReport)`` pairs): table,
    verdicts, every section the scan computed, then the figures; several inputs
    sit side by side.

    ``images``: each column's ``report_figures`` if already drawn; else they are
    drawn here (needs matplotlib).
    """
    columns = list(columns)
    reports = [r for _, r in columns]
    if images is None:
        from gaussaudit.report.figures import report_figures

        null_cache: dict = {}
        images = [report_figures(report, null_cache) for report in reports]
    subtitle = ("Gaussianity audit as in <em>InfoNCE Induces Gaussian Distribution</em> (Betser, Gofer, Levi,\n"
                f"Gilboa — ICLR 2026) · {_e(settings_summary(reports))}")
    main = f"""{_table(columns)}
<p class="muted">{_RULE_LEGEND}; Norm. Feat.:
share of features that pass at 5 % (≈ 95 % for a true Gaussian). CV: std/mean of raw row norms. A pass means no
departure detectable at this n, not proof; compare inputs at the same sample size.</p>
{''.join(_details(label, r) for label, r in columns)}
{_sections(columns)}
{_figures(columns, images)}"""
    return _page(title, subtitle, main)


def _page(title: str, subtitle_html: str, main_html: str) -> str:
    """The document every HTML view shares: head and style, title, subtitle, main, footer."""
    from gaussaudit import __version__

    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>{_e(title)}</h1>
<p class="muted">{subtitle_html}</p>
</header>
<main>
{main_html}
</main>
<footer>gaussaudit {_e(__version__)} · {stamp}</footer>
</body>
</html>
"""


def render_page(title: str, subtitle: str, sections: Sequence[Section], images, label: str = "") -> str:
    """A self-contained page for a command other than scan and compare (``pairs``,
    ``score``): the title, its sections (tables, summaries and notes drawn as a scan's
    are), then ``images`` (:class:`~gaussaudit.report.figures.FigureImage`) inline as
    data URIs, in the same style as :func:`render_html`."""
    body = "".join(f'<section id="section-{_e(s.key)}"><h2>{_e(s.title)}</h2>{_section_body(s)}</section>'
                   for s in sections)
    figures = ""
    if images:
        figures = ('<h2 class="page">Figures</h2><div class="grid">'
                   + "".join(_figure_wide(img, label) for img in images) + "</div>")
    return _page(title, _e(subtitle), f"{body}\n{figures}")


def _figure_wide(img, label: str) -> str:
    """One figure across the whole grid (these pages have one or two)."""
    return (f'<figure class="wide single"><h3>{_e(img.title)}</h3>'
            f'<img src="{_data_uri(img.png)}" alt="{_e(img.title)}{f" ({_e(label)})" if label else ""}">'
            f"<figcaption>{_e(img.caption)}</figcaption></figure>")
