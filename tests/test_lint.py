"""The code passes the project's lint (ruff, configured in pyproject.toml:
pyflakes, pycodestyle, import order), so an unused import or a shadowed name
fails CI like any other test."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_renderers_declare_what_they_render():
    """Every public renderer's first parameter has a type hint, and the hints
    name real classes (they are checked for type checkers only, so a typo would
    go unnoticed at run time)."""
    import importlib
    import inspect
    import typing

    from gaussaudit.audit import AuditReport
    from gaussaudit.compare import Comparison, PairsTrack, Track
    from gaussaudit.pairs import PairsReport
    from gaussaudit.reproduce.digits import DigitsResult
    from gaussaudit.reproduce.synthetic import SweepResult, SyntheticResult

    names = {"AuditReport": AuditReport, "Comparison": Comparison, "Track": Track, "PairsTrack": PairsTrack,
             "SyntheticResult": SyntheticResult,
             "SweepResult": SweepResult,
             "DigitsResult": DigitsResult, "PairsReport": PairsReport}
    modules = ["gaussaudit.report.json", "gaussaudit.report.terminal", "gaussaudit.report.markdown",
               "gaussaudit.report.html", "gaussaudit.report.sections", "gaussaudit.report.figures",
               "gaussaudit.reproduce.report", "gaussaudit.report.pairs"]
    checked = 0
    for module_name in modules:
        module = importlib.import_module(module_name)
        for name, fn in vars(module).items():
            if name.startswith("_") or not inspect.isfunction(fn) or fn.__module__ != module_name:
                continue
            first = next(iter(inspect.signature(fn).parameters), None)
            if first not in ("report", "reports", "columns", "comparison", "result"):
                continue
            hints = typing.get_type_hints(fn, localns=names)
            assert first in hints, f"{module_name}.{name}({first}) has no type hint"
            checked += 1
    assert checked >= 25
