"""A gate's result for people and for CI systems: the terminal table, a
markdown step summary, JUnit XML (one testcase per check: GitHub, GitLab and
Jenkins show them as test results), GitHub Actions annotations, and a drift
report in the terminal and markdown."""
from __future__ import annotations

import math
import socket
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from gaussaudit.gate.drift import DriftReport
    from gaussaudit.gate.release import Check, GateResult

_MARK = {True: "✓", False: "✗"}


def _value(x, kind: str = "number") -> str:
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    if not math.isfinite(x):
        return "n/a"
    if kind == "percent":
        return f"{x:.1%}"
    return f"{x:.4g}"


def _delta(x) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:+.4g}"


def _kind(check: Check) -> str:
    from gaussaudit.gate.metrics import GATE_METRICS

    metric = GATE_METRICS.get(check.metric or "")
    return metric.kind if metric else "number"


def _mark(check: Check) -> str:
    return "!" if check.warning else _MARK[check.passed]


def _rows(result: GateResult):
    for c in result.checks:
        kind = _kind(c)
        yield c, _value(c.baseline, kind), _value(c.candidate, kind), _delta(c.delta), c.limit


def _outcome(result: GateResult) -> str:
    failed = len(result.failed)
    if result.passed:
        return f"gate passed: {len(result.checks)} of {len(result.checks)} checks"
    return f"gate FAILED: {failed} of {len(result.checks)} checks failed"


def render_terminal_gate(result: GateResult, console: Console) -> None:
    """The checks as a table, each failed check's sentence, the notes."""
    title = f"gaussaudit gate · {result.candidate_label}"
    if result.baseline_label:
        title += f" vs baseline {result.baseline_label}"
    table = Table(title=escape(title), title_justify="left")
    for header, justify in (("check", "left"), ("baseline", "right"), ("candidate", "right"), ("delta", "right"),
                            ("limit", "left"), ("", "center")):
        table.add_column(header, justify=justify)
    for c, base, cand, delta, limit in _rows(result):
        style = "yellow" if c.warning else "green" if c.passed else "bold red"
        table.add_row(escape(c.name), base, cand, delta, escape(limit), f"[{style}]{_mark(c)}[/{style}]")
    console.print(table)
    for c in result.checks:
        if not c.passed or c.warning:
            console.print(f"[bold red]✗ {escape(c.name)}[/bold red]: {escape(c.message)}" if not c.passed
                          else f"[yellow]! {escape(c.name)}[/yellow]: {escape(c.message)}")
    for note in result.notes:
        console.print(f"[dim]note: {escape(note)}[/dim]")
    policy = result.policy.source or "none found (defaults: gate on the headline test)"
    console.print(f"policy: {escape(policy)}")
    style = "bold green" if result.passed else "bold red"
    console.print(f"[{style}]{_outcome(result)}[/{style}]")


def _cell(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render_markdown_gate(result: GateResult) -> str:
    """GitHub-flavoured markdown: for ``$GITHUB_STEP_SUMMARY`` or a pull-request comment."""
    title = f"gaussaudit gate · `{result.candidate_label}`"
    if result.baseline_label:
        title += f" vs `{result.baseline_label}`"
    lines = [f"### {_cell(title)}", "", f"**{_outcome(result)}**", "",
             "| check | baseline | candidate | delta | limit | |", "|---|---:|---:|---:|---|:-:|"]
    for c, base, cand, delta, limit in _rows(result):
        lines.append(f"| {_cell(c.name)} | {base} | {cand} | {delta} | {_cell(limit)} | {_mark(c)} |")
    details = [c for c in result.checks if not c.passed or c.warning]
    if details:
        lines += ["", *(f"- **{_cell(c.name)}**: {_cell(c.message)}" for c in details)]
    if result.notes:
        lines += ["", *(f"- {_cell(n)}" for n in result.notes)]
    lines += ["", f"Policy: {_cell(result.policy.source or 'none found (defaults)')}"]
    return "\n".join(lines) + "\n"


def render_junit(result: GateResult, timestamp: datetime | None = None) -> str:
    """JUnit XML: a ``<testsuites>`` with one ``<testsuite>`` and one
    ``<testcase>`` per check, a failed check a ``<failure>``."""
    when = (timestamp or datetime.now(timezone.utc)).replace(microsecond=0, tzinfo=None).isoformat()
    failures = str(len(result.failed))
    tests = str(len(result.checks))
    root = ET.Element("testsuites", name="gaussaudit gate", tests=tests, failures=failures, errors="0", time="0")
    suite = ET.SubElement(root, "testsuite", name=f"gaussaudit gate: {result.candidate_label}", tests=tests,
                          failures=failures, errors="0", skipped="0", time="0", timestamp=when,
                          hostname=socket.gethostname() or "localhost")
    properties = ET.SubElement(suite, "properties")
    for name, value in (("candidate", result.candidate_label), ("baseline", result.baseline_label or ""),
                        ("policy", result.policy.source or ""), ("passed", str(result.passed).lower())):
        ET.SubElement(properties, "property", name=name, value=value)
    for c, base, cand, delta, limit in _rows(result):
        case = ET.SubElement(suite, "testcase", classname=f"gaussaudit.gate.{c.kind}", name=c.name, time="0")
        text = f"baseline {base}, candidate {cand}, delta {delta}, limit {limit}\n{c.message}"
        if not c.passed:
            failure = ET.SubElement(case, "failure", message=c.message, type=c.kind)
            failure.text = text
        else:
            ET.SubElement(case, "system-out").text = text
    out = ET.SubElement(suite, "system-out")
    out.text = "\n".join(result.notes)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _escape_annotation(text: str) -> str:
    """GitHub's workflow-command escaping of a message."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_annotation(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(result: GateResult) -> str:
    """``::error`` lines for failed checks (``::warning`` for comparability
    warnings), which GitHub Actions shows on the run and the pull request."""
    lines = []
    for c in result.checks:
        if not c.passed or c.warning:
            level = "error" if not c.passed else "warning"
            lines.append(f"::{level} title={_escape_property('gaussaudit gate: ' + c.name)}::"
                         f"{_escape_annotation(c.message)}")
    return "".join(line + "\n" for line in lines)


def _drift_rows(report: DriftReport):
    r = report.result
    yield "Fréchet distance (W2² of the fitted Gaussians)", f"{r.frechet:.4g}"
    yield f"  null {1 - r.alpha:.0%} quantile ({r.permutations} permutations)", f"{r.frechet_null_quantile:.4g}"
    yield "  permutation p-value", f"{r.frechet_p:.3g}"
    yield "KL(reference ‖ current) / KL(current ‖ reference)", f"{_value(r.kl_forward)} / {_value(r.kl_backward)}"
    forward, backward = report.kl_null
    yield "  KL expected with no drift (estimation error)", f"{_value(forward)} / {_value(backward)}"
    if r.mean_shift is not None:
        h = r.mean_shift
        yield ("mean shift: Hotelling T² (F, p)",
               f"{h.statistic:.4g} (F({h.df1}, {h.df2}) = {h.f_statistic:.4g}, p = {h.p_value:.3g})")
    for name, s in (("reference", r.reference_spectrum), ("current", r.current_spectrum)):
        yield (f"spectrum, {name}: participation ratio / entropy rank / top share",
               f"{s.participation_ratio:.4g} / {s.entropy_rank:.4g} / {_value(s.top_share, 'percent')}")
    for name, t in (("reference", report.reference_test), ("current", report.current_test)):
        said = ("not run" if t is None else
                ("Gaussian" if t.get("gaussian") else "not Gaussian") + f" (p = {t.get('p_value'):.3g})")
        yield f"headline Gaussianity test, {name}", said


def _drift_outcome(report: DriftReport) -> str:
    r = report.result
    if report.drifted:
        return f"DRIFT: the current rows differ from the reference (p = {r.frechet_p:.3g} ≤ alpha = {r.alpha:g})"
    return f"no drift detected (p = {r.frechet_p:.3g} > alpha = {r.alpha:g})"


def render_terminal_drift(report: DriftReport, console: Console) -> None:
    r = report.result
    rows = "normalised" if report.normalized else "unnormalised"
    table = Table(title=escape(f"gaussaudit drift · {report.reference_label} → {report.current_label}"),
                  title_justify="left", caption=f"{r.n_reference} reference rows, {r.n_current} current rows, d = "
                  f"{r.dim}, {rows}", caption_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in _drift_rows(report):
        table.add_row(escape(name), escape(value))
    console.print(table)
    for note in report.notes:
        console.print(f"[dim]note: {escape(note)}[/dim]")
    style = "bold red" if report.drifted else "bold green"
    console.print(f"[{style}]{escape(_drift_outcome(report))}[/{style}]")


def render_markdown_drift(report: DriftReport) -> str:
    r = report.result
    lines = [f"### gaussaudit drift · `{_cell(report.reference_label)}` → `{_cell(report.current_label)}`", "",
             f"**{_cell(_drift_outcome(report))}**", "",
             f"{r.n_reference} reference rows, {r.n_current} current rows, d = {r.dim}.", "",
             "| measure | value |", "|---|---:|"]
    lines += [f"| {_cell(name.strip())} | {_cell(value)} |" for name, value in _drift_rows(report)]
    lines += ["", *(f"- {_cell(n)}" for n in report.notes)]
    return "\n".join(lines) + "\n"
