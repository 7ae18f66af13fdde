"""The statistics pattern: "input axes -> axes that keep their own statistics"; every other axis is reduced.

    "n c ... -> c"          BatchNorm: one mean/variance per channel, pooled over batch and space
    "n (g c) ... -> n g"    GroupNorm: channels split into g groups of c; one statistic per sample and group
    "... d -> ..."          LayerNorm: one statistic per position, pooled over the trailing feature axis

`...` stands for any number of axes (possibly none); `(g c)` splits one input axis into two, at most
one of whose sizes may be unknown. Parsed once; `bind` fits it to a concrete input shape.
"""
import math
import re
from dataclasses import dataclass

ELLIPSIS = "..."
_TOKEN = re.compile(r"\s*(\(|\)|\.\.\.|[A-Za-z_][A-Za-z0-9_]*)")


class PatternError(ValueError):
    """A declaration or an input that does not fit it; the message names the plugin, the pattern and the shape."""


def _tokens(side, owner, text):
    out, pos, group = [], 0, None
    side = side.strip()
    while pos < len(side):
        m = _TOKEN.match(side, pos)
        if not m:
            raise PatternError(f"{owner}: cannot read pattern {text!r} at {side[pos:]!r}")
        tok, pos = m.group(1), m.end()
        if tok == "(":
            if group is not None:
                raise PatternError(f"{owner}: nested parentheses in pattern {text!r}")
            group = []
        elif tok == ")":
            if not group:
                raise PatternError(f"{owner}: empty or unopened group in pattern {text!r}")
            out.append(tuple(group))
            group = None
        elif group is not None:
            if tok == ELLIPSIS:
                raise PatternError(f"{owner}: '...' cannot be inside a group in pattern {text!r}")
            group.append(tok)
        else:
            out.append(tok)
    if group is not None:
        raise PatternError(f"{owner}: unclosed '(' in pattern {text!r}")
    return out


def _names(items):
    for item in items:
        yield from (item if isinstance(item, tuple) else (item,))


@dataclass(frozen=True)
class Binding:
    """A pattern fitted to one input shape. Per axis of the split ("expanded") shape: size, name, reduced or kept."""
    expanded_shape: tuple
    names: tuple
    reduced: tuple
    spans: tuple = ()  # per input axis, how many expanded axes it splits into

    @property
    def reduce_axes(self):
        return tuple(i for i, r in enumerate(self.reduced) if r)

    @property
    def count(self):
        """How many elements share one set of statistics."""
        return math.prod(n for n, r in zip(self.expanded_shape, self.reduced) if r)


class Pattern:
    """A parsed statistics pattern. `owner` (the plugin's name) appears in every error."""

    def __init__(self, text, owner="norm"):
        if text.count("->") != 1:
            raise PatternError(f"{owner}: pattern {text!r} needs exactly one '->' between input axes and kept axes")
        self.text, self.owner = text, owner
        left, right = text.split("->")
        self.inputs, self.kept = _tokens(left, owner, text), _tokens(right, owner, text)
        names = list(_names(self.inputs))
        if not self.inputs:
            raise PatternError(f"{owner}: pattern {text!r} names no input axes")
        if len(set(names)) != len(names):
            raise PatternError(f"{owner}: pattern {text!r} repeats an axis name")
        if len(set(self.kept)) != len(self.kept):
            twice = sorted({k for k in self.kept if self.kept.count(k) > 1}, key=str)
            raise PatternError(f"{owner}: pattern {text!r} keeps axis {twice[0]!r} twice; each kept axis is named once")
        for item in self.kept:
            if isinstance(item, tuple):
                raise PatternError(f"{owner}: kept axes cannot be grouped in pattern {text!r}")
            if item not in names:
                raise PatternError(f"{owner}: pattern {text!r} keeps axis {item!r}, which is not among its input axes")
        self.has_ellipsis = ELLIPSIS in self.inputs

    def __repr__(self):
        return f"Pattern({self.text!r})"

    def token(self, text):
        """Parse a parameter-axes declaration ("c", "(g c)", "d0 d1") into input tokens of this pattern."""
        items = _tokens(text, self.owner, text)
        for item in items:
            if item not in self.inputs or item == ELLIPSIS:
                raise PatternError(f"{self.owner}: parameter axes {text!r} must be input axes of pattern {self.text!r}")
        return items

    def reduced_names(self):
        """Names of the axes reduced over ("..." included when it is reduced), for labels."""
        kept = set(self.kept)
        return [n for n in _names(self.inputs) if n not in kept]

    def fit_sizes(self, item, size, sizes):
        """Sizes of the names in one input token whose total is `size`; checks divisibility and known sizes."""
        if not isinstance(item, tuple):
            return {item: size}
        unknown = [n for n in item if n not in sizes]
        known = math.prod(sizes[n] for n in item if n in sizes)
        if len(unknown) > 1:
            raise PatternError(f"{self.owner}: pattern {self.text!r}: group ({' '.join(item)}) needs the size of all "
                               f"but one of {item}; only {sorted(set(item) - set(unknown))} are given")
        if (unknown and size % known) or (not unknown and size != known):
            got = ", ".join(f"{n}={sizes[n]}" for n in item if n in sizes)
            why = f"{got} does not divide" if unknown else f"is not the product of {got}"
            raise PatternError(f"{self.owner}: pattern {self.text!r}: axis ({' '.join(item)}) has size {size}, which {why}")
        out = {n: sizes[n] for n in item if n in sizes}
        out.update({n: size // known for n in unknown})
        return out

    def bind(self, shape, sizes=None):
        """Fit the pattern to an input shape, given known axis sizes (name -> int)."""
        sizes = dict(sizes or {})
        shape = tuple(shape)
        named = len(self.inputs) - self.has_ellipsis
        if len(shape) < named or (len(shape) != named and not self.has_ellipsis):
            want = f"at least {named}" if self.has_ellipsis else f"exactly {named}"
            raise PatternError(f"{self.owner}: pattern {self.text!r} needs input with {want} axes; got shape {shape}")
        free = len(shape) - named
        kept = set(self.kept)
        ex_shape, names, reduced, spans, dim = [], [], [], [], 0
        for item in self.inputs:
            if item == ELLIPSIS:
                for k in range(free):
                    ex_shape.append(shape[dim]), names.append(f"...{k}"), reduced.append(ELLIPSIS not in kept)
                    spans.append(1)
                    dim += 1
                continue
            part = self.fit_sizes(item, shape[dim], sizes)
            for n in (item if isinstance(item, tuple) else (item,)):
                if n in sizes and sizes[n] != part[n]:
                    raise PatternError(f"{self.owner}: pattern {self.text!r} expects axis {n} of size {sizes[n]}; "
                                       f"input shape {shape} gives {part[n]}")
                ex_shape.append(part[n]), names.append(n), reduced.append(n not in kept)
            spans.append(len(part))
            dim += 1
        return Binding(tuple(ex_shape), tuple(names), tuple(reduced), tuple(spans))
