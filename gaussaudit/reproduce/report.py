"""The terminal report of ``gaussaudit reproduce synthetic``: it lives beside the
experiment, so the report package depends on audit results only."""
from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from gaussaudit.report.table import format_number, rule_legend
from gaussaudit.report.terminal import _paper_table, _wrap
from gaussaudit.reproduce.synthetic import PAPER_TABLE, SyntheticSettings
from gaussaudit.stats.summaries import RULE_SUMMARIES

if TYPE_CHECKING:
    from gaussaudit.reproduce.digits import DigitsResult
    from gaussaudit.reproduce.synthetic import SyntheticResult


def render_terminal_reproduce(result: SyntheticResult, console: Console | None = None) -> None:
    """The paper-style table of ``gaussaudit reproduce synthetic``: per input,
    one column per stage (raw input, init, trained InfoNCE, supervised), then
    AD/DP averages along training and the paper's numbers for comparison."""
    console = console or Console()
    s = result.settings
    console.print(Text.assemble(("gaussaudit reproduce synthetic", "bold"),
                                f" · {s.encoder} encoder {s.dim_in} → {s.dim_out} · seed {s.seed}"))
    first = result.runs[0].report
    console.print(f"  InfoNCE τ = {s.tau} · {s.epochs} epochs · {s.n:,} training rows · batch {s.batch} · Adam {s.lr}")
    console.print(f"  audits: {first.n_used:,} held-out rows each; tables of the unnormalised rows (the paper's "
                  f"Table 1), curves of the L2-normalised ones · {result.seconds:.0f} s")
    stages = (("input", "raw input"), ("init", "init (E0)"), ("trained", f"InfoNCE E{s.epochs}"),
              ("supervised", "supervised"))
    for kind in s.inputs:
        columns = [(label, result.run(kind, stage).report) for stage, label in stages]
        console.print()
        console.print(_paper_table(kind, columns))
    console.print()
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, padding=(0, 2),
                  title="AD Avg. / DP Avg. along InfoNCE training", title_justify="left", title_style="bold")
    table.add_column("Epoch", justify="right")
    for kind in s.inputs:
        table.add_column(f"{kind}\nAD Avg.", justify="right")
        table.add_column(f"{kind}\nDP Avg.", justify="right")
    epochs = sorted({r.epoch for kind in s.inputs for r in result.along_training(kind)})
    for epoch in epochs:
        cells = []
        for kind in s.inputs:
            rows = [r for r in result.along_training(kind) if r.epoch == epoch]
            if not rows:
                cells += ["", ""]
                continue
            rep = rows[0].report
            for summary in RULE_SUMMARIES:
                value = rep.metrics[summary.key]
                cells.append(Text(format_number(value), style="green" if summary.passes(value) else "red"))
        table.add_row(str(epoch), *cells)
    console.print(table)
    console.print()
    console.print(f"  [dim]{rule_legend()}[/dim]")
    passing = [kind for kind in s.inputs if result.run(kind, "supervised").report.verdict.gaussian]
    full = SyntheticSettings()
    if passing and (s.n < full.n or s.epochs < full.epochs):
        note = (f"the supervised baseline passes for {', '.join(passing)} in this short run ({s.n:,} rows, "
                f"{s.epochs} epochs): it does not show the paper's contrast; the full run ({full.n:,} rows, "
                f"{full.epochs} epochs, docs/reproduce.md) does. --quick checks the pipeline.")
        for i, line in enumerate(_wrap(note, 70)):
            console.print(("  [yellow]note:[/yellow] " if i == 0 else "        ") + line, highlight=False)
    console.print("  [dim]paper (poster table, synthetic, linear encoder; docs/reproduce.md):[/dim]")
    for name, v in PAPER_TABLE.items():
        if name in ("Laplace", "GMM", "Binary"):
            console.print(f"  [dim]  {name:8s} CV {v['cv']:.2f} · AD {v['ad_mean']:.2f} · DP {v['dp_mean_p']:.2f} · "
                          f"{'✓' if v['gaussian'] else '✗'}[/dim]")


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
