"""The release-gate policy: what gates, which limits, which scan options.

A policy lives in ``gaussaudit.toml`` or in the ``[tool.gaussaudit]`` tables of
``pyproject.toml``, found from the working directory upward (the first file
that has one), or is named with ``--policy PATH``::

    [gate]
    verdict = "test"          # "test": the headline level-α test; "paper": the paper's rule; "none"
    comparable = "fail"       # baseline and candidate scanned differently: "fail" or "warn"

    [scan]                    # options of the scans the gate runs (AuditConfig's names)
    sample = 10000

    [thresholds]              # absolute limits on the candidate
    "ad.mean" = "< 0.6"
    "dp.pass_fraction" = ">= 0.9"
    norm_cv = "<= 0.15"

    [tolerances]              # how much worse than the baseline a metric may get
    "ad.mean" = 0.1           # absolute, in the metric's units (shares as fractions: 0.05 = 5 points)
    norm_cv = "10%"           # relative to the baseline's value

    [drift]                   # same model, new data: test that the distribution has not moved
    enabled = true
    alpha = 0.01

Metric names are those of :data:`gaussaudit.gate.metrics.GATE_METRICS`, as
the JSON report nests them under ``metrics`` (``ad.mean`` is
``metrics.ad.mean``). Every problem is a GaussAuditError naming the file, the
line and the key.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from gaussaudit.config import AuditConfig, configured
from gaussaudit.errors import GaussAuditError
from gaussaudit.gate.metrics import GATE_METRICS, GateMetric, metric_names
from gaussaudit.io.documents import read_toml

POLICY_FILE = "gaussaudit.toml"
#: What the gate's verdict check asks: the headline test, the paper's rule, or nothing.
VERDICTS = ("test", "paper", "none")
COMPARABLE = ("fail", "warn")
COMPARISONS = ("<=", ">=", "<", ">")
_TABLES = ("gate", "scan", "thresholds", "tolerances", "drift")


@dataclass(frozen=True)
class Threshold:
    """An absolute limit: the candidate's ``metric`` must be ``comparison`` ``value``."""

    metric: GateMetric
    comparison: str
    value: float

    def passes(self, x: float | None) -> bool:
        if x is None or not math.isfinite(x):
            return False
        return {"<": x < self.value, "<=": x <= self.value, ">": x > self.value, ">=": x >= self.value}[self.comparison]

    @property
    def limit(self) -> str:
        return f"{self.comparison} {self.value:g}"


@dataclass(frozen=True)
class Tolerance:
    """How far the candidate's ``metric`` may move from the baseline's in the
    worse direction (either direction when the metric has none): ``amount``,
    absolute or, when ``relative``, a fraction of the baseline's magnitude."""

    metric: GateMetric
    amount: float
    relative: bool

    def allowed(self, baseline: float) -> float:
        return self.amount * abs(baseline) if self.relative else self.amount

    def worsening(self, baseline: float, candidate: float) -> float:
        """How much worse the candidate is (negative: better); |change| when no direction is worse."""
        if self.metric.better == "lower":
            return candidate - baseline
        if self.metric.better == "higher":
            return baseline - candidate
        return abs(candidate - baseline)

    def passes(self, baseline: float | None, candidate: float | None) -> bool:
        if baseline is None or candidate is None or not (math.isfinite(baseline) and math.isfinite(candidate)):
            return False
        # a hair of slack: a candidate identical to the baseline passes a zero tolerance despite round-off
        return self.worsening(baseline, candidate) <= self.allowed(baseline) + 1e-12 * max(1.0, abs(baseline))

    def limit(self, baseline: float | None) -> str:
        amount = f"{self.amount * 100:g}%" if self.relative else f"{self.amount:g}"
        if baseline is None:
            return f"within {amount} of the baseline"
        allowed = self.allowed(baseline)
        if self.metric.better == "lower":
            return f"<= {baseline + allowed:.4g} (baseline + {amount})"
        if self.metric.better == "higher":
            return f">= {baseline - allowed:.4g} (baseline − {amount})"
        return f"{baseline - allowed:.4g} … {baseline + allowed:.4g} (baseline ± {amount})"


@dataclass(frozen=True)
class DriftPolicy:
    """The drift test between baseline and candidate embeddings (same model, new data)."""

    enabled: bool = False
    alpha: float = 0.05
    permutations: int = 99
    #: rows of each set the test uses (a seeded uniform sample); 0 = every row
    sample: int = 5000
    #: compare L2-normalised rows (directions) instead of the rows as the model gives them
    normalize: bool = False


@dataclass(frozen=True)
class Policy:
    """A release-gate policy (the defaults: gate on the headline test, nothing else)."""

    source: str | None = None
    verdict: str = "test"
    comparable: str = "fail"
    scan: dict = field(default_factory=dict)
    thresholds: tuple[Threshold, ...] = ()
    tolerances: tuple[Tolerance, ...] = ()
    drift: DriftPolicy = DriftPolicy()

    def audit_config(self, base: AuditConfig | None = None) -> AuditConfig:
        """The scan options: ``base`` (a baseline's settings) with the policy's ``[scan]`` on top."""
        return configured(base, AuditConfig, dict(self.scan), "scan")


def find_policy(start: str | Path | None = None) -> Path | None:
    """The policy file that applies in ``start`` (default: the working
    directory): the nearest ``gaussaudit.toml``, or ``pyproject.toml`` with a
    ``[tool.gaussaudit]`` table, looking upward; None when there is none."""
    folder = Path(start or Path.cwd()).resolve()
    for parent in (folder, *folder.parents):
        own = parent / POLICY_FILE
        if own.is_file():
            return own
        pyproject = parent / "pyproject.toml"
        if pyproject.is_file() and _has_tool_table(pyproject):
            return pyproject
    return None


def _has_tool_table(pyproject: Path) -> bool:
    try:
        data, _ = read_toml(pyproject, "pyproject.toml")
    except GaussAuditError:
        return False  # a broken pyproject.toml of another tool is not our policy
    return isinstance(data.get("tool"), dict) and "gaussaudit" in data["tool"]


def load_policy(path: str | Path | None = None, *, search_from: str | Path | None = None) -> Policy:
    """The policy at ``path``; without one, the policy found by :func:`find_policy`,
    or the defaults when there is none.

    Examples
    --------
    >>> load_policy(search_from="/").verdict
    'test'
    """
    if path is None:
        path = find_policy(search_from)
        if path is None:
            return Policy()
    data, text = read_toml(path)
    prefix: tuple[str, ...] = ()
    if Path(path).name == "pyproject.toml":
        prefix = ("tool", "gaussaudit")
        data = data.get("tool", {}).get("gaussaudit")
        if not isinstance(data, dict):
            raise GaussAuditError(f"{path}: has no [tool.gaussaudit] table; put the policy there or in {POLICY_FILE}.")
    return parse_policy(data, text, str(path), prefix)


def parse_policy(data: dict, text: str = "", source: str = POLICY_FILE, prefix: tuple[str, ...] = ()) -> Policy:
    """A :class:`Policy` from parsed TOML ``data`` (``text`` locates errors)."""
    where = _Locator(text, source, prefix)
    for name in data:
        if name not in _TABLES:
            raise where.error(None, name, f"unknown table or key {name!r}; a policy has {', '.join(_TABLES)}")
        if not isinstance(data[name], dict):
            raise where.error(None, name, f"must be a table ([{where.table(name)}]), not {_kind(data[name])}")
    gate = dict(data.get("gate", {}))
    for key in gate:
        if key not in ("verdict", "comparable"):
            raise where.error("gate", key, "unknown key; [gate] has verdict and comparable")
    verdict = gate.get("verdict", "test")
    if verdict not in VERDICTS:
        raise where.error("gate", "verdict", f"must be one of {', '.join(map(repr, VERDICTS))}; got {verdict!r}")
    comparable = gate.get("comparable", "fail")
    if comparable not in COMPARABLE:
        raise where.error("gate", "comparable", f"must be 'fail' or 'warn'; got {comparable!r}")
    scan = _scan_options(data.get("scan", {}), where)
    if verdict == "test" and scan.get("calibrate") == 0:
        raise where.error("scan", "calibrate", "0 turns off the headline test, which [gate] verdict = 'test' gates on; "
                                               "use verdict = 'paper' or a calibrate of 19, 39, ...")
    thresholds = tuple(_threshold(name, value, where) for name, value in _flat(data.get("thresholds", {})))
    tolerances = tuple(_tolerance(name, value, where) for name, value in _flat(data.get("tolerances", {})))
    return Policy(source=source, verdict=verdict, comparable=comparable, scan=scan, thresholds=thresholds,
                  tolerances=tolerances, drift=_drift(data.get("drift", {}), where))


def _kind(value) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array"}.get(
        type(value), type(value).__name__)


def _flat(table: dict, prefix: str = ""):
    """``ad.mean = ...`` written unquoted is a nested table to TOML; both spellings name one metric."""
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flat(value, name + ".")
        else:
            yield name, value


def _metric(name: str, table: str, where: _Locator) -> GateMetric:
    if name not in GATE_METRICS:
        raise where.error(table, name, f"unknown metric; metrics: {metric_names()}")
    return GATE_METRICS[name]


_THRESHOLD = re.compile(r"^\s*(<=|>=|<|>|≤|≥)\s*([-+0-9.eE]+)\s*(%?)\s*$")


def _threshold(name: str, value, where: _Locator) -> Threshold:
    metric = _metric(name, "thresholds", where)
    match = _THRESHOLD.match(value) if isinstance(value, str) else None
    if match is None:
        raise where.error("thresholds", name, f"must be a comparison and a number, like \"< 0.6\" or \">= 0.9\"; "
                                              f"got {value!r}")
    comparison = {"≤": "<=", "≥": ">="}.get(match.group(1), match.group(1))
    number = _number(match.group(2), "thresholds", name, where)
    if match.group(3):
        if metric.kind != "percent":
            raise where.error("thresholds", name, f"is not a share; write the limit without % (got {value!r})")
        number /= 100
    return Threshold(metric, comparison, number)


def _tolerance(name: str, value, where: _Locator) -> Tolerance:
    metric = _metric(name, "tolerances", where)
    relative = isinstance(value, str) and value.strip().endswith("%")
    if isinstance(value, bool) or not (isinstance(value, (int, float)) or relative):
        raise where.error("tolerances", name, f"must be a number (absolute: 0.1) or a percentage of the baseline "
                                              f"(\"10%\"); got {value!r}")
    amount = _number(value.strip()[:-1], "tolerances", name, where) / 100 if relative else float(value)
    if not (math.isfinite(amount) and amount >= 0):
        raise where.error("tolerances", name, f"must be 0 or more; got {value!r}")
    return Tolerance(metric, amount, relative)


def _number(text: str, table: str, key: str, where: _Locator) -> float:
    try:
        number = float(text)
    except ValueError:
        raise where.error(table, key, f"{text!r} is not a number") from None
    if not math.isfinite(number):
        raise where.error(table, key, f"{text!r} is not a finite number")
    return number


def _scan_options(table: dict, where: _Locator) -> dict:
    known = {f.name for f in fields(AuditConfig)}
    for key in table:
        if key not in known:
            raise where.error("scan", key, f"unknown scan option; options: {', '.join(sorted(known))}")
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    try:
        configured(None, AuditConfig, options, "scan")
    except GaussAuditError as exc:
        # which key the message is about: the first option it names
        key = next((k for k in options if re.search(rf"\b{re.escape(k)}\b", str(exc))), None)
        raise where.error("scan", key, str(exc).rstrip(".")) from None
    return options


def _drift(table: dict, where: _Locator) -> DriftPolicy:
    known = {f.name: f for f in fields(DriftPolicy)}
    for key in table:
        if key not in known:
            raise where.error("drift", key, f"unknown key; [drift] has {', '.join(known)}")
    out = DriftPolicy(**table)
    for key in ("enabled", "normalize"):
        if not isinstance(getattr(out, key), bool):
            raise where.error("drift", key, f"must be true or false; got {getattr(out, key)!r}")
    if isinstance(out.alpha, bool) or not isinstance(out.alpha, (int, float)) or not 0 < out.alpha < 1:
        raise where.error("drift", "alpha", f"must be a number between 0 and 1; got {out.alpha!r}")
    for key, minimum in (("permutations", 1), ("sample", 0)):
        value = getattr(out, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise where.error("drift", key, f"must be a whole number, at least {minimum}; got {value!r}")
    if (out.permutations + 1) * out.alpha < 1:
        raise where.error("drift", "permutations", f"{out.permutations} permutations cannot reach a p-value of "
                                                   f"{out.alpha:g} (the smallest is 1/(permutations + 1)); use at "
                                                   f"least {math.ceil(1 / out.alpha) - 1}")
    if 0 < out.sample < 20:
        raise where.error("drift", "sample", f"must be 0 (every row) or at least 20; got {out.sample}")
    return out


class _Locator:
    """Turns a problem with a table's key into a message naming file and line."""

    def __init__(self, text: str, source: str, prefix: tuple[str, ...]):
        self.lines = text.splitlines()
        self.source = source
        self.prefix = prefix

    def table(self, name: str | None) -> str:
        return ".".join((*self.prefix, name) if name else self.prefix)

    def line(self, table: str | None, key: str | None) -> int | None:
        header = self.table(table)
        current = self.table(None)
        key_pattern = None
        if key is not None:
            parts = r"\s*\.\s*".join(rf"[\"']?{re.escape(p)}[\"']?" for p in key.split("."))
            key_pattern = re.compile(rf"^(?:[\"']{re.escape(key)}[\"']|{parts})\s*=")
        for number, raw in enumerate(self.lines, 1):
            text = raw.strip()
            heading = re.match(r"^\[([^\[\]]+)\]", text)
            if heading:
                current = ".".join(p.strip().strip("\"'") for p in heading.group(1).split("."))
                if key is None and current == header:
                    return number
                continue
            if key_pattern is not None and current == header and key_pattern.match(text):
                return number
        return None

    def error(self, table: str | None, key: str | None, message: str) -> GaussAuditError:
        line = self.line(table, key)
        if line is None and table is None and key is not None:  # a top-level name is a key or a [table]
            line = self.line(key, None)
        at = f"{self.source}:{line}" if line else self.source
        name = (f"[{self.table(table)}] " if table else "") + (key or "")
        return GaussAuditError(f"{at}: {name}: {message}." if name else f"{at}: {message}.")
