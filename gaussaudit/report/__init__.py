"""Renderers of an AuditReport: terminal (rich), JSON, markdown, HTML and
figures (PNG; matplotlib, the optional ``plot`` extra, imported only to draw)."""
from gaussaudit.report.json import SCHEMA, render_json, report_to_dict
from gaussaudit.report.markdown import render_markdown
from gaussaudit.report.terminal import render_terminal

__all__ = ["SCHEMA", "render_json", "render_markdown", "render_terminal", "report_to_dict"]
