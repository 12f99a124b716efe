"""The layout every report shares: one self-contained page (plotly.js inlined once, each figure's
JSON embedded), the answer first, then a sticky navigation bar, then sections in two columns on a
wide screen, each figure with a one-line caption saying how to read it.

Figures whose x axis is the training step are linked: hovering one shows the same step in the
others. Tables sort by a click on a column header (:data:`shedding.reports.html_tables.SORT_JS`).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from shedding.reports.html_tables import SORT_JS, TABLE_CSS

CSS = (
    """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;\
max-width:1320px;padding:0 16px 16px;color:#222}
h1{font-size:1.45em;margin:14px 0 8px} h2{font-size:1.1em;margin:0 0 6px;\
border-bottom:1px solid #ddd}
section{scroll-margin-top:44px;min-width:0}
.sections{display:grid;grid-template-columns:minmax(0,1fr);gap:22px 24px;grid-auto-flow:dense}
@media (min-width:1000px){.sections{grid-template-columns:minmax(0,1fr) minmax(0,1fr)}}
.wide{grid-column:1/-1}
.figrow{display:grid;grid-template-columns:minmax(0,1fr);gap:12px 24px}
@media (min-width:1000px){.figrow.two{grid-template-columns:minmax(0,1fr) minmax(0,1fr)}}
nav.toc{position:sticky;top:0;z-index:20;background:#fff;border-bottom:1px solid #ccc;\
padding:7px 0;margin:10px 0 14px;font-size:0.85em;line-height:1.7}
nav.toc a{color:#1f5f9f;text-decoration:none;margin-right:10px;display:inline-block}
nav.toc a:hover{text-decoration:underline}
.banner{padding:7px 12px;border-radius:6px;margin:6px 0;font-size:0.95em}
.cascade{background:#fde2e1;border:1px solid #e0837f} \
.nocascade{background:#e3f1e3;border:1px solid #7fbf7f}
.warn{background:#fff3cd;border:2px solid #d39e00}
.neutral{background:#eef3f8;border:1px solid #9fb6cc}
.figure{margin:4px 0 0;min-height:300px}
.caption{margin:2px 0 0;font-size:0.82em;color:#555}
pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:0.8em}
small{color:#555} details{margin:4px 0} summary{cursor:pointer}
p{margin:6px 0}
"""
    + TABLE_CSS
)

LINK_JS = """
(function(){
  var linked = Array.prototype.slice.call(document.querySelectorAll('.figure[data-link="step"]'));
  var busy = false;
  linked.forEach(function(src){
    src.on('plotly_hover', function(ev){
      if (busy || !ev.points || !ev.points.length) return;
      busy = true;
      var x = ev.points[0].x;
      linked.forEach(function(dst){
        if (dst === src || !dst._fullLayout) return;
        try { Plotly.Fx.hover(dst, {xval: x}, Object.keys(dst._fullLayout._plots)); } catch (e) {}
      });
      busy = false;
    });
    src.on('plotly_unhover', function(){
      linked.forEach(function(dst){ if (dst !== src) { \
try { Plotly.Fx.unhover(dst); } catch (e) {} } });
    });
  });
})();
"""


@dataclass
class ReportFigure:
    """A figure of a report: ``title`` (its section's heading, and the name of its static file),
    ``figure``, ``link`` (hovering it shows the same step in the other linked figures),
    ``caption`` (one line: how to read it), ``anchor`` (the id the navigation bar links to),
    ``wide`` (the whole width, not one of two columns) and ``label`` (its link in the navigation
    bar; default: the title).

    Unpacks as ``(title, figure, link)``, as the reports' figures always did.
    """

    title: str
    figure: go.Figure
    link: bool = False
    caption: str = ""
    anchor: str = ""
    wide: bool = False
    label: str = ""

    def __iter__(self) -> Iterator[object]:
        return iter((self.title, self.figure, self.link))


def anchor(title: str) -> str:
    """An id for a section title: lower case, words joined by dashes."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"


def _json_default(o: object) -> object:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o))


def figure_block(fig: go.Figure, idx: int, link: bool) -> str:
    """A figure's placeholder and script: its JSON embedded, drawn by the inlined plotly.js;
    ``link``: hovering it shows the same step in the other linked figures."""
    payload = json.dumps(fig.to_plotly_json(), default=_json_default).replace("</", "<\\/")
    attr = ' data-link="step"' if link else ""
    return (
        f'<div class="figure" id="fig-{idx}"{attr}></div>\n'
        f'<script type="application/json" id="fig-{idx}-data">{payload}</script>\n'
        "<script>(function(){"
        f'var s=JSON.parse(document.getElementById("fig-{idx}-data").textContent);'
        f'Plotly.newPlot("fig-{idx}",s.data,s.layout,{{responsive:true}}).then(function(gd){{'
        f"if(s.frames){{Plotly.addFrames(gd,s.frames);}}}});}})();</script>"
    )


def caption(text: str) -> str:
    """A figure's one-line caption (escaped); nothing for no text."""
    return f'<p class="caption">{html.escape(text)}</p>' if text else ""


def captioned(fig: go.Figure, idx: int, link: bool, text: str) -> str:
    """:func:`figure_block` followed by its :func:`caption`."""
    return figure_block(fig, idx, link) + caption(text)


def section(anchor_id: str, heading: str, content: str, wide: bool = True) -> str:
    """A section with its id (for the navigation bar), its escaped heading and its HTML
    ``content``; ``wide``: across both columns, else in one of them."""
    cls = ' class="wide"' if wide else ""
    return f'<section id="{anchor_id}"{cls}><h2>{html.escape(heading)}</h2>\n{content}</section>\n'


def nav_bar(links: list[tuple[str, str]]) -> str:
    """The sticky navigation bar: one link per (id, label)."""
    items = "\n".join(f'<a href="#{a}">{html.escape(label)}</a>' for a, label in links)
    return f'<nav class="toc" aria-label="sections">{items}</nav>'


def page(title: str, body: str, css: str = CSS) -> str:
    """A whole self-contained page: plotly.js inlined once, the escaped ``title`` as its heading,
    then ``body``, then the scripts that link the figures on the step axis and sort the
    tables."""
    t = html.escape(str(title))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{t}</title><style>{css}</style>
<script type="text/javascript">{get_plotlyjs()}</script></head>
<body>
<h1>{t}</h1>
{body}
<script>{LINK_JS}</script>
<script>{SORT_JS}</script>
</body></html>
"""
