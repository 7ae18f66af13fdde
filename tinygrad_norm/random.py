"""The framework's random number generator, seeded with `manual_seed` for reproducible runs."""
import numpy as np

_rng = np.random.default_rng()


def manual_seed(seed):
    """Seed parameter initialisation, dropout masks and anything else drawn from `rng()`."""
    global _rng
    _rng = np.random.default_rng(seed)


def rng():
    return _rng
