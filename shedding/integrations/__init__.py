"""Optional callbacks that record a framework's training with :func:`shedding.watch`:
:mod:`shedding.integrations.lightning` (``pip install shedding[lightning]``) and
:mod:`shedding.integrations.hf` (``pip install shedding[hf]``). Each imports its framework only
when it is imported itself; ``import shedding`` needs neither (docs/integrations.md)."""
