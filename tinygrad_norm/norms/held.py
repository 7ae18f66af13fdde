"""Quantities a plugin's gradient deliberately does not flow through: batch renormalization's corrections r
and d, spectral normalization's singular vectors. The gradient treats them as constants, so central
differences of the forward, which recomputes them at every perturbed input, would disagree with it.

    r, d = held(self, "corrections", lambda: corrections(mean, var))

Outside `holding()`, held computes. Inside (the conformance checker's derivative checks run there), the first
value of each (owner, name) is kept and reused, so every evaluation is the function autograd differentiates:
the forward with those quantities fixed at the unperturbed input.
"""
import contextlib

_kept = None


def held(owner, name, compute):
    """compute(), or inside holding() the value it gave first for this owner and name."""
    if _kept is None:
        return compute()
    key = (id(owner), name)
    if key not in _kept:
        _kept[key] = compute()
    return _kept[key]


@contextlib.contextmanager
def holding():
    global _kept
    saved, _kept = _kept, {}
    try:
        yield
    finally:
        _kept = saved
