"""The minimal training loop, its callbacks, optimizers and learning-rate schedules."""
