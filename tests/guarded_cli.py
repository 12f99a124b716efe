"""``python -m shedding.cli.main`` with a tripwire, for tests/e2e/test_distributed.py: it runs under
torchrun, and on every rank but 0 an audit hook refuses (and reports on stderr) any write, rename,
mkdir or delete under $SHEDDING_GUARD."""

from __future__ import annotations

import os
import sys
from pathlib import Path

GUARDED = Path(os.environ["SHEDDING_GUARD"]).resolve()
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _guarded(path: object) -> bool:
    try:
        return isinstance(path, str | bytes | os.PathLike) and Path(
            os.fsdecode(path)
        ).resolve().is_relative_to(GUARDED)
    except (OSError, ValueError):
        return False


def _hook(event: str, args: tuple) -> None:
    if event == "open":
        path, mode, flags = args
        writes = (
            any(c in mode for c in "wax+")
            if isinstance(mode, str)
            else bool((flags or 0) & WRITE_FLAGS)
        )
        paths = [path] if writes else []
    elif event in ("os.rename", "os.link", "os.symlink"):
        paths = list(args[:2])
    elif event in ("os.mkdir", "os.remove", "os.rmdir", "shutil.rmtree", "os.truncate", "os.chmod"):
        paths = [args[0]]
    else:
        return
    for p in paths:
        if _guarded(p):
            print(
                f"guard: rank {os.environ.get('RANK')} tried {event} on {p}",
                file=sys.stderr,
                flush=True,
            )
            raise PermissionError(f"rank {os.environ.get('RANK')} must not write {p}")


if os.environ.get("RANK", "0") != "0":
    sys.addaudithook(_hook)

from shedding.cli.main import main  # noqa: E402

if __name__ == "__main__":
    main()
