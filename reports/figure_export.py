"""Static figures for papers: the report's Plotly figures written as SVG, PDF or PNG files.

The figures are the ones :func:`shedding.reports.html.report_figures` builds for the HTML report;
only a copy of each figure's layout is resized (a single column, readable fonts) for the export,
without the report's menus; a figure with a run selector is written once per run.
Plotly's static export goes through kaleido, which drives an installed Chrome or Chromium.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import plotly.graph_objects as go

from shedding.analysis.summary import Summary
from shedding.reports.html import report_figures
from shedding.reports.selector_figures import RUN_MENU

FORMATS = ("svg", "pdf", "png")
#: one journal column: 3.5 in at 96 px/in; PNGs are rendered at ``PNG_SCALE`` times this
COLUMN_WIDTH_PX = 340
COLUMN_HEIGHT_PX = 260
PNG_SCALE = 3
FONT_SIZE = 10


def slug(title: str) -> str:
    """A file-name stem for a section title: lower case, words joined by dashes."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "figure"


def paper_figure(fig: go.Figure) -> go.Figure:
    """A copy of ``fig`` sized for one column with readable fonts (the original is unchanged)."""
    out = go.Figure(fig)
    rows = sum(1 for k in out.layout.to_plotly_json() if k.startswith("yaxis")) or 1
    out.update_layout(
        updatemenus=[],
        width=COLUMN_WIDTH_PX,
        height=COLUMN_HEIGHT_PX + 140 * (rows - 1),
        font={"size": FONT_SIZE},
        title={"text": None},
        legend={"orientation": "h", "y": -0.25, "font": {"size": FONT_SIZE - 2}},
        margin={"l": 45, "r": 10, "t": 30, "b": 40},
        template="simple_white",
    )
    out.update_annotations(font_size=FONT_SIZE - 1)
    return out


def variants(fig: go.Figure) -> list[tuple[str, go.Figure]]:
    """(file-name suffix, figure) of each view of ``fig``: one per run of its run selector (the
    run's traces made visible, its title set), else the figure itself with an empty suffix."""
    menus = fig.layout.updatemenus
    if not menus or menus[0].name != RUN_MENU:
        return [("", fig)]
    out = []
    for button in menus[0].buttons:
        view = go.Figure(fig)
        for trace, visible in zip(view.data, button.args[0]["visible"], strict=True):
            trace.visible = visible
        view.update_layout(title_text=button.args[1].get("title.text"))
        out.append((f"-{slug(button.label)}", view))
    return out


def write_figures(
    summary: Summary,
    folder: str | Path,
    fmt: str = "svg",
    kind: str = "full",
    block: tuple[int, int] = (4, 4),
) -> list[Path]:
    """Write each figure of the report for ``summary`` into ``folder`` as ``NN-title.fmt`` (a
    figure with a run selector: ``NN-title-run.fmt`` per run).

    The files are written into a temporary folder next to ``folder`` and moved in at the end,
    so a failure (no browser for kaleido, say) leaves nothing behind. Returns the paths.
    """
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    folder = Path(folder)
    figs = report_figures(summary, kind, block)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".figures-", dir=folder.parent))
    try:
        names = []
        scale = PNG_SCALE if fmt == "png" else 1
        for i, (title, fig, _link) in enumerate(figs):
            for suffix, view in variants(fig):
                name = f"{i:02d}-{slug(title)}{suffix}.{fmt}"
                (tmp / name).write_bytes(_render(paper_figure(view), fmt, scale))
                names.append(name)
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            (tmp / name).replace(folder / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [folder / n for n in names]


class ExportError(ValueError):
    """Plotly's static export failed (most often: kaleido found no Chrome or Chromium)."""


def _render(fig: go.Figure, fmt: str, scale: float) -> bytes:
    """The figure as ``fmt`` bytes; an export failure becomes one line naming its cause."""
    import plotly.io as pio  # loads kaleido's machinery only when figures are exported

    try:
        return pio.to_image(fig, format=fmt, scale=scale)
    except Exception as e:  # kaleido's errors have no common base class
        cause = " ".join(str(e).split())[:300]
        raise ExportError(
            f"static figure export failed ({type(e).__name__}: {cause}); kaleido needs Chrome or "
            "Chromium (set BROWSER_PATH to its executable)"
        ) from e
