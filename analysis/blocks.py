"""Semi-structured view of a kept set (docs/science.md#kept-sets, last bullet): per-block density
against chance.

For a block shape (bh, bw), or for N:M groups (M consecutive weights along each row), count the kept
weights in every block and compare the histogram of those counts (0..k, k = bh*bw or M) with the
binomial expectation for a random set of the same density: n_blocks * Binomial(k, d).pmf. Block
pruning keeps or removes whole blocks, so its counts pile up at 0 and k (dispersion k); an i.i.d.
random set gives dispersion 1.

Geometry: each layer's flat weights are reshaped to the layer's shape and viewed as the 2-D matrix
(out, in*kh*kw), tiled in row-major block order exactly as block pruning does
(:func:`shedding.pruning.block._tiles`). **Only full blocks count**: the partial blocks on the right
and bottom edges are dropped (so every block has the same size k and the binomial reference is
exact); their weights are reported as ``n_weights_dropped`` and excluded from the density d too.

The 'all' scope pools every layer's full blocks against one global density, so layers pruned to
different densities (GMP) raise its dispersion above 1 even when each layer is random-like: read
clustering within a layer from the per-layer scopes.

Test of fit (our choice): Pearson's chi-square on pooled bins. Bins are pooled left to right (kept
count 0, 1, ...): a pool closes once its expected count reaches 5; a trailing pool with expected < 5
is merged into the previous one. Degrees of freedom = pools - 2 (one for the total, one for d
estimated from the same data). With fewer than 3 pools (too few blocks, or d in {0, 1}) the p-value
is NaN.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.stats import binom, chi2

from shedding.analysis.overlap import _scopes, kept_set

MIN_EXPECTED = 5.0
POOLING_RULE = (
    "Pearson chi-square; bins pooled left to right until each pool's expected count is >= 5, "
    "a short trailing pool merged into the previous; dof = pools - 2; NaN with fewer than 3 pools"
)
EDGE_RULE = (
    "only full blocks/groups count; partial edge blocks of the (out, in*kh*kw) view are dropped"
)


def _shape2d(shape: str) -> tuple[int, int]:
    dims = [int(s) for s in str(shape).split("x") if s]
    size = int(np.prod(dims)) if dims else 0
    rows = dims[0] if dims else 0
    return rows, (size // rows if rows else 0)


def block_counts(flat: np.ndarray, shape2d: tuple[int, int], bh: int, bw: int) -> np.ndarray:
    """Kept count of every full (bh x bw) block of ``flat`` viewed as ``shape2d``, in row-major
    block order."""
    r, c = shape2d
    nr, nc = r // bh, c // bw
    x = np.asarray(flat, dtype=np.int64).reshape(r, c)[: nr * bh, : nc * bw]
    return x.reshape(nr, bh, nc, bw).sum(axis=(1, 3)).reshape(-1)


def pooled_chisquare(
    observed: np.ndarray, expected: np.ndarray, min_expected: float = MIN_EXPECTED, ddof: int = 1
) -> tuple[float, int, float]:
    """(statistic, dof, p-value) of Pearson's chi-square after pooling bins (see the module
    docstring)."""
    pools: list[list[float]] = []
    o_acc = e_acc = 0.0
    for o, e in zip(observed, expected, strict=True):
        o_acc, e_acc = o_acc + float(o), e_acc + float(e)
        if e_acc >= min_expected:
            pools.append([o_acc, e_acc])
            o_acc = e_acc = 0.0
    if pools and (e_acc > 0 or o_acc > 0):
        pools[-1][0] += o_acc
        pools[-1][1] += e_acc
    dof = len(pools) - 1 - ddof
    if dof < 1:
        return np.nan, max(dof, 0), np.nan
    o, e = np.array(pools).T
    stat = float(((o - e) ** 2 / e).sum())
    return stat, dof, float(chi2.sf(stat, dof))


def _scope_stats(counts: np.ndarray, k: int, n_max: int | None) -> dict:
    n = int(counts.size)
    observed = np.bincount(counts, minlength=k + 1).astype(np.int64)
    d = float(counts.sum()) / (n * k) if n else np.nan
    pmf = binom.pmf(np.arange(k + 1), k, d) if n else np.zeros(k + 1)
    expected = n * pmf
    var_binom = k * d * (1 - d) if n else np.nan
    out = dict(observed=observed, expected=expected, n_blocks=n, density=d)
    out["frac_empty_observed"] = observed[0] / n if n else np.nan
    out["frac_empty_expected"] = pmf[0] if n else np.nan
    out["frac_full_observed"] = observed[k] / n if n else np.nan
    out["frac_full_expected"] = pmf[k] if n else np.nan
    out["dispersion"] = float(counts.var()) / var_binom if n and var_binom > 0 else np.nan
    out["chi2"], out["dof"], out["p_value"] = pooled_chisquare(observed, expected)
    if n_max is not None:  # N:M: share of groups already within the pattern (at most N kept of M)
        out["frac_nm_observed"] = observed[: n_max + 1].sum() / n if n else np.nan
        out["frac_nm_expected"] = float(pmf[: n_max + 1].sum()) if n else np.nan
    return out


def _pattern(
    block: tuple[int, int] | None, nm: tuple[int, int] | None
) -> tuple[int, int, int | None, str]:
    """(bh, bw, N of N:M or None, pattern label) of exactly one of ``block`` and ``nm``."""
    if (block is None) == (nm is None):
        raise ValueError("give exactly one of block=(bh, bw) or nm=(N, M)")
    if block is not None:
        bh, bw = (int(v) for v in block)
        if bh < 1 or bw < 1:
            raise ValueError(f"block shape must be positive, got {tuple(block)}")
        return bh, bw, None, f"{bh}x{bw} blocks"
    n_max, m = (int(v) for v in nm)
    if m < 1 or not 0 <= n_max <= m:
        raise ValueError(f"N:M needs M >= 1 and 0 <= N <= M, got {tuple(nm)}")
    return 1, m, n_max, f"{n_max}:{m}"


def _kept_values(ds: xr.Dataset, kept: xr.DataArray) -> np.ndarray:
    """``kept`` as one bool per weight of ``ds``."""
    values = np.asarray(kept.values)
    if values.shape != (int(ds.sizes["weight"]),):
        raise ValueError(
            f"kept must be one value per weight ({ds.sizes['weight']}), got shape {values.shape}"
        )
    return values.astype(bool)


def _scope_counts(
    ds: xr.Dataset, values: np.ndarray, bh: int, bw: int
) -> list[tuple[str, np.ndarray, int]]:
    """(scope, kept count per full block, weights) for 'all' and then each layer."""
    per_layer, names = [], []
    for (name, sl), shape in zip(_scopes(ds)[1:], ds.layer_shape.values, strict=True):
        r, c = _shape2d(shape)
        if r * c != sl.stop - sl.start:
            raise ValueError(
                f"layer {name}: shape {shape} does not match its size {sl.stop - sl.start}"
            )
        per_layer.append((block_counts(values[sl], (r, c), bh, bw), r * c))
        names.append(name)
    all_counts = np.concatenate([c for c, _ in per_layer]) if per_layer else np.zeros(0, np.int64)
    return [("all", all_counts, sum(s for _, s in per_layer))] + [
        (nm_, c, s) for nm_, (c, s) in zip(names, per_layer, strict=True)
    ]


def _density_dataset(
    scopes: list[tuple[str, np.ndarray, int]], k: int, n_max: int | None
) -> xr.Dataset:
    """The histograms and statistics of every scope (see :func:`block_density`)."""
    rows = []
    for _, counts, size in scopes:
        st = _scope_stats(counts, k, n_max)
        st["n_weights_dropped"] = size - st["n_blocks"] * k
        rows.append(st)
    keys = [key for key in rows[0] if key not in ("observed", "expected")]
    data = {
        "observed": (("scope", "kept_count"), np.stack([r["observed"] for r in rows])),
        "expected": (("scope", "kept_count"), np.stack([r["expected"] for r in rows])),
    }
    for key in keys:
        data[key] = ("scope", np.asarray([r[key] for r in rows]))
    return xr.Dataset(
        data, coords={"scope": [s[0] for s in scopes], "kept_count": np.arange(k + 1)}
    )


def block_density(
    ds: xr.Dataset,
    kept: xr.DataArray | None = None,
    block: tuple[int, int] | None = None,
    nm: tuple[int, int] | None = None,
    event: int = -1,
    effective: bool = False,
    step: int | None = None,
) -> xr.Dataset:
    """Histogram of kept weights per block against the binomial expectation, over ``scope`` ('all',
    layers).

    ``kept`` is a boolean (or 0/1) DataArray over ``weight``; by default ``kept_set(ds, event,
    effective, step)`` (``event``/``effective``/``step`` are ignored when ``kept`` is given). Give
    exactly one of ``block=(bh, bw)`` (tiles of the (out, in*kh*kw) view, as block pruning uses) or
    ``nm=(N, M)`` (groups of M consecutive weights along each row of that view, i.e. along the input
    dimension; same as block (1, M)). Only full blocks/groups count; partial edge blocks are dropped
    (see the module docstring).

    Variables: ``observed(scope, kept_count)`` (number of blocks with that many kept weights),
    ``expected(scope, kept_count)`` = n_blocks * Binomial(k, d).pmf with d the scope's kept density
    over its full blocks; per scope ``n_blocks``, ``n_weights_dropped``, ``density``,
    ``frac_empty_observed/expected``, ``frac_full_observed/expected``, ``dispersion`` (variance of
    the per-block count, population form, over k d (1 - d): 1 for a random set, k for whole-block
    pruning), ``chi2``, ``dof``, ``p_value`` (pooled Pearson chi-square); with ``nm`` also
    ``frac_nm_observed/expected`` (share of groups with at most N kept).
    """
    bh, bw, n_max, pattern = _pattern(block, nm)
    k = bh * bw
    given = kept is not None
    if not given:
        kept = kept_set(ds, event, effective, step)
    values = _kept_values(ds, kept)
    out = _density_dataset(_scope_counts(ds, values, bh, bw), k, n_max)
    out.attrs.update(
        pattern=pattern,
        mode="nm" if nm is not None else "block",
        block=[bh, bw],
        group_size=k,
        edge_rule=EDGE_RULE,
        test=POOLING_RULE,
        kept="given" if given else "kept_set",
    )
    if not given:
        out.attrs.update(event=int(event), effective=bool(effective))
        if step is not None:
            out.attrs["step"] = int(step)
    if nm is not None:
        out.attrs["nm"] = [n_max, bw]
    return out
