"""shedding: record and analyse cascade weight shedding in pruned neural networks."""

__version__ = "0.1.0"
