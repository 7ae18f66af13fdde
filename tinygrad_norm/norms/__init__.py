"""The normalization core: the pattern language, the fused normalize op, NormLayer, the registry, the checker.

It knows how to normalize along declared axes and nothing of any particular normalization.
"""
from .layer import NormLayer
from .normalize import Normalize
from .weights import WeightPlugin
from .functional import normalize_by
from .held import held, holding
from .pattern import Pattern, PatternError
from .check import CheckReport, check
from .registry import (NormPluginError, acts_on, available, display_name, failures, get, origin, problem, refresh,
                       register, resolve, unregister)
