"""Self-contained interactive HTML reports (Plotly, inlined: they open with no network)."""

from shedding.reports.html import write_report

__all__ = ["write_report"]
