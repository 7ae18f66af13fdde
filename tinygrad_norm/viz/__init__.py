"""Pictures of what you built: computation graphs (graphviz) and which elements each norm pools (SVG)."""
from .axes import axes_svg, build_for_input, drawable, pooled_mask, statistic_mask
from .graph import draw_graph
from .render import GraphvizMissing, render
