"""Computation graphs as graphviz.Digraph: tensors (ellipses) and ops (boxes), clustered by module.

    dot = draw_graph(loss, model)        # parameters named as in model.named_parameters()
    render(dot, "graph.svg")             # or the .dot source and how to get Graphviz, when `dot` is missing

Parameters are green and named (`conv1.weight`), buffers grey, activations white, the output orange, inputs
that need no gradient (the data) dashed; norm ops are yellow and show their plugin, pattern and reduced
axes. The graph is read from the ops' recorded inputs: draw it before backward, or after
`backward(retain_graph=True)`.
"""
import graphviz

from ..engine import topological_order

STYLE = {
    "param": dict(shape="ellipse", style="filled", fillcolor="#c7e9c0", color="#31a354"),
    "buffer": dict(shape="ellipse", style="filled", fillcolor="#e0e0e0"),
    "tensor": dict(shape="ellipse", style="filled", fillcolor="white"),
    "data": dict(shape="ellipse", style="filled,dashed", fillcolor="white"),
    "output": dict(shape="ellipse", style="filled,bold", fillcolor="#fdd0a2"),
    "op": dict(shape="box", style="filled,rounded", fillcolor="#deebf7", color="#3182bd"),
    "norm": dict(shape="box", style="filled,rounded", fillcolor="#fee391", color="#d95f0e", penwidth="2"),
    "module": dict(shape="box3d", style="filled", fillcolor="#efedf5"),
}


def _shape(shape):
    return "(" + ", ".join(map(str, shape)) + ")"


class _Drawing:
    """One traversal of the graph into nodes grouped by module path, and edges."""

    def __init__(self, output, model, collapse, show_grad):
        self.output, self.show_grad = output, show_grad
        self.names, self.kinds, self.owner, self.paths, self.module_names = {}, {}, {}, {}, {}
        if model is not None:
            by_name = dict(model.named_modules())
            for name, m in by_name.items():
                parts = name.split(".") if name else []
                self.paths[id(m)] = (model,) + tuple(by_name[".".join(parts[:i])] for i in range(1, len(parts) + 1))
                self.module_names[id(m)] = name or type(m).__name__
                for kind, store in (("param", m._parameters), ("buffer", m._buffers)):
                    for key, t in store.items():
                        if t is not None and id(t) not in self.owner:  # a shared tensor keeps its first name
                            self.owner[id(t)], self.kinds[id(t)] = m, kind
                            self.names[id(t)] = f"{name}.{key}" if name else key
        unknown = set(collapse) - {self.module_names.get(id(m)) for m in (model.modules() if model else ())}
        if unknown:
            raise ValueError(f"collapse names modules the model does not have: {sorted(unknown)}")
        self.collapse = {id(m) for m in (model.modules() if model else ()) if self.module_names[id(m)] in set(collapse)}
        self.nodes, self.edges = {}, set()  # scope -> [(node id, attrs)], {(src, dst)}

    def place(self, path):
        """(cluster scope, collapsed module or None) for a module path: cut at the first collapsed module."""
        path = tuple(m for m in path if id(m) in self.module_names)
        for i, m in enumerate(path):
            if id(m) in self.collapse:
                return path[:i], m
        return path, None

    def where(self, t):
        """Placement of a tensor: by the op that made it, or for a leaf by the module that owns it."""
        if t._ctx is not None:
            return self.place(getattr(t._ctx, "scope", ()))
        owner = self.owner.get(id(t))
        return self.place(self.paths[id(owner)]) if owner is not None else ((), None)

    def tensor_label(self, t):
        name = self.names.get(id(t)) or t.name
        text = (f"{name}\n" if name else "") + f"{_shape(t.shape)} {t.dtype}"
        if self.show_grad and t.grad is not None:
            text += f"\ngrad {_shape(t.grad.shape)}"
        return text

    def node(self, scope, node, label, **attrs):
        """Add a node to a cluster; label lines become DOT's centred line breaks."""
        self.nodes.setdefault(scope, {})[node] = dict(attrs, label=label.replace("\n", "\\n"))

    def build(self):
        order = topological_order(self.output)
        consumers = {}  # id(tensor) -> collapsed modules (or None) of the ops that read it
        for t in order:
            if t._ctx is not None:
                if t._ctx.released:
                    raise RuntimeError("the graph was freed by backward(); draw it before backward, or call "
                                       "backward(retain_graph=True)")
                for x in t._ctx.inputs:
                    consumers.setdefault(id(x), set()).add(self.where(t)[1])
        for t in order:
            scope, collapsed = self.where(t)
            hidden = collapsed is not None and t is not self.output and consumers.get(id(t), set()) <= {collapsed}
            if collapsed is not None:
                self.node(scope, f"m{id(collapsed)}", label=f"{self.module_names[id(collapsed)]}\n"
                                                            f"{type(collapsed).__name__}", **STYLE["module"])
            if not hidden:
                kind = self.kinds.get(id(t), "output" if t is self.output else "tensor")
                self.node(scope, f"t{id(t)}", label=self.tensor_label(t), **STYLE[kind])
            fn = t._ctx
            if fn is None:
                continue
            op = f"m{id(collapsed)}" if collapsed is not None else f"f{id(fn)}"
            if collapsed is None:
                self.node(scope, op, label=fn.label(), **STYLE["norm" if getattr(fn, "pattern", None) else "op"])
            if not hidden:
                self.edges.add((op, f"t{id(t)}"))
            for x in fn.inputs:
                src = self.source(x, consumers)
                if src is not None and src != op:
                    self.edges.add((src, op))
        return self.emit()

    def source(self, x, consumers):
        """The node an edge from x starts at: x itself, the box of the collapsed module that hides it, or None for
        a scalar constant. An input that needs no gradient is outside the traversal, so it gets its node here."""
        scope, collapsed = self.where(x)
        if collapsed is not None and consumers.get(id(x), set()) <= {collapsed}:
            return f"m{id(collapsed)}"
        if not x.requires_grad:
            if x.ndim == 0:  # a Python number lifted into the graph (the 2 of x * 2) would only add clutter
                return None
            self.node(scope, f"t{id(x)}", label=self.tensor_label(x), **STYLE[self.kinds.get(id(x), "data")])
        return f"t{id(x)}"

    def emit(self):
        dot = graphviz.Digraph("graph", graph_attr=dict(rankdir="TB", newrank="true", fontname="Helvetica", fontsize="10"),
                               node_attr=dict(fontname="Helvetica", fontsize="10"))
        children = {}
        for scope in self.nodes:
            for k in range(len(scope)):
                children.setdefault(scope[:k], []).append(scope[:k + 1])

        def fill(graph, scope):
            for node, attrs in self.nodes.get(scope, {}).items():
                graph.node(node, **attrs)
            for child in dict.fromkeys(children.get(scope, ())):  # unique, in first-seen order
                m = child[-1]
                with graph.subgraph(name=f"cluster_{id(m)}") as sub:
                    sub.attr(label=f"{self.module_names[id(m)]}: {type(m).__name__}", style="rounded,dashed",
                             color="#9e9ac8", fontname="Helvetica", fontsize="10")
                    fill(sub, child)
        fill(dot, ())
        for src, dst in sorted(self.edges):
            dot.edge(src, dst)
        return dot


def draw_graph(output, model=None, collapse=(), show_grad=False):
    """The graph behind `output` (a Tensor, typically a loss) as a graphviz.Digraph.

    model: names parameters and buffers and clusters ops by the module that ran them; collapse: names of
    modules (as in model.named_modules()) to draw as one box each; show_grad: add gradient shapes.
    """
    return _Drawing(output, model, collapse, show_grad).build()
