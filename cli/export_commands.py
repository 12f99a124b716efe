"""``shedding export RUN... --tensorboard DIR``: run stores as TensorBoard event files
(docs/tensorboard.md).

What is written comes from :mod:`shedding.reports.tensorboard_export` and
:mod:`shedding.reports.tensorboard_histograms`; this module checks the input (one line and status 2
before anything is written) and writes the event files with tensorboardX.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shedding.cli.feedback import check_output, out_console, progress_bars, user_errors

if TYPE_CHECKING:
    import xarray as xr

EVENT_FILES = "events.out.tfevents.*"  # the names tensorboardX gives its event files


def _open_runs(runs: list[str], control: str | None) -> tuple[dict[str, Any], Any]:
    """{name: dataset} of the runs (names unique: each becomes a subfolder) and the control (or
    None), checked; ValueError (one line) on bad input."""
    from shedding.analysis.io import open_run, run_name
    from shedding.reports.tensorboard_export import check_control

    opened: dict[str, Any] = {}
    for path in runs:
        ds = open_run(path)
        name = run_name(ds)
        if name in opened:
            raise ValueError(
                f"{path}: another run given is also named {name}; each run is written to "
                "DIR/<name of its store>, so export these in separate folders"
            )
        opened[name] = ds
    ctrl = None
    if control is not None:
        ctrl = open_run(control)
        for ds in opened.values():
            try:
                check_control(ds, ctrl)
            except ValueError as e:
                raise ValueError(f"--control {control}: {e}") from None
    return opened, ctrl


def _need_tensorboardx() -> None:
    """ValueError (one line) when tensorboardX, which writes the event files, is not installed."""
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        raise ValueError(
            "--tensorboard needs the tensorboardX package: pip install tensorboardX"
        ) from None


def _writer(folder: Path) -> Any:
    """A tensorboardX writer into ``folder``, after removing the event files of an earlier export
    there (only those: ``events.out.tfevents.*``)."""
    from tensorboardX import SummaryWriter

    if folder.is_dir():
        for old in folder.glob(EVENT_FILES):
            old.unlink()
    return SummaryWriter(str(folder), max_queue=10_000, flush_secs=3600)


def write_run(
    folder: Path,
    ds: xr.Dataset,
    series: dict[str, xr.DataArray],
    text: str,
    offset: int,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
) -> Path:
    """Write one run's text summary, scalar ``series`` (from
    :func:`shedding.reports.tensorboard_export.scalar_series`) and histograms into ``folder``, every
    step shifted by ``offset``."""
    from shedding.analysis.io import run_name
    from shedding.reports.tensorboard_histograms import histogram_count, iter_histograms

    advance = progress(run_name(ds), len(series) + histogram_count(ds)) if progress else None
    writer = _writer(folder)
    try:
        writer.add_text("run", text, global_step=0)
        for tag, s in series.items():
            for step, value in zip(s.step.values, s.values, strict=True):
                writer.add_scalar(tag, float(value), global_step=int(step) + offset)
            if advance:
                advance(1)
        for h in iter_histograms(ds):
            writer.add_histogram_raw(**h.fields(), global_step=h.step + offset)
            if advance:
                advance(1)
    finally:
        writer.close()
    return folder


def export(
    runs: Annotated[
        list[str], typer.Argument(help="run stores (paths or fsspec URLs)", show_default=False)
    ],
    tensorboard: Annotated[
        Path,
        typer.Option(
            "--tensorboard",
            help="folder for TensorBoard event files: one subfolder per run, named as its store "
            "(an earlier export's event files there are replaced)",
            show_default=False,
        ),
    ],
    control: Annotated[
        str | None,
        typer.Option(
            "--control",
            help="an unpruned control run (--prune-method none, same layers): adds the excess "
            "S_run - S_control",
        ),
    ] = None,
) -> None:
    """Write run stores as TensorBoard event files: S(t), the excess over --control, loss, learning
    rate, accuracy and the per-layer magnitude histograms (docs/tensorboard.md).

    Runs exported together share one step offset, so that they line up in TensorBoard.
    """
    from shedding.analysis.controls import is_control
    from shedding.reports.tensorboard_export import scalar_series, step_offset, summary_text

    with user_errors():
        _need_tensorboardx()
        check_output(tensorboard, "--tensorboard", "folder")
        opened, ctrl = _open_runs(runs, control)
        for name in opened:
            check_output(tensorboard / name, "--tensorboard", "folder")
        offset = step_offset(opened.values())
        series = {n: scalar_series(ds, ctrl) for n, ds in opened.items()}  # errors before writing
        with progress_bars() as progress:
            done = [
                write_run(
                    tensorboard / n, ds, series[n], summary_text(ds, offset, ctrl), offset, progress
                )
                for n, ds in opened.items()
            ]
    for folder in done:
        out_console.print(f"exported: {folder}", highlight=False)
    out_console.print(
        f"TensorBoard step = store step + {offset}; view with: tensorboard --logdir {tensorboard}",
        highlight=False,
    )
    if ctrl is None and not all(is_control(ds) for ds in opened.values()):
        out_console.print(
            "no --control: S(t) alone cannot show a cascade (retraining sheds without pruning)",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    """Add ``export`` to the ``shedding`` command group."""
    app.command("export", help=export.__doc__)(export)
