"""The ``shedding`` command line (Typer)."""
