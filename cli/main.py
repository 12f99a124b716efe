"""``shedding``: record prune-and-retrain runs into Zarr stores, analyze them, write reports.

Every error a user can cause is printed as one line starting with ``error:`` and exits with status
2, before any output file is created.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from shedding.cli.export_commands import register as register_export_commands
from shedding.cli.feedback import (
    OneLineUsageErrors,
    check_output,
    ci_text,
    console,
    fmt,
    out_console,
    progress_bars,
    run_errors,
    user_errors,
)
from shedding.cli.mask_commands import register as register_mask_commands
from shedding.cli.options import with_config_options
from shedding.cli.study_commands import app as study_app
from shedding.config import Range
from shedding.storage import as_path, safe_name
from shedding.validate import validate_run_config

if TYPE_CHECKING:
    import xarray as xr

DEFAULT_CACHE = "runs/pretrain"

app = typer.Typer(
    cls=OneLineUsageErrors,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Record and analyze cascade weight shedding in pruned neural networks.",
)


def _build_config(recipe: str | None, config_file: Path | None, overrides: dict[str, str]):
    from shedding.config import RunConfig, apply_overrides, load_toml
    from shedding.recipes import RECIPES

    cfg = RECIPES.get(recipe)() if recipe else RunConfig()
    if config_file is not None:
        cfg = load_toml(config_file, cfg)
    return apply_overrides(cfg, overrides)


def _default_out(cfg) -> Path:
    model, data = safe_name(cfg.model.name), safe_name(cfg.data.name)
    return Path("runs") / (
        f"{model}-{data}-{cfg.prune.method}{cfg.prune.sparsity:g}-"
        f"{cfg.retrain.technique}-s{cfg.seed}-{cfg.hash()}.zarr"
    )


@with_config_options
def record(
    overrides: dict[str, str],
    recipe: Annotated[
        str | None, typer.Option(help="start from a recipe (see `shedding list`)")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="TOML file of options; command-line options override it"
        ),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="store path or fsspec URL such as s3://bucket/run.zarr "
            "(default: runs/<name>-<hash>.zarr)",
        ),
    ] = None,
    cache: Annotated[
        Path, typer.Option(help="folder caching the original training run's checkpoints")
    ] = Path(DEFAULT_CACHE),
    overwrite: Annotated[bool, typer.Option(help="replace an existing store at --out")] = False,
    print_config: Annotated[
        bool, typer.Option(help="print the resolved configuration as TOML and exit")
    ] = False,
    resume: Annotated[
        str | None,
        typer.Option(
            help="continue this interrupted, failed or crashed store from "
            "its last retraining epoch (its own configuration)"
        ),
    ] = None,
) -> None:
    """Train (or reuse the cached original run), prune, retrain and record into a Zarr store.

    Options layer as: defaults < --recipe < --config file < command-line options. Ctrl-C and SIGTERM
    flush what is buffered and mark the run interrupted; --resume continues it. Under torchrun (e.g.
    `torchrun --nproc-per-node 2 -m shedding.cli.main record ...`) the processes train together and
    rank 0 alone records and prints.
    """
    from shedding import distributed

    if not distributed.is_main():
        console.quiet = out_console.quiet = True  # torchrun: rank 0 speaks for the run
    try:
        _record(overrides, recipe, config, out, cache, overwrite, print_config, resume)
    finally:
        distributed.cleanup()


def _record(
    overrides: dict[str, str],
    recipe: str | None,
    config: Path | None,
    out: Path | None,
    cache: Path,
    overwrite: bool,
    print_config: bool,
    resume: Path | None,
) -> None:
    from shedding.config import to_toml
    from shedding.experiment import record as run_record
    from shedding.experiment import resume as run_resume

    with user_errors():
        if resume is not None:
            if overrides or recipe or config or out:
                raise ValueError(
                    "--resume takes the configuration and the path from the store; "
                    "drop the other options"
                )
            as_path(resume)
            with progress_bars() as progress, run_errors(resume):
                run_resume(resume, progress=progress)
            out_console.print(f"resumed and completed: {resume}")
            return
        cfg = _build_config(recipe, config, overrides)
        validate_run_config(cfg)
        if print_config:
            out_console.print(to_toml(cfg), highlight=False, markup=False)
            return
        path = out or _default_out(cfg)
        as_path(path)  # an unknown URL scheme is a one-line error (exit 2) before anything runs
        check_output(
            path, "--out", None
        )  # what an existing --out may be: experiment.record's check_path
        check_output(cache, "--cache", "folder")
        with progress_bars() as progress, run_errors(path):
            run_record(cfg, path, cache_dir=cache, overwrite=overwrite, progress=progress)
    out_console.print(f"recorded: {path}")


app.command("record", help=record.__doc__)(record)


def _open_all(runs: list[str]) -> dict[str, Any]:
    from shedding.analysis.io import open_run, run_name

    opened: dict[str, Any] = {}
    for p in runs:
        ds = open_run(p)
        name = run_name(ds)
        if name in opened:
            name = str(p)
        opened[name] = ds
    return opened


TABLE_COLUMNS = {
    "run": "run",
    "method": "method",
    "technique": "retraining",
    "sparsity": "sparsity",
    "final_accuracy": "accuracy",
    "peak_S": "peak S",
    "peak_step": "at step",
    "final_S": "final S",
    "excess_peak": "excess",
    "onset_step": "onset",
    "amplification": "amplif.",
    "verdict": "verdict",
}


CONDITION_COLUMNS = (
    "condition",
    "seeds",
    "excess",
    "95% CI",
    "peak S",
    "amplif.",
    "final excess",
    "verdict",
)
LINE_COLUMNS = (
    "run",
    "event",
    "line",
    "resolution",
    "peak_S",
    "excess_peak",
    "onset_step",
    "verdict",
)


def _print_conditions(conds: list[dict[str, Any]]) -> None:
    """The condition table: means over seeds with bootstrap CIs (nothing when there are none)."""
    if not conds:
        return
    table = Table(title="Conditions: means over seeds (95% bootstrap CI)")
    for col in CONDITION_COLUMNS:
        justify = "left" if col in ("condition", "verdict") else "right"
        table.add_column(col, justify=justify, overflow="fold")
    for c in conds:
        lo, hi = c["excess_peak_ci"]
        table.add_row(
            str(c["condition"]),
            str(c["seeds"]),
            fmt(c["excess_peak"], "excess_peak"),
            ci_text(c["excess_peak"], lo, hi),
            fmt(c["peak_shed_fraction"]),
            fmt(c["amplification"]),
            fmt(c["final_excess"], "final_excess"),
            str(c["verdict"]),
        )
    out_console.print(table)


def _print_summary(summary) -> None:
    """The condition table (means over seeds with CIs), then the per-run table with evidence
    lines, then the verdicts per line when there are several lines."""
    _print_conditions(summary.condition_table())
    _print_table(summary.table())
    lines = summary.line_table()
    if summary.lines and len(summary.lines) > 1:
        table = Table(title="Verdicts per line")
        for col in LINE_COLUMNS:
            table.add_column(col)
        for r in lines:
            table.add_row(*[fmt(r[k], k) for k in LINE_COLUMNS])
        out_console.print(table)


def _print_table(rows: list[dict[str, object]]) -> None:
    table = Table(title="Shedding summary (peak and excess within the cascade window)")
    keys = list(TABLE_COLUMNS)
    for k in keys:
        table.add_column(
            TABLE_COLUMNS[k],
            justify="left" if k in ("run", "method", "technique", "verdict") else "right",
            overflow="fold",
        )
    for r in rows:
        table.add_row(*[fmt(r[k], k) for k in keys])  # None: not recorded
    out_console.print(table)
    for r in rows:
        if r["evidence"]:
            out_console.print(f"  {r['run']}: {r['verdict']}: {r['evidence']}", highlight=False)


def _no_nan(obj: Any) -> Any:
    """NaN -> None, so that the output is strict JSON."""
    if isinstance(obj, float):
        return None if obj != obj else obj
    if isinstance(obj, dict):
        return {k: _no_nan(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_no_nan(v) for v in obj]
    return obj


EXCESS = Range(0, 1, lo_open=True)  # an excess of S_run over S_control, both shares in [0, 1]


def _summarize_cli(runs: list[str], control: str | None, lines: list[str], **params: Any):
    from shedding.analysis.lines import parse_lines
    from shedding.analysis.summary import summarize
    from shedding.config import parse_step
    from shedding.validate import check_number

    if params.get("denominator") not in ("eligible", "survivors"):
        raise ValueError(
            f"--denominator: {params.get('denominator')!r} is not one of eligible, survivors"
        )
    check_number(params["min_excess"], "--min-excess", EXCESS)
    check_number(params["onset_excess"], "--onset-excess", EXCESS)
    if params["window"] != "round" and parse_step(params["window"], "--window").iterations(1) == 0:
        raise ValueError(
            f"--window: {params['window']} is an empty window; give a positive length or 'round'"
        )
    parsed = parse_lines(lines)
    opened = _open_all(runs)
    if control is not None and control not in opened:
        matches = [
            n for n, ds in opened.items() if str(as_path(ds.attrs["path"])) == str(as_path(control))
        ]
        if not matches:
            raise ValueError(f"--control {control}: not one of the runs given")
        control = matches[0]
    return summarize(opened, control, lines=parsed, **params)


def _check_html(out: Path | None) -> None:
    if out is not None and out.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"--out {out}: the report is HTML; use a .html file name")
    if out is not None:
        check_output(out, "--out", "file")


def _overlap_json(summary) -> list[dict[str, object]]:
    return [
        {
            "a": a,
            "b": b,
            **{
                k: float(ov[k].sel(scope="all"))
                for k in ("jaccard", "jaccard_chance", "p_value", "spearman")
            },
        }
        for (a, b), ov in summary.overlaps.items()
    ]


LINE_HELP = (
    "a shed line kind:value, repeatable: gmp:ALPHA (ALPHA*tau), std:C (C*layer std), abs:V, next:D "
    "(the GMP cut at sparsity+D); default: the recorded line; other lines need magnitudes"
)


@app.command()
def analyze(
    runs: Annotated[
        list[str],
        typer.Argument(
            help="run stores (paths or fsspec URLs) to analyze together (seeds, methods, controls)"
        ),
    ],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="write the HTML report here")
    ] = None,
    control: Annotated[
        str | None,
        typer.Option(
            help="one control run for all (name or path); default: each run's "
            "matched control (a control run of the same seed and setting, "
            "its line at the run's first-event sparsity and alpha)"
        ),
    ] = None,
    line: Annotated[list[str] | None, typer.Option("--line", help=LINE_HELP)] = None,
    min_excess: Annotated[
        float, typer.Option(help="cascade when S_run - S_control reaches this")
    ] = 0.05,
    onset_excess: Annotated[
        float, typer.Option(help="onset: first step the excess reaches this")
    ] = 0.01,
    window: Annotated[
        str,
        typer.Option(
            help="look for the cascade within this long after the event, as a "
            "step string (5ep, 300it) or 'round' for the whole round"
        ),
    ] = "5ep",
    denominator: Annotated[
        str, typer.Option(help="S = shed / eligible survivors or / all survivors")
    ] = "eligible",
    as_json: Annotated[
        bool, typer.Option("--json", help="print the statistics as JSON instead of tables")
    ] = False,
    figures_dir: Annotated[
        Path | None,
        typer.Option("--figures", help="also write each report figure as a static file here"),
    ] = None,
    fig_format: Annotated[
        str, typer.Option("--format", help="static figure format: svg, pdf or png")
    ] = "svg",
) -> None:
    """Cascade verdicts per run, event and line against matched controls, means with bootstrap CIs
    per condition, kept-set overlaps; optional HTML report and static figures."""
    from shedding.reports import write_report

    with user_errors():
        _check_html(out)
        if fig_format not in ("svg", "pdf", "png"):
            raise ValueError(f"--format {fig_format}: choose one of svg, pdf, png")
        if figures_dir is not None:
            check_output(figures_dir, "--figures", "folder")
        summary = _summarize_cli(
            runs,
            control,
            line or [],
            min_excess=min_excess,
            onset_excess=onset_excess,
            window=window,
            denominator=denominator,
        )
        if as_json:
            print(
                json.dumps(
                    _no_nan(
                        {
                            "conditions": summary.condition_table(),
                            "runs": summary.table(),
                            "lines": summary.line_table(),
                            "overlaps": _overlap_json(summary),
                            "rule": next(iter(summary.cascades.values())).attrs["rule"],
                        }
                    ),
                    indent=1,
                )
            )
        else:
            _print_summary(summary)
        if out is not None:
            write_report(summary, out)
            (console if as_json else out_console).print(f"report: {out}")
        if figures_dir is not None:
            from shedding.reports.figure_export import write_figures

            paths = write_figures(summary, figures_dir, fig_format)
            (console if as_json else out_console).print(f"figures: {len(paths)} in {figures_dir}")


def _check_comparable(opened: dict[str, Any], event: int) -> None:
    """The runs have the same prunable layers, and each has the event ``event`` (negative: from the
    end)."""
    first = next(iter(opened))
    for name, ds in opened.items():
        if list(ds.layer.values) != list(opened[first].layer.values):
            raise ValueError(f"{name} has other prunable layers than {first}; not comparable")
        n = ds.sizes["event"]
        if not -n <= event < n:
            raise ValueError(
                f"--event: {event} is not an event of {name}, which has {n} (0 to {n - 1}, "
                "or -1 for the last)"
            )


def _parse_block(block: str) -> tuple[int, int]:
    """``--block`` BHxBW as (BH, BW), both positive."""
    try:
        bh, bw = (int(v) for v in block.lower().split("x"))
        assert bh > 0 and bw > 0
    except (ValueError, AssertionError):
        raise ValueError(
            f"--block {block!r}: expected BHxBW with positive integers, e.g. 4x4"
        ) from None
    return bh, bw


def _kept_json(matrix: xr.Dataset, effective: bool, event: int) -> dict[str, Any]:
    """``compare --json``: the overlap matrices per scope."""
    return {
        "effective": effective,
        "event": event,
        "scopes": [str(s) for s in matrix.scope.values],
        "runs": [str(r) for r in matrix.run_a.values],
        **{
            k: matrix[k].transpose("scope", "run_a", "run_b").values.tolist()
            for k in ("jaccard", "jaccard_chance", "p_value", "spearman")
        },
    }


def _print_kept(matrix: xr.Dataset, effective: bool) -> None:
    """The all-layers overlap table: Jaccard, its chance value and p for each pair of runs."""
    g = matrix.sel(scope="all")
    sets = "effective sets" if effective else "masks"
    table = Table(title=f"Kept-set overlap ({sets}), all layers: Jaccard (chance) p")
    names = [str(n) for n in g.run_a.values]
    table.add_column("")
    for n in names:
        table.add_column(n, justify="right")
    for a in names:
        cells = []
        for b in names:
            c = g.sel(run_a=a, run_b=b)
            jaccard, chance = float(c.jaccard), float(c.jaccard_chance)
            cells.append(f"{jaccard:.3f} ({chance:.3f}) p={float(c.p_value):.1e}")
        table.add_row(a, *cells)
    out_console.print(table)


@app.command()
def compare(
    runs: Annotated[
        list[str],
        typer.Argument(help="run stores (paths or URLs) whose kept sets to compare (two or more)"),
    ],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="write the HTML report here")
    ] = None,
    event: Annotated[
        int, typer.Option(help="compare the masks after this event (-1: the last)")
    ] = -1,
    effective: Annotated[
        bool, typer.Option(help="compare effective sets (kept and not shed) in the table")
    ] = False,
    block: Annotated[
        str, typer.Option(help="block shape for the semi-structured view, as BHxBW")
    ] = "4x4",
    as_json: Annotated[
        bool, typer.Option("--json", help="print the matrices as JSON instead of a table")
    ] = False,
) -> None:
    """Kept-set comparison over runs: Jaccard beside chance, hypergeometric p, Spearman (global and
    per layer), effective sets, convergence of random runs towards GMP's set, block density;
    optional HTML report."""
    from shedding.analysis.overlap import kept_matrix
    from shedding.reports import write_report

    with user_errors():
        _check_html(out)
        bh, bw = _parse_block(block)
        if len(runs) < 2:
            raise ValueError("compare needs at least two runs")
        opened = _open_all(runs)
        _check_comparable(opened, event)
        matrix = kept_matrix(opened, event=event, effective=effective)
        if as_json:
            print(json.dumps(_no_nan(_kept_json(matrix, effective, event)), indent=1))
        else:
            _print_kept(matrix, effective)
        if out is not None:
            from shedding.analysis.summary import summarize

            # the comparison report shows kept sets only; runs that do not say how long an epoch
            # is (recorded outside the trainer) are summarised over whole rounds
            epochs = all("iterations_per_epoch" in ds.attrs for ds in opened.values())
            summary = summarize(opened, **({} if epochs else {"window": "round"}))
            write_report(
                summary, out, title="Kept-set comparison", kind="comparison", block=(bh, bw)
            )
            (console if as_json else out_console).print(f"report: {out}")


EVENT_COLUMNS = (
    "event",
    "step",
    "sparsity",
    "tau",
    "line",
    "pruned",
    "eligible",
    "below",
    "acc after",
    "acc end",
)


def _print_run_header(run: str, ds: xr.Dataset) -> None:
    """A run's status, last committed step, error, configuration in one line and dimensions."""
    from shedding.recording.store import run_status

    a = ds.attrs
    status = run_status(run, a)
    if status == "crashed":
        status = "crashed (its writer is gone; `shedding record --resume` continues it)"
    out_console.print(
        f"[bold]{run}[/]  status: [bold]{status}[/]  last committed step: "
        f"{a.get('last_committed_step')}",
        highlight=False,
    )
    if a.get("error"):
        out_console.print(f"error: {a['error']}", highlight=False, markup=False)
    out_console.print(_run_line(a), highlight=False)
    out_console.print(
        "dimensions: " + ", ".join(f"{k}={v}" for k, v in ds.sizes.items()), highlight=False
    )


def _run_line(a: dict[str, Any]) -> str:
    """The run's configuration in one line: the trainer's settings, or a watched run's identity."""
    prune = (a.get("config") or {}).get("prune")
    if prune is None:  # recorded by shedding.watch: no configuration of ours
        control = "; a control" if a.get("control") else ""
        return (
            f"recorded by {a.get('recorded_by', 'unknown')}: model {a.get('model', '—')}; "
            f"condition {a.get('condition', '—')}{control}; seed {a.get('seed', '—')}"
        )
    return (
        f"model {a.get('model')} on {a.get('dataset')}; prune {prune.get('method')} "
        f"to {prune.get('sparsity')} ({prune.get('schedule')}); "
        f"retrain {a.get('technique')} for {a.get('t')} steps x {a.get('rounds')} round(s); "
        f"T = {a.get('T')} steps; seed {a.get('seed')}; device {a.get('device')}"
    )


def _events_table(ds: xr.Dataset) -> Table:
    """One row per prune event of a run: step, sparsity, threshold, line, counts, accuracies."""
    table = Table(title="prune events")
    for col in EVENT_COLUMNS:
        table.add_column(col, justify="right")
    for i in range(ds.sizes["event"]):
        e = ds.isel(event=i)
        table.add_row(
            str(i),
            str(int(e.event_step)),
            f"{float(e.event_sparsity):.4f}",
            f"{float(e.event_tau):.4g}",
            f"{float(e.event_line):.4g}",
            str(int(e.event_pruned.sum())),
            str(int(e.event_eligible.sum())),
            str(int(e.event_below.sum())),
            fmt(float(e.event_test_accuracy)),
            fmt(float(e.event_final_test_accuracy)),
        )
    return table


@app.command()
def info(run: Annotated[str, typer.Argument(help="a run store (path or fsspec URL)")]) -> None:
    """Status, configuration, dimensions and prune events of a run store."""
    from shedding.analysis.io import open_run

    with user_errors():
        ds = open_run(run)
    _print_run_header(run, ds)
    out_console.print(_events_table(ds))
    layers = Table(title="prunable layers")
    for col in ("layer", "shape", "size"):
        layers.add_column(col)
    for name, shape, size in zip(
        ds.layer.values, ds.layer_shape.values, ds.layer_size.values, strict=True
    ):
        layers.add_row(str(name), str(shape), str(int(size)))
    out_console.print(layers)


@app.command("list")
def list_registries() -> None:
    """The registered models, datasets, pruning methods and schedules, retraining techniques and
    recipes."""
    from shedding.data import DATASETS
    from shedding.models import MODELS
    from shedding.pruning import PRUNERS
    from shedding.pruning.schedule import SCHEDULES
    from shedding.recipes import RECIPES
    from shedding.retraining import TECHNIQUES

    for title, reg in (
        ("models", MODELS),
        ("datasets", DATASETS),
        ("pruning methods", PRUNERS),
        ("pruning schedules", SCHEDULES),
        ("retraining techniques", TECHNIQUES),
        ("recipes", RECIPES),
    ):
        with user_errors():  # a plugin that fails to load
            names = reg.names()
        # one line a registry, whatever the width, so that the list greps and parses
        out_console.print(f"[bold]{title}:[/] {', '.join(names)}", highlight=False, soft_wrap=True)


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="folder for the demo's stores and report")
    ] = Path("demo_runs"),
    seeds: Annotated[
        int, typer.Option(help="number of seeds (0..N-1) of each run, for the confidence intervals")
    ] = 3,
) -> None:
    """The main job on embedded data: GMP, random and unpruned-control retraining on digits for
    several seeds, then the analysis and the report.

    Replaces the demo's own earlier stores in --out; original training runs are cached in
    --out/pretrain.
    """
    from shedding.analysis.summary import summarize
    from shedding.cli.demo import demo_configs
    from shedding.config import AT_LEAST_1
    from shedding.experiment import record as run_record
    from shedding.reports import write_report
    from shedding.validate import check_number

    with user_errors():
        check_number(seeds, "--seeds", AT_LEAST_1)
        check_output(out, "--out", "folder")
        configs = {
            f"{name}-s{seed}": cfg
            for seed in range(seeds)
            for name, cfg in demo_configs(seed).items()
        }
        for cfg in configs.values():
            validate_run_config(cfg)
        out.mkdir(parents=True, exist_ok=True)
        paths = {}
        with progress_bars() as progress, run_errors(out):
            for name, cfg in configs.items():
                console.print(
                    f"[bold]{name}[/]: {cfg.prune.method} {cfg.prune.sparsity:g}, "
                    f"{cfg.retrain.technique} {cfg.retrain.duration}, seed {cfg.seed}",
                    highlight=False,
                )
                paths[name] = run_record(
                    cfg,
                    out / f"{name}.zarr",
                    cache_dir=out / "pretrain",
                    overwrite=True,
                    progress=progress,
                )
        opened = _open_all(list(paths.values()))
        summary = summarize(opened)
        _print_summary(summary)
        report = write_report(summary, out / "report.html", title="shedding demo: digits")
    out_console.print(f"stores: {out}/*.zarr ({len(paths)} runs)\nreport: {report}")


app.add_typer(study_app, name="study")
register_mask_commands(app)
register_export_commands(app)


def main() -> None:  # pragma: no cover - console entry point
    """Entry point for ``python -m shedding.cli.main``."""
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
