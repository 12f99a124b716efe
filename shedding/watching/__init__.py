"""Recording any PyTorch run: :func:`shedding.watching.watch.watch` (``shedding.watch``)."""
