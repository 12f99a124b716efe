"""Names in a store (``layer``, ``layer_shape``, ``line``) as Zarr v3 core data types.

Zarr v3's core data types hold no strings (zarr-python's variable-length ``string`` is an extension
other readers refuse), so a name array is stored as integer codes (int32) with its labels in the
array's attributes:
``labels`` (a JSON list) and ``encoding: "labels"``; the name of code ``i`` is ``labels[i]``.
``layer`` and
``line`` codes are their positions (so a ``layer`` code equals the ``weight_layer`` and
``sample_layer`` values that point at it); repeated names (``layer_shape``) share a code.

Plain ``xarray.open_zarr`` shows the codes; :func:`decode_names` turns them back into the names, and
a reader without this package needs one line::

    ds = ds.assign_coords({k: (v.dims, [v.attrs["labels"][i] for i in v.values]) for k, v in
    ds.coords.items() if v.attrs.get("encoding") == "labels"})
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

ENCODING = "labels"  # the ``encoding`` attribute of a coded name array
CODE_DTYPE = "int32"
_CODEC_ATTRS = ("encoding", "labels", "decode")


def encode_names(names: Sequence[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """Codes (int32) for ``names`` and the attributes that hold their labels (distinct names, first
    seen first)."""
    labels: dict[str, int] = {}
    codes = np.array([labels.setdefault(str(n), len(labels)) for n in names], dtype=CODE_DTYPE)
    return codes, {"encoding": ENCODING, "labels": list(labels), "decode": "name = labels[code]"}


def _strings(labels: Sequence[str], codes: Any) -> np.ndarray:
    """The names of ``codes`` in numpy's variable-length string dtype (what zarr-python's ``string``
    reads as)."""
    table = np.asarray(list(labels), dtype=np.dtypes.StringDType())
    return (
        table[np.asarray(codes, dtype=np.int64)]
        if len(table)
        else np.asarray([], dtype=table.dtype)
    )


def is_coded(attrs: dict[str, Any], dtype: Any) -> bool:
    """Whether a variable with these attributes and dtype holds name codes still to decode."""
    return attrs.get("encoding") == ENCODING and np.dtype(dtype).kind in "iu"


def decode_names(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with every coded name variable replaced by its names (other attributes kept;
    idempotent)."""
    import xarray as xr

    coded = {k: v for k, v in ds.variables.items() if is_coded(v.attrs, v.dtype)}
    if not coded:
        return ds
    new = {}
    for k, v in coded.items():
        attrs = {a: x for a, x in v.attrs.items() if a not in _CODEC_ATTRS}
        new[k] = xr.Variable(v.dims, _strings(v.attrs["labels"], v.values), attrs)
    coords = {k: x for k, x in new.items() if k in ds.coords}
    return ds.assign_coords(coords).assign({k: x for k, x in new.items() if k not in coords})


def read_names(array: Any) -> list[str]:
    """The names a store's name array holds, read with zarr (a coded array, or a string one of an
    older store)."""
    values = np.asarray(array[...])
    attrs = dict(array.attrs)
    if is_coded(attrs, values.dtype):
        return [str(s) for s in _strings(attrs["labels"], values)]
    return [str(s) for s in values]
