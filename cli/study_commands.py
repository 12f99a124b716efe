"""``shedding study NAME``: run a study's grid (skipping complete runs), analyze it and write its
report.

One command per registered study (:data:`shedding.studies.STUDIES`). Bad input fails with one line
and status 2 before anything is created; failed runs are listed at the end, the report is written
for the rest and the exit status is 1.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from shedding.cli.options import with_config_options
from shedding.studies import STUDIES, GridRun, Study

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Studies: a grid over (pruning method x sparsity x retraining technique x seed) ending in "
    "one report (digits by default; --recipe, --config or options for another model and dataset).",
)


def _check_data(runs: list[GridRun]) -> None:
    """Build data and model of each distinct (model, data) once, so a missing dataset fails before
    any run."""
    from shedding.experiment import prepare

    seen = set()
    for r in runs:
        key = r.config.hash(("model", "data"))
        if key not in seen:
            seen.add(key)
            prepare(r.config)


def _unique(runs: list[GridRun]) -> dict[str, Any]:
    """Distinct configurations by hash (two grid entries may share one run), the longest first so
    that the workers are not left waiting on a long run at the end."""
    from shedding.pruning.schedule import sparsity_targets
    from shedding.steps import Step

    out: dict[str, Any] = {}
    for r in runs:
        out.setdefault(r.config.hash(), r.config)

    def cost(cfg: Any) -> tuple[int, int]:
        t = Step.parse(cfg.retrain.duration)
        try:
            rounds = len(sparsity_targets(cfg.prune))
        except ValueError:  # a schedule whose rounds are not known in advance
            rounds = 1
        return (t.ep * rounds, t.it * rounds)

    return dict(sorted(out.items(), key=lambda kv: cost(kv[1]), reverse=True))


def _progress_callback(advance: Callable[[int], None], total: int) -> Callable[..., None]:
    """A progress callback tolerant of how the runner reports: an outcome per finished run, or
    (done, total)."""
    state = {"done": 0}

    def callback(*args: Any, **kwargs: Any) -> None:
        if args and isinstance(args[0], int) and not isinstance(args[0], bool):
            done = min(args[0], total)
        else:
            done = min(state["done"] + 1, total)
        if done > state["done"]:
            advance(done - state["done"])
            state["done"] = done

    return callback


def _check_options(
    out: Path, seeds: int | None, scheduler: str | None, workers: int | None, retries: int
) -> None:
    """The study command's own options (the configuration's are checked with the grid's plan)."""
    from shedding.cli.feedback import check_output
    from shedding.config import AT_LEAST_1
    from shedding.grid import check_grid_options
    from shedding.validate import check_number

    if seeds is not None:
        check_number(seeds, "--seeds", AT_LEAST_1)
    check_grid_options(workers, retries)
    if (
        scheduler is not None
        and scheduler != "sync"
        and not scheduler.startswith(("tcp://", "tls://"))
    ):
        raise ValueError(
            f"--scheduler: {scheduler!r} is not 'sync' or a scheduler address like tcp://host:8786"
        )
    check_output(out, "--out", "folder")


def _run_configs(
    study: Study,
    configs: dict[str, Any],
    out: Path,
    scheduler: str | None,
    workers: int | None,
    retries: int,
) -> list[Any]:
    """Run the grid's distinct configurations with a progress bar; their outcomes. Ctrl-C says
    how to resume and exits with status 130."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from shedding.cli.feedback import console
    from shedding.grid import run_grid

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    try:
        with Progress(
            *columns,
            TextColumn("runs"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as prog:
            task = prog.add_task(f"study {study.name}", total=len(configs))
            callback = _progress_callback(lambda n: prog.advance(task, n), len(configs))
            outcomes = run_grid(
                list(configs.values()),
                out / "runs",
                cache_dir=out / "pretrain",
                scheduler=scheduler,
                workers=workers,
                retries=retries,
                progress=callback,
            )
            prog.update(task, completed=len(configs))
    except KeyboardInterrupt:
        console.print(
            f"[bold red]interrupted:[/] complete runs stay in {out / 'runs'}; the same command "
            "skips them and resumes the others",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    return outcomes


def _entries(runs: list[GridRun], outcomes: list[Any], out: Path) -> list[Any]:
    """One study result entry per grid entry, from the outcome of its run (found by hash, else
    by path); an entry without one has failed."""
    from shedding.grid import run_path
    from shedding.studies.study_runs import Entry

    by_hash = {o.config.hash(): o for o in outcomes}
    by_path = {Path(o.path).resolve(): o for o in outcomes}
    entries = []
    for r in runs:
        o = by_hash.get(r.config.hash()) or by_path.get(run_path(out / "runs", r.config).resolve())
        status = o.status if o is not None else "failed"
        entries.append(
            Entry(
                r.label,
                r.factor_dict(),
                str(o.path) if o is not None else None,
                status,
                (o.error if o is not None else "the runner returned no outcome for it")
                if status != "complete"
                else None,
            )
        )
    return entries


def _rerun_command(
    study: Study,
    size: str,
    out: Path,
    recipe: str | None,
    config: Path | None,
    overrides: dict[str, str],
) -> str:
    """The command line that runs this study again (shown in the report)."""
    size_flag = {"quick": ["--quick"], "full": []}.get(size, [f"--size {size}"])
    return " ".join(
        [
            f"shedding study {study.name}",
            *size_flag,
            f"--out {out}",
            *([f"--recipe {recipe}"] if recipe else []),
            *([f"--config {config}"] if config else []),
            *(f"--{k.replace('.', '-').replace('_', '-')} {v}" for k, v in overrides.items()),
        ]
    )


def _print_results(study: Study, results: Any) -> None:
    """The study's results table on standard output (nothing when it has no rows)."""
    from rich.table import Table

    from shedding.cli.feedback import fmt, out_console

    rows = study.table(results)
    if not rows:
        return
    table = Table(title=f"study {study.name}: results")
    keys = list(rows[0])
    for k in keys:
        table.add_column(k, overflow="fold")
    for row in rows:
        table.add_row(*[fmt(row[k]) for k in keys])
    out_console.print(table)


def _print_end(entries: list[Any], seconds: float, out: Path, report: Any) -> None:
    """How many grid entries completed and where the report is; the failed ones with their
    errors, then exit status 1."""
    from shedding.cli.feedback import console, out_console

    failed = [e for e in entries if e.status != "complete"]
    done = len(entries) - len(failed)
    out_console.print(
        f"{done} of {len(entries)} grid entries complete in {seconds:.0f} s; runs: {out / 'runs'}\n"
        f"report: {report}",
        highlight=False,
    )
    if failed:
        console.print(f"[bold red]{len(failed)} failed:[/]", highlight=False)
        for e in failed:
            console.print(f"  {e.label}: {e.error}", highlight=False, markup=False)
        raise typer.Exit(1)


def run_study(
    study: Study,
    overrides: dict[str, str],
    size: str,
    out: Path,
    seeds: int | None,
    recipe: str | None,
    config: Path | None,
    scheduler: str | None,
    workers: int | None,
    retries: int,
) -> None:
    """Plan, check, run, analyze, report; see the module docstring."""
    from shedding.cli.feedback import console, user_errors
    from shedding.config import to_toml
    from shedding.studies.study_runs import collect

    with user_errors():
        _check_options(out, seeds, scheduler, workers, retries)
        base, grid, runs = study.plan(size, seeds, recipe, config, overrides)
        _check_data(runs)
    configs = _unique(runs)
    out.mkdir(parents=True, exist_ok=True)
    console.print(
        f"[bold]study {study.name}[/] ({size}): {len(runs)} grid entries, "
        f"{len(configs)} runs into {out / 'runs'}",
        highlight=False,
    )
    expected = getattr(study, "expected_time", None)  # a study that can estimate its time
    if expected is not None:
        console.print(expected(list(configs.values()), workers), highlight=False)
    started = time.time()
    outcomes = _run_configs(study, configs, out, scheduler, workers, retries)
    seconds = time.time() - started
    entries = _entries(runs, outcomes, out)
    with user_errors():  # a damaged store or two equal controls: one line, exit 2
        results = study.analyze(collect(entries, out / "pretrain"), grid)
    context = {
        "title": study.title,
        "paper": study.paper,
        "question": study.question,
        "grid": grid,
        "base_toml": to_toml(base),
        "size": size,
        "seconds": seconds,
        "base_schedule": base.train.schedule,
        "command": _rerun_command(study, size, out, recipe, config, overrides),
    }
    report = study.report(results, out / "report.html", context)
    _print_results(study, results)
    _print_end(entries, seconds, out, report)


# the study command's own options; --out's default depends on the study
_Quick = Annotated[
    bool,
    typer.Option(
        "--quick",
        help="the quick grid (digits: at most 15 minutes on 2 CPU cores, pretraining included)",
    ),
]
_Out = Annotated[
    Path,
    typer.Option(
        "--out",
        "-o",
        help="folder: runs in OUT/runs, original training runs in OUT/pretrain, the report at "
        "OUT/report.html",
    ),
]
_Seeds = Annotated[int | None, typer.Option(help="seeds 0..N-1 (default: the grid's)")]
_Recipe = Annotated[
    str | None,
    typer.Option(
        help="start from a recipe instead of the study's digits setting (see `shedding list`)"
    ),
]
_Config = Annotated[Path | None, typer.Option("--config", "-c", help="TOML file of options on top")]
_Scheduler = Annotated[
    str | None,
    typer.Option(
        help="dask scheduler address (tcp://host:8786), 'sync' for in-process, default: a local "
        "cluster"
    ),
]
_Workers = Annotated[int | None, typer.Option(help="workers of the local cluster")]
_Retries = Annotated[int, typer.Option(help="retries of a failed run")]
_Size = Annotated[str | None, typer.Option(hidden=True, help="grid size by name (tests: tiny)")]


def _command(study: Study) -> Callable[..., None]:
    """The ``shedding study NAME`` command of ``study``: its own options and every config
    option."""

    @with_config_options
    def command(
        overrides: dict[str, str],
        quick: _Quick = False,
        out: _Out = Path(f"study_{study.name}"),
        seeds: _Seeds = None,
        recipe: _Recipe = None,
        config: _Config = None,
        scheduler: _Scheduler = None,
        workers: _Workers = None,
        retries: _Retries = 1,
        size: _Size = None,
    ) -> None:
        run_study(
            study,
            overrides,
            size or ("quick" if quick else "full"),
            out,
            seeds,
            recipe,
            config,
            scheduler,
            workers,
            retries,
        )

    command.__doc__ = (
        f"{study.question} ({study.paper}). Options layer as: the study's digits setting (or "
        "--recipe) < --config < options; the grid's factors are set on top."
    )
    return command


for _name in STUDIES.names():
    _study = STUDIES.get(_name)
    app.command(_name, help=_command(_study).__doc__)(_command(_study))
