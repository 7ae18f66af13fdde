"""Graph drawing (DOT content, clusters, collapse, rendering and its fallback) and the norm pictures."""
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import nn, norms, viz
from tinygrad_norm.norms import NormLayer

HAS_DOT = shutil.which("dot") is not None


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.norm = nn.LayerNorm(4)

    def forward(self, x):
        return self.norm(self.fc(x)).relu()


def node_lines(source):
    return [l for l in source.splitlines() if re.match(r"\s*[tfm]\d+ \[", l)]


def test_dot_source_of_a_known_graph():
    a = tg.Tensor(np.ones(3), requires_grad=True)
    b = tg.Tensor(np.ones(3), requires_grad=True)
    a.name = "a"
    c = a * b
    s = c + a
    y = s.sum()
    source = viz.draw_graph(y).source
    nodes = node_lines(source)
    assert len(nodes) == 8  # tensors a, b, c, s, y and ops Mul, Add, Sum
    assert len(nodes) == len({line.split()[0] for line in nodes}), "a node is defined twice"
    labels = ["".join(m) for m in re.findall(r'label=(?:"([^"]*)"|(\w+))', source)]  # quoted only when needed
    assert sorted(label.split("\\n")[0] for label in labels if not label.startswith("(")) == ["Add", "Mul", "Sum", "a"]
    edges = re.findall(r"(\w+) -> (\w+)", source)
    t, f = (lambda x: f"t{id(x)}"), (lambda x: f"f{id(x._ctx)}")
    expected = {(t(a), f(c)), (t(b), f(c)), (f(c), t(c)), (t(c), f(s)), (t(a), f(s)), (f(s), t(s)), (t(s), f(y)), (f(y), t(y))}
    assert len(edges) == len(set(edges)) and set(edges) == expected


def test_parameters_are_named_and_clustered_by_module(device):
    model = Tiny().to(device)
    source = viz.draw_graph(model(tg.randn(2, 3, device=device)), model).source
    for name in ("fc.weight", "fc.bias", "norm.weight", "norm.bias"):
        assert name in source
    assert "subgraph cluster_" in source and 'label="fc: Linear"' in source and 'label="norm: LayerNorm"' in source
    assert "#c7e9c0" in source  # parameters are drawn distinct from activations


def test_inputs_that_need_no_gradient_are_drawn_with_their_shape():
    model = Tiny()
    x = tg.randn(2, 3)
    source = viz.draw_graph((model(x) * 2).sum(), model).source
    node = next(line for line in node_lines(source) if line.strip().startswith(f"t{id(x)} "))
    assert "(2, 3) float32" in node and "dashed" in node
    assert re.search(rf"t{id(x)} -> f\d+", source)  # into the Linear op
    assert not [l for l in node_lines(source) if "() float32" in l and "dashed" in l]  # the scalar 2 is left out
    masked = nn.Sequential(nn.Linear(3, 3))
    masked[0].register_buffer("mask", tg.ones(3))  # a buffer read by an op: named and grey, not dashed data
    source = viz.draw_graph(masked(x) * masked[0].mask, masked).source
    node = next(line for line in node_lines(source) if "0.mask" in line)
    assert "#e0e0e0" in node and "dashed" not in node


def test_norm_ops_show_plugin_pattern_and_reduced_axes(device):
    """A CNN's graph, on every device."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.GroupNorm(2, 4)).to(device)
    source = viz.draw_graph(model(tg.randn(2, 1, 5, 5, device=device)), model).source
    assert "Normalize [group]\\nn (g c) ... -> n g\\nreduces c, ..." in source


def test_collapse_draws_a_module_as_one_box():
    model = Tiny()
    full = viz.draw_graph(model(tg.randn(2, 3)), model).source
    collapsed = viz.draw_graph(model(tg.randn(2, 3)), model, collapse=["fc"]).source
    assert "fc.weight" in full and "fc.weight" not in collapsed and "MatMul" not in collapsed
    assert 'label="fc\\nLinear"' in collapsed
    assert len(node_lines(collapsed)) < len(node_lines(full))
    box = re.search(r"(m\d+) \[", collapsed).group(1)
    assert re.search(rf"{box} -> t\d+", collapsed)  # the box feeds what comes after it
    with pytest.raises(ValueError, match="does not have"):
        viz.draw_graph(model(tg.randn(2, 3)), model, collapse=["nope"])


def test_gradient_shapes_after_backward_with_retained_graph():
    model = Tiny()
    loss = model(tg.randn(2, 3)).sum()
    loss.backward(retain_graph=True)
    assert "grad (4, 3)" in viz.draw_graph(loss, model, show_grad=True).source
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        viz.draw_graph(loss, model)


def test_ten_thousand_op_graph_is_drawn():
    x = tg.Tensor(np.ones(2), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    assert len(node_lines(viz.draw_graph(y).source)) == 20_001  # 10,000 ops, their outputs, and x


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz's `dot` is not installed (apt-get install graphviz)")
def test_render_svg_is_well_formed(tmp_path):
    model = Tiny()
    path = viz.render(viz.draw_graph(model(tg.randn(2, 3)), model), tmp_path / "g.svg")
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg") and "fc.weight" in path.read_text()
    assert viz.render(viz.draw_graph(model(tg.randn(2, 3)), model), tmp_path / "g", format="png").read_bytes()[:4] == b"\x89PNG"


def test_without_dot_the_source_is_written_and_the_user_told(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    model = Tiny()
    with pytest.warns(viz.GraphvizMissing, match=r"apt-get install graphviz.*dot -Tsvg"):
        path = viz.render(viz.draw_graph(model(tg.randn(2, 3)), model), tmp_path / "g.svg")
    assert path.suffix == ".dot" and path.read_text().startswith("digraph") and not (tmp_path / "g.svg").exists()
    with pytest.raises(ValueError, match="format must be"):
        viz.render(viz.draw_graph(model(tg.randn(2, 3)), model), tmp_path / "g.gif")


SHAPE = (4, 6, 3, 3)
n, c, h, w = np.indices(SHAPE)
EXPECTED = {  # which elements share statistics with element (0, 0, 0, 0), from each pattern by hand
    "batch": c == 0,                              # n c ... -> c
    "layer": n == 0,                              # LayerNorm((C, H, W)): each sample over C, H, W
    "instance": (n == 0) & (c == 0),              # n c ... -> n c
    "group": (n == 0) & (c < 2),                  # n (g c) ... -> n g, groups of two channels
    "local_response": (n == 0) & (c < 2) & (h == 0) & (w == 0),  # a window of 3 channels at one position
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_axes_picture_shades_exactly_the_pooled_elements(name):
    layer = viz.build_for_input(norms.get(name), SHAPE)
    mask = viz.pooled_mask(layer, SHAPE)
    np.testing.assert_array_equal(mask, EXPECTED[name])
    svg = viz.axes_svg([name], SHAPE)
    ET.fromstring(svg)
    m = mask.reshape(4, 6, 9)
    visible = m[0].sum() + m[:, :, 0].sum() + m[:, -1, :].sum()  # front, top and right faces
    assert svg.count('fill="#4a90d9"') == visible


def test_third_party_plugin_gets_its_picture_from_its_declaration():
    @norms.register(name="pixel_viz")
    class PixelNorm(NormLayer):
        pattern = "n c ... -> n ..."
        center = False

    try:
        mask = viz.pooled_mask(viz.build_for_input(PixelNorm, SHAPE), SHAPE)
        np.testing.assert_array_equal(mask, (n == 0) & (h == 0) & (w == 0))
        assert "pixel_viz: n c ... -&gt; n ..." in viz.axes_svg(["pixel_viz"], SHAPE)
    finally:
        norms.unregister("pixel_viz")


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tinygrad_norm.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_axes_and_graph(tmp_path):
    out = cli("axes", "batch", "group", "--shape", "2,4,2,2", "-o", str(tmp_path / "a.svg"))
    assert out.returncode == 0, out.stderr
    ET.parse(tmp_path / "a.svg")
    (tmp_path / "model.py").write_text("from tinygrad_norm import nn\n"
                                       "def build():\n    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))\n")
    out = cli("graph", f"{tmp_path / 'model.py'}:build", "--shape", "2,3", "-o", str(tmp_path / "g.svg"))
    assert out.returncode == 0, out.stderr
    written = tmp_path / ("g.svg" if HAS_DOT else "g.dot")
    assert written.exists() and "0.weight" in written.read_text()
    bad = cli("graph", "nonsense", "--shape", "2,3")
    assert bad.returncode != 0 and "FILE.py:FUNCTION" in bad.stderr
