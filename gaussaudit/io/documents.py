"""Read the text documents a release gate works from: policy files (TOML) and
JSON reports of earlier scans. Like the array readers, every failure is a
GaussAuditError naming the file."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

from gaussaudit.errors import GaussAuditError

#: The report schema a gate reads (the JSON report's ``schema`` key).
REPORT_SCHEMA = "gaussaudit.report/2"
#: Documents that hold several reports, or reports of an older meaning.
OTHER_SCHEMAS = {
    "gaussaudit.compare/1": "a compare report, one report per column; a gate compares one scan with one scan: give "
                            "the JSON of `gaussaudit scan --json`",
    "gaussaudit.track/1": "a track report, one report per step; give the JSON of `gaussaudit scan --json` of one step",
    "gaussaudit.report/1": "a report of an older gaussaudit, whose verdict meant something else "
                           "(docs/json-schema.md, 'Migrating'); scan the baseline again",
}


def read_text(path: str | Path, what: str) -> str:
    """The text of ``path`` (UTF-8), or a GaussAuditError saying why not."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GaussAuditError(f"{path}: no such {what}.") from None
    except IsADirectoryError:
        raise GaussAuditError(f"{path}: is a folder, not a {what}.") from None
    except UnicodeDecodeError:
        raise GaussAuditError(f"{path}: is not UTF-8 text; a {what} is a text file.") from None
    except OSError as exc:
        raise GaussAuditError(f"{path}: cannot be read ({exc.strerror or exc}).") from None


def read_toml(path: str | Path, what: str = "policy file") -> tuple[dict, str]:
    """The parsed TOML of ``path`` and its text (kept to point errors at lines)."""
    text = read_text(path, what)
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        raise GaussAuditError(f"{path}: is not valid TOML: {exc}.") from None


def read_report(path: str | Path) -> dict:
    """A JSON report written by ``gaussaudit scan --json`` (schema
    ``gaussaudit.report/2``), as a dict."""
    text = read_text(path, "JSON report")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GaussAuditError(f"{path}: is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}).") from None
    schema = document.get("schema") if isinstance(document, dict) else None
    if schema in OTHER_SCHEMAS:
        raise GaussAuditError(f"{path}: is {OTHER_SCHEMAS[schema]}.")
    if schema != REPORT_SCHEMA:
        found = f"schema {schema!r}" if schema is not None else "no 'schema' key"
        raise GaussAuditError(f"{path}: is not a gaussaudit scan report ({found}; expected {REPORT_SCHEMA}).")
    for key in ("input", "settings", "metrics", "verdict"):
        if not isinstance(document.get(key), dict):
            raise GaussAuditError(f"{path}: a {schema} report without its {key!r} block; the file is incomplete.")
    return document
