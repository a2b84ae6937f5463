"""The terminal report of ``gaussaudit reproduce synthetic``: it lives beside the
experiment, so the report package depends on audit results only."""
from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from gaussaudit.report.table import format_number, rule_legend
from gaussaudit.report.terminal import _paper_table, _wrap
from gaussaudit.reproduce.synthetic import EPOCHS, TRAIN_ROWS
from gaussaudit.stats.summaries import RULE_SUMMARIES

if TYPE_CHECKING:
    from gaussaudit.reproduce.digits import DigitsResult
    from gaussaudit.reproduce.synthetic import SweepResult, SyntheticResult


def _measured_vs_paper(result: SyntheticResult) -> Table:
    """The paper's Table 1 (synthetic part) as measured, the paper's value under each number."""
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, padding=(0, 2),
                  title="Table 1, measured here (paper's value below, unnormalised rows)", title_justify="left",
                  title_style="bold")
    table.add_column("Metric")
    columns = result.paper_columns()
    for label, _, _ in columns:
        table.add_column(label, justify="right")
    rows = (("CV", lambda r: r.norm_cv, "cv", None),
            ("AD Avg.", lambda c: c.ad_mean, "ad_mean", None),
            ("AD Norm. Feat.", lambda c: c.ad_pass_fraction, "ad_pass", "%"),
            ("DP Avg.", lambda c: c.dp_mean_p, "dp_mean_p", None),
            ("DP Norm. Feat.", lambda c: c.dp_pass_fraction, "dp_pass", "%"))
    for name, get, key, unit in rows:
        cells = []
        for _, run, paper in columns:
            column = run.report.paper_columns["unnormalised"]
            value = get(run.report if key == "cv" else column)
            text = f"{100 * value:.1f}%" if unit else format_number(value)
            ref = f"{100 * paper[key]:.0f}%" if unit else f"{paper[key]:.2f}"
            cells.append(Text.assemble(text, ("\n" + ref, "dim")))
        table.add_row(name, *cells)
    cells = []
    for _, run, paper in columns:
        ok = run.report.paper_columns["unnormalised"].verdict.gaussian
        cells.append(Text.assemble(("✓" if ok else "✗", "bold green" if ok else "bold red"),
                                   ("\n" + ("✓" if paper["gaussian"] else "✗"), "dim")))
    table.add_row(Text("Gaussian?", style="bold"), *cells)
    return table


def render_terminal_reproduce(result: SyntheticResult, console: Console | None = None) -> None:
    """The paper-style tables of ``gaussaudit reproduce synthetic``: Table 1 as
    measured with the paper's values under it, then per input one column per
    stage (raw input, init, trained InfoNCE, supervised), then AD/DP averages
    along training."""
    console = console or Console()
    s = result.settings
    console.print(Text.assemble(("gaussaudit reproduce synthetic", "bold"),
                                f" · {s.encoder} encoder {s.dim_in} → {s.dim_out} · seed {s.seed}"))
    first = result.runs[0].report
    epochs = " / ".join(f"{kind} {s.epochs_for(kind)}" for kind in s.inputs)
    rows = " / ".join(f"{s.n_for(kind):,}" for kind in s.inputs)
    console.print(f"  InfoNCE τ = {s.tau} · epochs {epochs} · {rows} training rows · batch {s.batch} · Adam {s.lr}")
    console.print(f"  audits: {first.n_used:,} held-out rows each; tables of the unnormalised rows (the paper's "
                  f"Table 1) · {result.seconds:.0f} s")
    console.print()
    console.print(_measured_vs_paper(result))
    stages = (("input", "raw input"), ("init", "init (E0)"), ("trained", None), ("supervised", "supervised"))
    for kind in s.inputs:
        columns = [(label or f"InfoNCE E{s.epochs_for(kind)}", result.run(kind, stage).report)
                   for stage, label in stages]
        console.print()
        console.print(_paper_table(kind, columns))
    console.print()
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, padding=(0, 2),
                  title="AD Avg. / DP Avg. along InfoNCE training (unnormalised)", title_justify="left", title_style="bold")
    table.add_column("Epoch", justify="right")
    for kind in s.inputs:
        table.add_column(f"{kind}\nAD Avg.", justify="right")
        table.add_column(f"{kind}\nDP Avg.", justify="right")
    audited = sorted({r.epoch for kind in s.inputs for r in result.along_training(kind)})
    for epoch in audited:
        cells = []
        for kind in s.inputs:
            found = [r for r in result.along_training(kind) if r.epoch == epoch]
            if not found:
                cells += ["", ""]
                continue
            rep = found[0].report.paper_columns["unnormalised"]
            for summary in RULE_SUMMARIES:
                value = rep.metrics[summary.key]
                cells.append(Text(format_number(value), style="green" if summary.passes(value) else "red"))
        table.add_row(str(epoch), *cells)
    console.print(table)
    console.print()
    console.print(f"  [dim]{rule_legend()}[/dim]")
    passing = [kind for kind in s.inputs if result.run(kind, "supervised").report.verdict.gaussian]
    notes = []
    if "laplace" in passing and s.encoder == "linear":
        init_passes = result.run("laplace", "init").report.verdict.gaussian
        notes.append("the supervised baseline passes for laplace: a linear encoder's outputs are weighted sums of "
                     "the input's independent coordinates, close to Gaussian by the central limit theorem whatever "
                     f"the training{' (init passes too)' if init_passes else ''}, so this input cannot show the "
                     "paper's contrast.")
    others = [kind for kind in passing if not (kind == "laplace" and s.encoder == "linear")]
    short = any(s.n_for(kind) < TRAIN_ROWS[kind] or s.epochs_for(kind) < EPOCHS[kind] for kind in s.inputs)
    if others:
        notes.append(f"the supervised baseline passes for {', '.join(others)}"
                     + (" in this short run; --quick checks the pipeline." if short else "."))
    for note in notes:
        for i, line in enumerate(_wrap(note, 70)):
            console.print(("  [yellow]note:[/yellow] " if i == 0 else "        ") + line, highlight=False)


def render_terminal_sweep(result: SweepResult, console: Console | None = None) -> None:
    """One row per (dimension, batch size) of ``reproduce synthetic --dims/--batch-sizes``."""
    console = console or Console()
    s = result.settings
    console.print(Text.assemble(("gaussaudit reproduce synthetic", "bold"),
                                f" · Laplace sweep · {s.encoder} encoder {s.dim_in} → d · seed {s.seed}"))
    console.print(f"  InfoNCE τ = {s.tau} · {s.epochs_for('laplace')} epochs · {s.n_for('laplace'):,} training rows "
                  f"· measured on {s.n_audit:,} held-out positive pairs · {result.seconds:.0f} s")
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, padding=(0, 2))
    for name in ("d", "batch", "CV", "AD Avg.", "DP Avg.", "E[u·v]", "Φ", "Φ unif.", "η² ≥"):
        table.add_column(Text(name), justify="right")
    for p in result.points:
        table.add_row(str(p.dim), str(p.batch), format_number(p.cv), format_number(p.ad_mean),
                      format_number(p.dp_mean_p), f"{p.alignment:.3f}", f"{p.uniformity:.3f}",
                      f"{p.uniformity_reference:.3f}", format_number(p.eta2_lower))
    console.print()
    console.print(table)
    console.print()
    console.print(Text("  CV of the unnormalised norms; AD/DP averages of the unnormalised features; alignment "
                       "E[u·v] and uniformity Φ = E log E exp(u·v/τ) of the normalised held-out pairs (Φ unif.: "
                       "its value for uniform rows on the sphere at this d); η² ≥ the alignment bound's lower bound "
                       "on augmentation mildness.", style="dim"))


def render_terminal_digits(result: DigitsResult, console: Console | None = None) -> None:
    """``gaussaudit reproduce digits``: the paper-style table (raw pixels, init,
    InfoNCE, cross-entropy) and CV / AD Avg. / DP share along training of both."""
    console = console or Console()
    s = result.settings
    console.print(Text.assemble(("gaussaudit reproduce digits", "bold"),
                                f" · MLP 64 → {s.hidden} → ReLU → {s.dim_out} · seed {s.seed}"))
    console.print(f"  scikit-learn digits: {result.n_train:,} training, {result.n_test:,} held-out images (8×8) · "
                  f"{s.epochs} epochs · batch {s.batch} · Adam {s.lr} · InfoNCE τ = {s.tau}")
    console.print(f"  cross-entropy test accuracy {result.test_accuracy:.1%} · audits of the held-out embeddings, "
                  f"unnormalised (the paper's Table 1) · {result.seconds:.0f} s")
    columns = [("pixels", result.run("pixels", "input").report), ("init", result.run("contrastive", "init").report),
               (f"InfoNCE E{s.epochs}", result.run("contrastive", "trained").report),
               (f"CE E{s.epochs}", result.run("supervised", "trained").report)]
    console.print()
    console.print(_paper_table("digits", columns))
    console.print()
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, padding=(0, 2),
                  title="along training (held-out split)", title_justify="left", title_style="bold")
    table.add_column("Epoch", justify="right")
    for model in ("InfoNCE", "CE"):
        for metric in ("CV", "AD Avg.", "DP Norm."):
            table.add_column(f"{model}\n{metric}", justify="right")
    along = {model: {r.epoch: r.report for r in result.along_training(model)} for model in ("contrastive", "supervised")}
    for epoch in sorted(along["contrastive"]):
        cells = []
        for model in ("contrastive", "supervised"):
            rep = along[model].get(epoch)
            if rep is None:
                cells += ["", "", ""]
                continue
            column = rep.paper_columns["unnormalised"]
            cells += [format_number(rep.norm_cv), format_number(column.ad_mean), f"{100 * column.dp_pass_fraction:.0f}%"]
        table.add_row(str(epoch), *cells)
    console.print(table)
    console.print()
    console.print(f"  [dim]{rule_legend()} CE: cross-entropy on the labels.[/dim]")
