"""Where stores live: a local path, or any fsspec URL that Zarr supports (``s3://``, ``gs://``,
``memory://``...).

:func:`as_path` gives a :class:`pathlib.Path` for local locations (``file://`` URLs included) and a
``universal_pathlib`` ``UPath`` (the same API over fsspec) for the others, so the rest of the code
uses one path API. The few operations pathlib has no remote form of are here: removing a tree, an
atomic replace, creating a file only if it does not exist (the writer lock), and
``torch.save``/``torch.load``.

On object stores (S3, GCS) the last two are best effort: a rename is a copy and a delete, and
"create if absent" is a check then a write, so two writers started in the same instant might both
pass the lock.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

AnyPath = Path  # a pathlib.Path or a upath.UPath (a pathlib-compatible path over fsspec)


def safe_name(text: str) -> str:
    """``text`` as part of a file name on any system: characters other than letters, digits and
    ``_.+-`` become ``_`` (an import path's ``:`` is not allowed on Windows)."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", str(text))


def is_url(where: str | os.PathLike[str]) -> bool:
    """True for ``scheme://...`` locations other than ``file://``."""
    text = str(where)
    return "://" in text and not text.startswith("file://")


def as_path(where: str | os.PathLike[str]) -> AnyPath:
    """A local ``Path`` or, for an fsspec URL, a ``UPath``; ``file://`` URLs become local paths."""
    if isinstance(where, Path) or type(where).__module__.startswith("upath"):
        return where  # type: ignore[return-value]
    text = os.fspath(where)
    if text.startswith("file://"):
        return Path(unquote(urlparse(text).path))
    if "://" in text:
        from upath import UPath

        return UPath(text)
    return Path(text)


def is_local(path: AnyPath) -> bool:
    """True for a path on this machine's filesystem."""
    return type(path).__module__.startswith("pathlib") or getattr(path, "protocol", "") in (
        "",
        "file",
        "local",
    )


def zarr_location(path: AnyPath) -> str:
    """What ``zarr.open_group`` and ``xarray.open_zarr`` take for ``path``: a local path or the
    URL."""
    return str(path)


def rmtree(path: AnyPath) -> None:
    """Remove a folder and everything in it (nothing happens when it does not exist)."""
    if is_local(path):
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.fs.rm(path.path, recursive=True)


def create_exclusive(path: AnyPath, text: str) -> None:
    """Create ``path`` with ``text``; FileExistsError when it exists (atomic locally, best effort
    remotely)."""
    if is_local(path):
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return
    if path.exists():
        raise FileExistsError(str(path))
    path.write_text(text)


def write_text_atomic(path: AnyPath, text: str) -> None:
    """Write ``text`` to a temporary name beside ``path``, then replace ``path`` (remote: one direct
    write)."""
    if not is_local(path):  # an object store: a single put is already all-or-nothing
        path.write_text(text, encoding="utf-8")
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save_atomic(obj: Any, path: AnyPath) -> None:
    """``torch.save`` to a temporary name beside ``path``, then replace ``path`` with it."""
    import torch

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if is_local(path):
        torch.save(obj, tmp)
        os.replace(tmp, path)
        return
    with tmp.open("wb") as f:
        torch.save(obj, f)
    if path.exists():
        path.unlink()
    tmp.rename(path)


def load(path: AnyPath, map_location: Any = None, weights_only: bool = True) -> Any:
    """``torch.load`` from a local or remote path."""
    import torch

    if is_local(path):
        return torch.load(path, map_location=map_location, weights_only=weights_only)
    with path.open("rb") as f:
        return torch.load(f, map_location=map_location, weights_only=weights_only)
