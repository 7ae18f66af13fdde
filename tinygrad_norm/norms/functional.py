"""Normalization by a pattern as a function, for what is not a layer (a weight plugin's weight, a one-off):

    normalize_by(w, "o ... -> o")      each output unit's weights standardized over its fan-in, fused

The fused normalize op on a plan made from the pattern, as a layer's; no parameters, no running statistics.
"""
from functools import lru_cache

from .normalize import normalize
from .pattern import Pattern
from .plan import make_plan


@lru_cache(maxsize=256)
def _pattern(text, owner):
    return Pattern(text, owner=owner)


@lru_cache(maxsize=256)
def _plan(text, shape, device, center, sizes, owner):
    return make_plan(_pattern(text, owner).bind(shape, dict(sizes)), set(), None, center, device)


def normalize_by(x, pattern, eps=1e-5, center=True, owner="normalize_by", **sizes):
    """(x − mean)/√(var + eps) over the axes `pattern` pools (x/√(mean x² + eps) without centering); `sizes`
    give the sizes of split axes, `owner` names the caller in errors."""
    plan = _plan(pattern, tuple(x.shape), x.device, bool(center), tuple(sorted(sizes.items())), owner)
    return normalize(x, [], plan, float(eps), plugin=owner, pattern=_pattern(pattern, owner))[0]
