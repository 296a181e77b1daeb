"""HTML building blocks shared by glassbox's reports: page style, escaping, tables, sections, inline figures.

Every figure is inlined as a base64 PNG ``data:`` URI, so a report is one self-contained file.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure

DPI = 100


def figure_data_uri(fig: Figure) -> str:
    """A figure as a ``data:image/png;base64,...`` URI (for an inline ``<img>``)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


CSS = """
body { font: 15px/1.5 system-ui, sans-serif; color: #222; max-width: 1200px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; margin-top: 2em; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 13px; }
img { max-width: 100%; display: block; margin: 0.5em 0; }
.summary { font-size: 14px; background: #eef4fa; }
.ok { color: #1b7a3d; font-weight: bold; } .fail { color: #b2182b; font-weight: bold; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { border: 1px solid #ddd; padding: 0.25em 0.7em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.caption { color: #555; font-size: 14px; }
nav.toc { background: #f6f6f6; padding: 0.4em 1em; display: inline-block; } nav.toc ol { margin: 0.3em 0; }
details summary { cursor: pointer; }
"""


def esc(value: Any) -> str:
    return html.escape(str(value))


def img(fig: Figure, alt: str) -> str:
    return f'<img alt="{esc(alt)}" src="{figure_data_uri(fig)}">'


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def section(key: str, title: str, level: int = 2) -> str:
    return f"<h{level} id='{key}'>{esc(title)}</h{level}>"


def toc(entries: Sequence[tuple[str, str]]) -> str:
    items = "".join(f"<li><a href='#{k}'>{esc(t)}</a></li>" for k, t in entries)
    return f"<nav class='toc'><b>Contents</b><ol>{items}</ol></nav>"
