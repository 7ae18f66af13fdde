"""The experiments behind the README's table, one module each (`python -m tinygrad_norm.experiments.NAME`), all
following protocol.py: a validation split chooses the learning rate, seeds repeat the run, verdicts are computed."""
