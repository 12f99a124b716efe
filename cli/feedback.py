"""What the CLI tells its user: one-line errors (exit 2), run outcomes (exit 1 or 130), progress
bars.

Every command module uses these; none of them imports a command module.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from numbers import Integral
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from typer.core import TyperGroup

try:  # typer 0.25 and later carry their own click, whose exceptions derive from this
    from typer.exceptions import TyperException as ClickError
except ImportError:  # pragma: no cover - an older typer on the real click
    from click import ClickException as ClickError

from shedding.storage import as_path

console = Console(stderr=True)
out_console = Console(
    width=None if sys.stdout.isatty() else 160
)  # files and pipes get the whole table


def fail(message: str) -> typer.Exit:
    """Print a one-line error and return the exit to raise."""
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


class OneLineUsageErrors(TyperGroup):
    """The root command group: click's own errors (an unknown option, a value of the wrong type, a
    missing argument) print one line starting with ``error:`` like every other user error, instead
    of a usage box."""

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the CLI; see the class docstring. Exits (as click does) unless ``standalone_mode`` is
        false."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except ClickError as e:
            if type(e).__name__ != "NoArgsIsHelpError":  # the help it stands for is printed already
                ctx = getattr(e, "ctx", None)
                hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
                fail(" ".join(e.format_message().split()) + hint)
            sys.exit(e.exit_code)
        except typer.Abort:
            console.print("Aborted!", highlight=False)
            sys.exit(1)
        sys.exit(
            rv if isinstance(rv, int) else 0
        )  # in this mode an Exit comes back as its exit code


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can cause into one-line messages with exit status 2."""
    from shedding.analysis.io import NotARunError
    from shedding.config import ConfigError
    from shedding.recording.store import StoreError
    from shedding.registry import UnknownNameError

    try:
        yield
    except (ConfigError, StoreError, NotARunError, UnknownNameError, OSError, ValueError) as e:
        raise fail(str(e).splitlines()[0] if str(e) else type(e).__name__) from None


def check_output(path: str | Path, option: str, kind: str | None) -> None:
    """Raise ValueError (one line naming ``option``) unless ``path`` can be written, before anything
    is.

    ``kind`` ('file' or 'folder') is what an existing ``path`` must be (None: leave that to the
    caller); the nearest existing folder on the way to ``path`` must be a folder this process may
    write in (``os.access`` also answers no on a read-only file system, which stops root too).
    Remote URLs are not checked.
    """
    import os

    from shedding.storage import is_local

    p = as_path(path)
    if not is_local(p):
        return
    try:
        if p.exists() and kind == "folder" and not p.is_dir():
            raise ValueError(f"{option} {path}: exists and is not a folder")
        if p.is_dir() and kind == "file":
            raise ValueError(f"{option} {path}: is a folder; give a file name")
        near = (p if kind == "folder" and p.is_dir() else p.parent).absolute()
        while not near.exists() and near != near.parent:
            near = near.parent
        if not near.is_dir():
            raise ValueError(f"{option} {path}: {near} is not a folder")
        if not os.access(near, os.W_OK | os.X_OK):
            raise ValueError(f"{option} {path}: {near} is not writable")
    except OSError as e:
        raise ValueError(f"{option} {path}: {e.strerror or type(e).__name__}") from None


@contextmanager
def run_errors(path: Path | str) -> Iterator[None]:
    """During a run: Ctrl-C and SIGTERM exit 130 and a crash exits 1, each with one line saying what
    the store holds. Signals stop the run at the next step (see :mod:`shedding.interrupts`), also
    while it closes.

    Set SHEDDING_DEBUG=1 to get the traceback of a crash instead.
    """
    import os

    from shedding import interrupts
    from shedding.config import ConfigError
    from shedding.recording.store import StoreError

    try:
        with interrupts.stop_on_signals():
            yield
            if (
                signal_name := interrupts.requested()
            ) is not None:  # after the run returned: it is complete
                raise interrupts.Interrupted(signal_name, status="complete")
    except KeyboardInterrupt as e:
        status = getattr(e, "status", None)
        where = getattr(
            e, "path", path
        )  # the store the run wrote (the demo runs several in one folder)
        console.print(
            f"[bold red]interrupted:[/] {escape(_interrupted_line(where, status))}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    except (ConfigError, StoreError):
        raise
    except Exception as e:
        if os.environ.get("SHEDDING_DEBUG"):
            raise
        message = (
            escape(str(e).splitlines()[0]) if str(e) else ""
        )  # e.g. gloo's "[.../pair.cc:561] ..."
        console.print(
            f"[bold red]error:[/] run failed: {type(e).__name__}: {message}"
            f"; {path} is marked failed (SHEDDING_DEBUG=1 shows the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None


def _interrupted_line(path: Path | str, status: str | None) -> str:
    """What a stopped run left behind, in words; ``status`` None: not known to the run, read from
    the store."""
    if status is None:
        status = _store_status(path)
    if status == "complete":
        return f"the run had finished: {path} is complete"
    if status == "interrupted":
        return (
            f"{path} is marked interrupted; its committed steps are readable and "
            f"`shedding record --resume {path}` finishes it"
        )
    if status is not None:
        return f"{path} is marked {status}; `shedding record --resume {path}` finishes it"
    return f"stopped before {path} was created; nothing was written"


def _store_status(path: Path | str) -> str | None:
    """The status attribute of the run store at ``path``; None where there is none (or it can't be
    read)."""
    try:
        meta = json.loads((as_path(path) / "zarr.json").read_text())
        status = meta["attributes"]["status"]
        return status if isinstance(status, str) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextmanager
def progress_bars() -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    """A rich progress display; yields ``factory(description, total) -> advance(n)`` (None on quiet
    consoles).

    The display starts with its first bar, so that an error raised before any (a bad option found
    late) prints its one line and nothing else.
    """
    if console.quiet:  # ranks other than 0 of a torchrun launch
        yield None
        return
    prog = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )

    def factory(description: str, total: int) -> Callable[[int], None]:
        if not prog.live.is_started:
            prog.start()
        task = prog.add_task(description, total=total)
        return lambda n: prog.advance(task, n)

    try:
        yield factory
    finally:
        if prog.live.is_started:
            prog.stop()


STEP_KEYS = frozenset({"peak_step", "onset_step", "excess_peak_step"})  # -1: none
SIGNED_KEYS = frozenset({"excess_peak", "final_excess"})  # an excess has a sign


def fmt(v: object, key: str = "") -> str:
    """A terminal table cell by the reports' rule (:func:`shedding.reports.numbers.cell_text`):
    three significant figures, "—" for none (a step of -1 in a :data:`STEP_KEYS` column too),
    signs in the :data:`SIGNED_KEYS` columns."""
    from shedding.reports.numbers import MISSING, cell_text

    if key in STEP_KEYS and isinstance(v, Integral) and v < 0:
        return MISSING
    return cell_text(v, signed=key in SIGNED_KEYS)


def ci_text(value: float, low: float, high: float) -> str:
    """An excess's 95% interval as the reports write it beside its value ("—" without one)."""
    from shedding.reports.numbers import MISSING, ci_pair

    return ci_pair(value, low, high, signed=True)[1] or MISSING
