"""shedding: record and analyse cascade weight shedding in pruned neural networks."""

__version__ = "0.1.0"


def __getattr__(name: str):  # noqa: ANN202 - lazy: ``import shedding`` stays light
    """``shedding.watch``: :func:`shedding.watching.watch.watch`, imported on first use."""
    if name == "watch":
        from shedding.watching.watch import watch

        return watch
    raise AttributeError(f"module 'shedding' has no attribute {name!r}")
