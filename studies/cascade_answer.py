"""The answer at the top of the cascade study's page: one line per condition and sparsity saying,
for each pruning method, whether it cascaded and how sure (the mean peak excess over the control
with its 95% CI over seeds). HTML out.
"""

from __future__ import annotations

import xarray as xr

from shedding.reports.numbers import ci_pair
from shedding.studies.study_runs import rows
from shedding.studies.study_setting import esc


def _method_text(r: dict[str, object]) -> str:
    """``random: CASCADE, peak excess +0.121 (95% CI [+0.099, +0.142])``."""
    verdict = str(r["verdict"])
    if verdict == "no control":
        return f"{esc(r['method'])}: <b>NO CONTROL</b> (no verdict)"
    value, ci = ci_pair(
        float(r["excess_peak"]),  # type: ignore[arg-type]
        float(r["excess_peak_low"]),  # type: ignore[arg-type]
        float(r["excess_peak_high"]),  # type: ignore[arg-type]
        signed=True,
    )
    ci_text = f" (95% CI {ci})" if ci else " (one seed: no CI)"
    return f"{esc(r['method'])}: <b>{esc(verdict.upper())}</b>, peak excess {value}{ci_text}"


def _css_class(verdicts: list[str]) -> str:
    """Red when a method cascaded, amber when one has no control, else green."""
    if any(v.startswith("cascade") for v in verdicts):
        return "cascade"
    return "warn" if "no control" in verdicts else "nocascade"


def cascade_answer(conds: xr.Dataset | None, min_excess: float) -> str:
    """One coloured line per condition and sparsity with every method's verdict and peak excess
    over the seed-matched control; the rule below them."""
    if conds is None:
        return '<div class="banner warn">No complete condition: no verdict.</div>'
    groups: dict[tuple[str, float], list[dict[str, object]]] = {}
    for r in rows(conds):
        groups.setdefault((str(r["condition"]), float(r["sparsity"])), []).append(r)
    lines = []
    for (cond, sp), rs in groups.items():
        seeds = max(int(r["seeds"]) for r in rs)  # type: ignore[call-overload]
        texts = "; ".join(_method_text(r) for r in rs)
        cls = _css_class([str(r["verdict"]) for r in rs])
        lines.append(
            f'<div class="banner {cls}"><b>{esc(cond)}, sparsity {sp:g}</b> — {texts}; over '
            f"{seeds} seed{'s' * (seeds != 1)}.</div>"
        )
    rule = (
        "<p><small>A cascade (ours): the mean peak excess S_run − S_control reaches "
        f"{min_excess:g} and its 95% CI over seeds lies above 0.</small></p>"
    )
    return "\n".join(lines) + rule
