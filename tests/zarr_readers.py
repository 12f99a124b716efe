"""Two independent readers of a store's arrays, for the conformance tests: zarr-python's and
tensorstore's (another Zarr v3 implementation)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import zarr


def open_group(path: Path) -> zarr.Group:
    """The store's root group, read-only, through zarr-python."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr's note that consolidated metadata is a v3 extension
        return zarr.open_group(str(path), mode="r")


def read_with_tensorstore(path: Path) -> np.ndarray:
    """The whole array at ``path`` as tensorstore decodes it (tensorstore must be installed)."""
    import tensorstore as ts

    spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path)}}
    return ts.open(spec, read=True).result().read().result()
