"""Which elements share one set of statistics: the N × C × (H·W) cube of the Group Normalization paper's
figure 2, one cube per plugin, as plain SVG (standard library only).

The pooled set is found from the plugin itself, not from a table: the elements whose values change one
output element are exactly those it is normalized with, so the gradient of y[0, 0, 0, 0] with respect to
x marks them. Any registered plugin, including a third-party one, gets its picture for free.
"""
import pathlib
from xml.sax.saxutils import escape

import numpy as np

from ..norms import NormLayer, Pattern, acts_on, available, display_name, resolve
from ..norms.pattern import ELLIPSIS
from ..tensor import Tensor


def build_for_input(cls, shape):
    """A layer of plugin `cls` that fits input `shape`: the plugin's own `for_input` if it has one, else one
    built from its declared parameter axes (num_features = their sizes in `shape`)."""
    if hasattr(cls, "for_input"):
        return cls.for_input(shape)
    if getattr(cls, "pattern", None) is None:
        raise TypeError(f"plugin {display_name(cls)!r} has its own forward and no for_input(shape) to build it for a "
                        f"picture")
    pattern = Pattern(cls.pattern, owner=display_name(cls))
    if not cls.param_axes:
        return cls()
    items = pattern.inputs  # each parameter token's input axis; those after "..." count from the end
    at = {item: (i if ELLIPSIS not in items[:i] else i - len(items)) for i, item in enumerate(items)}
    features = tuple(shape[at[token]] for token in pattern.token(cls.param_axes))
    return cls(features[0] if len(features) == 1 else features)


def pooled_mask(layer, shape, at=(0, 0, 0, 0)):
    """Boolean array of `shape`: True where the input element shares statistics with element `at`, found from
    the gradient of the layer's output there."""
    return _reach(layer, shape, at, lambda x: layer(x))


def statistic_mask(layer, shape, which=None, at=(0, 0, 0, 0)):
    """As pooled_mask, from the gradient of the layer's pooled mean over pattern `which` (a name of its
    `statistics`, None the main pattern): a plugin with several patterns or further inputs gets one per pattern."""
    return _reach(layer, shape, at, lambda x: layer.pool(x, which).expand(shape))


def _reach(layer, shape, at, of):
    """Which elements of a random input the value of of(x) at `at` depends on."""
    x = Tensor(np.random.default_rng(0).standard_normal(shape), requires_grad=True)
    layer = layer.double() if hasattr(layer, "double") else layer
    layer.train()
    y = of(x)
    g = np.zeros(shape)
    g[at] = 1.0
    y.backward(g)
    return np.abs(x.grad.numpy()) > 1e-12


def masks(layer, name):
    """(title, mask) for each picture of one layer: one per declared pattern where its forward is its own
    (several patterns, further inputs), else the output's."""
    patterns = getattr(layer, "patterns", None)
    own = patterns is not None and (len(patterns) > 1 or type(layer).forward is not NormLayer.forward)
    if not own:
        return [(f"{name}: {_describe(layer)}", lambda shape: pooled_mask(layer, shape))]
    return [(f"{name}{'' if which is None else f' [{which}]'}: {p.text}",
             lambda shape, which=which: statistic_mask(layer, shape, which)) for which, p in patterns.items()]


def cube_svg(mask, title, cell=14, origin=(10, 30)):
    """SVG group for one cube: front face C × (H·W) at n = 0, top face C × N, right face N × (H·W)."""
    n, c = mask.shape[:2]
    m = mask.reshape(n, c, -1)
    hw = m.shape[2]
    dx, dy = cell * 0.6, -cell * 0.45  # one step in depth (n)
    ox, oy = origin[0], origin[1] + n * -dy + 16
    shade, plain = "#4a90d9", "#ffffff"
    parts = [f'<text x="{ox}" y="{origin[1]}" font-family="Helvetica" font-size="13">{escape(title)}</text>']

    def poly(points, filled):
        pts = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        parts.append(f'<polygon points="{pts}" fill="{shade if filled else plain}" stroke="#555" stroke-width="0.6"/>')
    for ci in range(c):  # front face (n = 0): x = channel, y = spatial position
        for s in range(hw):
            x0, y0 = ox + ci * cell, oy + s * cell
            poly([(x0, y0), (x0 + cell, y0), (x0 + cell, y0 + cell), (x0, y0 + cell)], m[0, ci, s])
    for k in range(n):  # top face (first spatial position): x = channel, depth = sample
        for ci in range(c):
            x0, y0 = ox + ci * cell + k * dx, oy + k * dy
            poly([(x0, y0), (x0 + cell, y0), (x0 + cell + dx, y0 + dy), (x0 + dx, y0 + dy)], m[k, ci, 0])
    for k in range(n):  # right face (last channel): depth = sample, y = spatial position
        for s in range(hw):
            x0, y0 = ox + c * cell + k * dx, oy + s * cell + k * dy
            poly([(x0, y0), (x0 + dx, y0 + dy), (x0 + dx, y0 + dy + cell), (x0, y0 + cell)], m[k, c - 1, s])
    label = oy + hw * cell + 16
    parts.append(f'<text x="{ox}" y="{label}" font-family="Helvetica" font-size="10">C → (down: H·W, back: N)</text>')
    width = c * cell + n * dx + 20
    height = label - origin[1] + 10
    return "\n".join(parts), width, height


def drawable():
    """Registered plugins that normalize activations (one that acts on weights has no such picture)."""
    return available(acting_on="activations")


def axes_svg(plugins, shape=(4, 6, 3, 3), path=None, per_row=6):
    """One cube per plugin (a registered name or a plugin class), or one per pattern of a plugin that declares
    several, `per_row` to a row, for an input of `shape` (N, C, H, W); the shaded cells share statistics with
    the front-top-left one. Returns the SVG text, and writes it to `path` (creating its folder) when given."""
    shape = tuple(shape)
    if len(shape) != 4 or not all(isinstance(n, int) and n > 0 for n in shape):
        raise ValueError(f"axes_svg draws an (N, C, H, W) input: four positive sizes; got {shape}")
    cubes = []
    for plugin in plugins:
        cls = resolve(plugin)
        if acts_on(cls) != "activations":
            raise ValueError(f"plugin {display_name(cls)!r} acts on {acts_on(cls)}: there is no input to shade")
        layer = build_for_input(cls, shape)
        cubes += [(title, cube_svg(mask(shape), title)) for title, mask in masks(layer, display_name(cls))]
    groups, width, top = [], 0.0, 0.0
    for start in range(0, len(cubes), per_row):
        x, height = 0.0, 0.0
        for title, (body, w, h) in cubes[start:start + per_row]:
            groups.append(f'<g transform="translate({x:.0f},{top:.0f})">\n{body}\n</g>')
            x, height = x + max(w, 7 * len(title)) + 20, max(height, h)
        width, top = max(width, x), top + height + 40
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 10:.0f}" height="{top:.0f}" '
           f'viewBox="0 0 {width + 10:.0f} {top:.0f}">\n<rect width="100%" height="100%" fill="white"/>\n'
           + "\n".join(groups) + "\n</svg>\n")
    if path is not None:
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(svg)
    return svg


def _describe(layer):
    return getattr(getattr(layer, "pattern", None), "text", None) or "own forward"
