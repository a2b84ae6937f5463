"""Renderers of an AuditReport: terminal (rich) and JSON."""
from gaussaudit.report.json import SCHEMA, render_json, report_to_dict
from gaussaudit.report.terminal import render_terminal

__all__ = ["SCHEMA", "render_json", "render_terminal", "report_to_dict"]
