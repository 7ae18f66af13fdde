"""Rendering a graphviz graph, or, without Graphviz's `dot`, writing its source and saying how to get it."""
import pathlib
import shutil
import warnings

INSTALL_HINT = ("install Graphviz to render it (Debian/Ubuntu: apt-get install graphviz; macOS: brew install "
                "graphviz; conda: conda install graphviz)")


class GraphvizMissing(UserWarning):
    """`dot` is not on PATH: the DOT source was written instead of a picture."""


def render(dot, path, format=None):
    """Render `dot` (a graphviz.Digraph) to path as svg, png or pdf (from the suffix unless format is given).

    Without the `dot` program, writes the source to path with suffix .dot, warns with GraphvizMissing saying
    how to install Graphviz and render it, and returns that path. Returns the path written.
    """
    path = pathlib.Path(path)
    format = format or path.suffix.lstrip(".") or "svg"
    if format not in ("svg", "png", "pdf"):
        raise ValueError(f"format must be 'svg', 'png' or 'pdf'; got {format!r}")
    path = path.with_suffix("." + format)
    path.parent.mkdir(parents=True, exist_ok=True)
    if shutil.which("dot") is None:
        source = path.with_suffix(".dot")
        source.write_text(dot.source)
        warnings.warn(f"Graphviz's `dot` program was not found, so {path.name} was not drawn; wrote the DOT source "
                      f"to {source} instead. To get the picture, {INSTALL_HINT}, then run: "
                      f"dot -T{format} {source} -o {path}", GraphvizMissing, stacklevel=2)
        return source
    path.write_bytes(dot.pipe(format=format))
    return path
