"""Paired-embedding measurements in the terminal, as markdown and as an HTML page."""
from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from gaussaudit.pairs import PairsReport


def _rows(report: PairsReport):
    r = report.result
    yield "alignment E[u·v] (positive pairs)", f"{r.alignment:.4f} ± {r.alignment_std:.3f} (sd)"
    yield "mean negative-pair cosine", f"{float(r.negative_cosines.mean()):.4f}"
    yield "‖m̂‖² of A / of B (debiased)", (f"{r.mean_norm_sq_a:.3g} / {r.mean_norm_sq_b:.3g} "
                                          f"({r.mean_norm_sq_a_debiased:.3g} / {r.mean_norm_sq_b_debiased:.3g})")
    yield "η² lower bound (E[u·v] − m²)/(1 − m²)", f"{r.eta2_lower:.4f}"
    yield (f"uniformity Φ = E log E exp(u·v/τ), τ = {report.temperature:g}",
           f"{r.uniformity:.4f} (uniform on the sphere: {r.uniformity_reference:.4f})")
    yield f"uniformity log E exp(−{r.uniformity_t:g}‖u − u′‖²) (Wang & Isola)", f"{r.uniformity_gaussian:.4f}"
    yield "modality gap ‖mean(u) − mean(v)‖", f"{r.modality_gap:.4f}"


_NOTES = ("Prop. 1 of the paper: E[u·v] ≤ η² + (1 − η²)‖m‖², so alignment bounds the augmentation mildness η² "
          "(the squared maximal correlation between a view and its input) from below when both sides share one "
          "marginal (two views); for an image and its caption the two means differ and the value is a summary, "
          "not a bound.",
          "Φ near the uniform-sphere value: as uniform as normalised isotropic Gaussian rows; above it: the rows "
          "crowd together (a shared mean direction, few dominant axes); below it (two modalities): the sides point "
          "away from each other.")


def render_terminal_pairs(report: PairsReport, console: Console) -> None:
    r = report.result
    table = Table(title=escape(f"gaussaudit pairs · {report.a_label} ↔ {report.b_label}"), title_justify="left",
                  caption=f"{r.n:,} pairs of {report.n_total:,} · dim {r.dim} · uniformity over {r.samples:,} rows",
                  caption_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in _rows(report):
        table.add_row(escape(name), escape(value))
    console.print(table)
    for note in _NOTES:
        console.print(f"[dim]note: {escape(note)}[/dim]")


def render_markdown_pairs(report: PairsReport) -> str:
    r = report.result
    lines = [f"### gaussaudit pairs · `{report.a_label}` ↔ `{report.b_label}`", "",
             f"{r.n:,} pairs of {report.n_total:,}, dim {r.dim}.", "", "| measure | value |", "|---|---:|"]
    lines += [f"| {name.replace('|', '/')} | {value} |" for name, value in _rows(report)]
    lines += ["", *(f"- {n}" for n in _NOTES)]
    return "\n".join(lines) + "\n"


def pairs_section(report: PairsReport):
    """The measurements as a :class:`~gaussaudit.report.sections.Section`: the rows the
    terminal and the markdown show, with their notes (the HTML page draws it)."""
    from gaussaudit.report.sections import Cell, Section

    r = report.result
    return Section("pairs", "Paired-embedding measurements",
                   f"{r.n:,} pairs of {report.n_total:,} · dim {r.dim} · uniformity over {r.samples:,} rows",
                   ("Measure", "Value"), tuple((Cell(name), Cell(value)) for name, value in _rows(report)),
                   notes=_NOTES)


def render_html_pairs(report: PairsReport, images=None) -> str:
    """``gaussaudit pairs --html``: one self-contained page, the measurements then the
    cosine figure (drawn here when ``images`` is None; needs matplotlib)."""
    from gaussaudit.report.html import render_page

    if images is None:
        from gaussaudit.report.figures import pairs_figures

        images = pairs_figures(report)
    return render_page(f"gaussaudit pairs · {report.a_label} ↔ {report.b_label}",
                       "The theory of InfoNCE Induces Gaussian Distribution (Betser, Gofer, Levi, Gilboa — ICLR 2026) "
                       "measured on paired embeddings: row i of A with row i of B.",
                       [pairs_section(report)], images, label=f"{report.a_label} ↔ {report.b_label}")
