"""The terminal report: the paper's table for one input, with the settings and\neffect sizes a reader needs to judge it."""
from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from gaussaudit.report.sections import (
    Cell,
    Section,
    preparation_line,
    provenance_lines,
    report_sections,
    sampling_line,
)
from gaussaudit.report.table import PAPER_ROWS, format_number, norm_display_range, rule_legend, settings_summary

if TYPE_CHECKING:
    from gaussaudit.audit import AuditReport
    from gaussaudit.compare import Comparison, PairsTrack, Track

#: Eighth blocks: a bar of height h rows has 8h levels.
_BLOCKS = " ▁▂▃▄▅▆▇█"
#: Columns and rows of the inline histograms.
HIST_BINS, HIST_HEIGHT = 40, 3
P_BINS = 20


def render_terminal(report: AuditReport, console: Console | None = None) -> None:
    """Print ``report`` as the paper's table plus every section the scan computed
    (:func:`~gaussaudit.report.sections.report_sections`), to ``console``."""
    console = console or Console()
    names = report.paths if len(report.paths) <= 3 else report.paths[:2] + [f"… ({len(report.paths)} files)"]
    console.print(Text.assemble(("gaussaudit scan", "bold"), " · ", ", ".join(names)), highlight=False)
    console.print(f"  {sampling_line(report)}", highlight=False)
    _print_wrapped(console, preparation_line(report), indent="  ", style="")
    for line in provenance_lines(report):
        _print_wrapped(console, line, indent="  ", style="")
    console.print()
    console.print(paper_table(report))
    console.print()
    for section in report_sections(report):
        render_section(section, console)
        if section.key == "effect_sizes":
            render_inline_histograms(report, console)
            console.print()
    console.print(f"  [dim]{report.seconds:.2f} s[/dim]")


def _wrap(text: str, width: int) -> list[str]:
    # paths and names hold hyphens: break only at spaces
    return textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False)


def _print_wrapped(console: Console, text: str, indent: str, style: str = "dim", width: int = 78) -> None:
    lines = _wrap(text, width - len(indent)) or [""]
    for line in lines:
        console.print(Text(indent + line, style=style), highlight=False)


def _cell_text(cell: Cell, bold: bool = False) -> Text:
    style = "" if cell.ok is None else ("green" if cell.ok else "red")
    if cell.flag:
        style = "yellow"
    return Text(cell.text, style=("bold " + style).strip() if bold else style)


def render_section(section: Section, console: Console) -> None:
    """One section: bold title with its subtitle, its table, its conclusion, its notes."""
    subtitle = f" ({section.subtitle})" if section.subtitle else ""
    first, *rest = _wrap(section.title + subtitle, 76)
    console.print(Text.assemble("  ", (first[:len(section.title)], "bold"), first[len(section.title):]),
                  highlight=False)
    for line in rest:
        console.print("  " + line, highlight=False)
    if section.rows:
        # three spaces between columns: the widest section (projections) fits 80 columns
        table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 2), header_style="bold",
                      show_header=any(section.header))
        for i, name in enumerate(section.header):
            table.add_column(name, justify="left" if i == 0 else "right")
        for row in section.rows:
            table.add_row(*(_cell_text(c) for c in row))
        console.print(Padding(table, (0, 0, 0, 4), expand=False))
    if section.summary is not None:
        lines = _wrap(section.summary.text, 74)
        for line in lines:
            console.print(Text.assemble("  ", _cell_text(Cell(line, section.summary.ok), bold=True)),
                          highlight=False)
    for note in section.notes:
        lines = _wrap(note, 74)
        for i, line in enumerate(lines):
            console.print(Text(("  - " if i == 0 else "    ") + line, style="dim"), highlight=False)
    console.print()


def paper_table(report: AuditReport) -> Table:
    """The paper's Table 2 layout: unnormalised and normalised rows side by side,
    the paper's rule on the unnormalised column (its Table 1 protocol)."""
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, padding=(0, 2))
    table.add_column("Metric")
    table.add_column("unnormalised", justify="right")
    table.add_column("normalised", justify="right")
    table.add_column("Gaussian data", style="dim")
    cal = report.calibration
    for row in PAPER_ROWS:
        cells = []
        for column in ("unnormalised", "normalised"):
            ok = row.ok(report, column)
            style = "" if ok is None else ("green" if ok else "red")
            if row.label == "Gaussian?":
                style = "bold " + style + (" dim" if column == "normalised" else "")
            cells.append(Text(row.text(report, column), style=style))
        reference = row.reference
        if row.label == "CV" and cal is not None and cal.norm_cv is not None:
            reference = f"{format_number(cal.norm_cv.null_mean)} (this cov.)"
        table.add_row(Text(row.label, style="bold" if row.label == "Gaussian?" else ""), *cells, reference)
    return table


# ----------------------------------------------------------------------------
# inline histograms: a quick look without a browser


def histogram_rows(counts, height: int = HIST_HEIGHT, top: float | None = None) -> list[str]:
    """Bars ``height`` text rows tall drawn with eighth blocks, top row first.

    ``top`` is the count that fills a whole column (default the largest count);
    a bar with any count shows at least one eighth, so no data is invisible.

    Examples
    --------
    >>> histogram_rows([0, 1, 2, 4], height=1)
    [' ▂▄█']
    >>> histogram_rows([1, 8], height=2)
    [' █', '▂█']
    """
    counts = np.asarray(counts, dtype=np.float64)
    top = float(top if top is not None else counts.max()) or 1.0
    levels = np.minimum(np.round(counts / top * 8 * height), 8 * height).astype(int)
    levels[(counts > 0) & (levels == 0)] = 1
    rows = []
    for r in range(height):
        filled = np.clip(levels - (height - 1 - r) * 8, 0, 8)
        rows.append("".join(_BLOCKS[v] for v in filled))
    return rows


def render_inline_histograms(report: AuditReport, console: Console) -> None:
    """Histograms of raw row norms (a thin shell is one narrow peak) and of the
    per-feature D'Agostino-Pearson p-values (flat = uniform = what a Gaussian gives)."""
    hist = report.norm_histogram
    if hist is not None and hist.count:
        lo, hi = norm_display_range(hist)
        counts, _ = hist.rebinned(lo, hi, HIST_BINS)
        outside = hist.count - int(counts.sum())
        note = f"; {outside:,} outside the range shown" if outside else ""
        console.print(f"  row norms (raw, every row; CV {format_number(report.norm_cv)}{note}):")
        for row in histogram_rows(counts):
            console.print(Text("    " + row, style="cyan"))
        console.print(f"    {format_number(lo):<{HIST_BINS // 2}}{format_number(hi):>{HIST_BINS // 2}}")
    p = report.features.dp.pvalue
    p = p[np.isfinite(p)]
    if p.size:
        counts = np.histogram(p, bins=P_BINS, range=(0.0, 1.0))[0]
        uniform = p.size / P_BINS
        # Scale so a uniform spread fills half the height: flat and half-full
        # reads as Gaussian, a tall first column as features that fail.
        top = max(float(counts.max()), 2 * uniform)
        console.print(f"  DP p-values of the {p.size:,} features (flat at half height = uniform = Gaussian):")
        for r, row in enumerate(histogram_rows(counts, top=top)):
            console.print(Text("    " + "".join(ch * 2 for ch in row), style="magenta"))
        console.print(f"    {'0':<{P_BINS}}{'1':>{P_BINS}}  [dim]{int(counts[0]):,} below {1 / P_BINS:g}[/dim]")


# ----------------------------------------------------------------------------
# several reports: compare and track


def _paper_table(first_header: str, columns) -> Table:
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, padding=(0, 2))
    table.add_column(first_header)
    for label, _ in columns:
        table.add_column(label, justify="right", overflow="fold")
    for row in PAPER_ROWS:
        cells = []
        for _, report in columns:
            ok = row.ok(report)
            style = "" if ok is None else ("green" if ok else "red")
            if row.label == "Gaussian?":
                style = "bold " + style
            cells.append(Text(row.text(report), style=style))
        table.add_row(Text(row.label, style="bold" if row.label == "Gaussian?" else ""), *cells)
    return table


def render_terminal_compare(comparison: Comparison, console: Console | None = None, title: str | None = None) -> None:
    """The paper's table with one column per input; ``title`` replaces the
    heading ("gaussaudit compare · N inputs")."""
    console = console or Console()
    columns = [(c.label, c.report) for c in comparison.columns]
    if title is None:
        console.print(Text.assemble(("gaussaudit compare", "bold"), f" · {len(columns)} inputs"))
    else:
        console.print(Text(title, style="bold"))
    console.print(f"  {settings_summary(comparison.reports)}")
    console.print()
    console.print(_paper_table("Metric", columns))
    console.print()
    for label, report in columns:
        if not report.verdict.gaussian:
            console.print(f"  {label}: " + "; ".join(report.verdict.reasons), highlight=False)
    console.print("  [dim]compare at the same --sample: a larger n detects smaller departures.[/dim]")


def render_terminal_track(result: Track, console: Console | None = None) -> None:
    """One row per step: the paper's metrics along training."""
    console = console or Console()
    console.print(Text.assemble(("gaussaudit track", "bold"), f" · {len(result.points)} steps"))
    if result.points:
        console.print(f"  {settings_summary([p.report for p in result.points])}")
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, padding=(0, 2))
    table.add_column("Step", justify="right")
    for row in PAPER_ROWS:
        table.add_column(row.short, justify="right")
    for point in result.points:
        cells = []
        for row in PAPER_ROWS:
            ok = row.ok(point.report)
            cells.append(Text(row.text(point.report), style="" if ok is None else ("green" if ok else "red")))
        table.add_row(str(point.step), *cells)
    console.print()
    console.print(table)
    console.print()
    console.print(f"  [dim]{rule_legend()}[/dim]")
    if result.skipped:
        steps = ", ".join(str(s.step) for s in result.skipped)
        console.print(Text.assemble(("  skipped", "yellow"), f": step {steps} (could not be audited; why is on stderr)"))


def _fixed(x: float, digits: int = 4) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.{digits}f}"


#: What the columns of :func:`render_terminal_track_pairs` are.
TRACK_PAIRS_LEGEND = ("Align. = alignment E[u·v] of the positive pairs; Φ = uniformity E log E exp(u·v/τ) "
                      "(lower = more uniform), Φ unif. = its value for rows uniform on the sphere; ‖m̂‖² = the "
                      "squared norm of each side's mean direction; η² ≥ = the lower bound on the augmentation "
                      "mildness that alignment implies; Gap = the modality gap ‖mean(u) − mean(v)‖. Alignment "
                      "levelling off while Φ still falls is the paper's Assumption 1.")


def render_terminal_track_pairs(result: PairsTrack, console: Console | None = None) -> None:
    """One row per step: the paired-embedding measurements along training."""
    console = console or Console()
    console.print(Text.assemble(("gaussaudit track --pairs", "bold"), f" · {result.a} ↔ {result.b} · "
                                f"{len(result.points)} step{'s' if len(result.points) != 1 else ''}"), highlight=False)
    st = result.settings
    if st:
        sample = "every pair" if not st["sample"] else f"≤ {st['sample']:,} pairs a step"
        console.print(f"  τ = {st['temperature']:g} · {sample} (seed {st['seed']}) · Φ over ≤ "
                      f"{st['uniformity_sample']:,} of them", highlight=False)
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, padding=(0, 1))
    for name in ("Step", "Pairs", "Align.", "Φ", "Φ unif.", "‖m̂‖² A", "‖m̂‖² B", "η² ≥", "Gap"):
        table.add_column(name, justify="right")
    for point in result.points:
        r = point.report.result
        table.add_row(str(point.step), f"{r.n:,}", _fixed(r.alignment), _fixed(r.uniformity),
                      _fixed(r.uniformity_reference), f"{r.mean_norm_sq_a:.3g}", f"{r.mean_norm_sq_b:.3g}",
                      _fixed(r.eta2_lower), _fixed(r.modality_gap))
    console.print()
    console.print(table)
    console.print()
    _print_wrapped(console, TRACK_PAIRS_LEGEND, indent="  ")
    if result.skipped:
        steps = ", ".join(str(s.step) for s in result.skipped)
        console.print(Text.assemble(("  skipped", "yellow"), f": step {steps} (could not be measured; why is on stderr)"))
