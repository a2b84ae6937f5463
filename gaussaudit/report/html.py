"""One self-contained HTML file: the paper's table, the verdicts and every figure
inline as a base64 ``data:`` URI. Nothing is fetched from the network, so the
file opens offline, attaches to a CI run as one artefact, and prints."""
from __future__ import annotations

import base64
import html
from datetime import datetime, timezone

from gaussaudit.report.table import PAPER_ROWS, format_monte_carlo_p, format_number, settings_summary

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
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 18px 24px; margin-top: 12px; }
figure { margin: 0; break-inside: avoid; page-break-inside: avoid; }
figure.wide { grid-column: 1 / -1; }
figure img { width: 100%; height: auto; border: 1px solid var(--rule); display: block; }
figcaption { font-size: 13px; color: var(--muted); margin-top: 4px; }
footer { margin-top: 40px; font-size: 12px; color: var(--muted); }
@media (max-width: 800px) { .grid { grid-template-columns: 1fr; } }
@media print {
  body { padding: 0; max-width: none; font-size: 11pt; }
  h2 { break-before: page; page-break-before: always; }
  h2.first { break-before: auto; page-break-before: auto; }
  .grid { display: block; }
  figure { margin: 0 0 14pt; }
  figure img { max-width: 100%; max-height: 9.5in; }
}
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _table(columns) -> str:
    head = "".join(f"<th>{_e(label)}</th>" for label, _ in columns)
    rows = []
    for row in PAPER_ROWS:
        cells = []
        for _, report in columns:
            ok = row.ok(report)
            cls = "" if ok is None else f' class="{"pass" if ok else "fail"}"'
            cells.append(f"<td{cls}>{_e(row.text(report))}</td>")
        cls = ' class="verdict"' if row.label == "Gaussian?" else ""
        rows.append(f"<tr{cls}><td>{_e(row.label)}</td>{''.join(cells)}</tr>")
    return (f'<table class="paper"><thead><tr><th>Metric</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


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
        f'<p>paper rule (unnormalised rows; a heuristic, not a test): {paper}</p>'
        f'<ul class="reasons">{reasons}</ul>'
    )


def _figures(label: str, images, first: bool) -> str:
    parts = [f'<h2 class="{"first" if first else ""}">Figures: {_e(label)}</h2>', '<div class="grid">']
    for img in images:
        wide = ' class="wide"' if img.name.startswith("qq") else ""  # three panels side by side
        parts.append(
            f'<figure{wide}><h3>{_e(img.title)}</h3>'
            f'<img src="{_data_uri(img.png)}" alt="{_e(img.title)} ({_e(label)})">'
            f"<figcaption>{_e(img.caption)}</figcaption></figure>"
        )
    parts.append("</div>")
    return "".join(parts)


def render_html(columns, title: str = "gaussaudit report", images=None) -> str:
    """The whole page for ``columns`` (``(label, AuditReport)`` pairs): table,
    verdicts, then each input's figures.

    ``images``: each column's ``report_figures`` if already drawn; else they are
    drawn here (needs matplotlib).
    """
    from gaussaudit import __version__

    columns = list(columns)
    reports = [r for _, r in columns]
    if images is None:
        from gaussaudit.report.figures import report_figures

        null_cache: dict = {}
        images = [report_figures(report, null_cache) for report in reports]
    figure_sections = [
        _figures(label, column_images, first=(i == 0))
        for i, ((label, _), column_images) in enumerate(zip(columns, images))
    ]
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
<p class="muted">Gaussianity audit as in <em>InfoNCE Induces Gaussian Distribution</em> (Betser, Gofer, Levi,
Gilboa — ICLR 2026) · {_e(settings_summary(reports))}</p>
</header>
<main>
{_table(columns)}
<p class="muted">AD: Anderson–Darling (mean A² &lt; 0.752), DP: D'Agostino–Pearson (mean p &gt; 0.05); Norm. Feat.:
share of features that pass at 5 % (≈ 95 % for a true Gaussian). CV: std/mean of raw row norms. A pass means no
departure detectable at this n, not proof; compare inputs at the same sample size.</p>
{''.join(_details(label, r) for label, r in columns)}
{''.join(figure_sections)}
</main>
<footer>gaussaudit {_e(__version__)} · {stamp}</footer>
</body>
</html>
"""
