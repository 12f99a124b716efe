"""``shedding export-mask RUN --event N --out masks.pt``: a prune event's masks as a torch file.

The file holds ``{parameter name: bool mask of the parameter's shape}`` (True = kept), which
``torch.nn.utils.prune.custom_from_mask(module, "weight", mask)`` applies and
``shedding record --prune-method file --prune-mask-file masks.pt`` prunes with. Bad input (not a
run store, no such event, an unwritable --out) fails with one line and exit status 2 before the
file is written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from shedding.cli.feedback import check_output, out_console, user_errors


def export_mask(
    run: Annotated[str, typer.Argument(help="a run store (path or fsspec URL)")],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="the torch file to write ({parameter name: mask})"),
    ],
    event: Annotated[
        int, typer.Option(help="the prune event whose masks to write (-1: the last)")
    ] = -1,
) -> None:
    """Write the masks after a prune event as {parameter name: bool mask} for
    torch.nn.utils.prune.custom_from_mask and --prune-method file."""
    import torch

    from shedding.analysis.io import open_run
    from shedding.analysis.masks_export import event_masks

    with user_errors():
        check_output(out, "--out", "file")
        ds = open_run(run)
        masks = {k: torch.from_numpy(v.copy()) for k, v in event_masks(ds, event).items()}
        save_masks(masks, out)
    n = sum(m.numel() for m in masks.values())
    kept = sum(int(m.sum()) for m in masks.values())
    out_console.print(
        f"masks of event {event} ({len(masks)} tensors, sparsity {1 - kept / n:.4g}): {out}",
        highlight=False,
    )


def save_masks(masks: dict[str, object], out: Path) -> None:
    """``torch.save`` the masks to ``out`` through a temporary file, so a failed write leaves no
    partial file."""
    import torch

    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        torch.save(masks, tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def register(app: typer.Typer) -> None:
    """Add ``export-mask`` to the ``shedding`` command group."""
    app.command("export-mask", help=export_mask.__doc__)(export_mask)
