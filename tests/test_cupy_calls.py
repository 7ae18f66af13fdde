"""An audit of the code's CuPy-level calls, and of its CuPy-only branches, read from the AST.

Two crashes on a real GPU were calls that NumPy takes and CuPy does not (`as_strided(..., writeable=...)`,
`cupy.max(..., initial=...)`), on paths CI never runs. So every call the code makes through an array module is
listed, with its keywords, and checked against CuPy's own signature wherever CuPy imports (no GPU needed).

How the array-module names are found (nothing here is a list of names):

* producers: functions that return an array module. The seeds are `sys.modules["cupy"]`,
  `sys.modules.get("cupy")`, `importlib.import_module("cupy")` and names bound by `import cupy` / `import cupyx`
  / `from cupy.x import y`; a function whose `return` gives one of those, a call to a producer, or an `a if c
  else b` with one of them is a producer too, to a fixpoint (so get_array_module, module_for, cupy_or_raise
  are found, not named). Producers are matched by name, so `backend.module_for(d)` counts as well.
* in every function, a name is an array-module name when an import of cupy/cupyx binds it, when it is assigned
  (a tuple too) from a producer call or another array-module name, or when it is a parameter named `xp`, this
  code's name for the array module (the factories' `lambda xp, shape, dtype:`, `quiet(xp)`); `xp_` is not.
* a call is an array-module call when its function is `ROOT.attr[.attr...]`, ROOT being such a name, a producer
  call (`get_array_module(x).sqrt(a)`) or `sys.modules["cupy"]`; or a bare name imported from CuPy.
  An array-module attribute that is not called (`xp.inf`, `lambda xp: xp.maximum`) is a reference: it must
  exist in CuPy. Methods of arrays (`a.astype(...)`) are out of scope.

CuPy-only branches are found from the AST too, each named by file and enclosing function: a comparison with
an array module by `is` (`xp is np`, `cupy is not None`) or of its `__name__`; a comparison with "cuda" or "cpu"
(`device == "cuda"`); `isinstance(x, cupy.ndarray)`, and calls to a function that returns that; `hasattr(x,
"get")` and argument-less `x.get()` (CuPy's copy to the host); an import of cupy or cupyx; a call or attribute
through a name that can only be CuPy (`cupy_or_raise().asarray`); a literal naming "cuda" but not "cpu"
(`devices = ("cuda",)`). The README's `#### CuPy-only branches` section must name each, so that list cannot rot.
"""
import ast
import functools
import importlib
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("tinygrad_norm", "plugins")
README_HEADING = "#### CuPy-only branches"

# The keywords a CuPy ufunc (cupy._core._kernel.ufunc: cupy.add, cupy.sqrt, ...; inspect.signature cannot read
# one) accepts. From CuPy's source, cupy/_core/_kernel.pyx (github.com/cupy/cupy; the .pyx is not installed):
# ufunc.__call__(self, *args, **kwargs) pops `out`, `_where`, `dtype` and `casting` and raises TypeError("Wrong
# arguments ...") on anything left; the installed CuPy 14.2's docstring documents out and dtype. `_where` is
# private and left out. NumPy's `where=`, `order=`, `subok=` are NOT accepted. Positional arguments: from
# ufunc.nin to ufunc.nargs (the inputs, then optional outputs).
UFUNC_KEYWORDS = frozenset({"out", "dtype", "casting"})

SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


# ---- what the scanner records -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Module:
    """What an expression is when it is an array module: `cupy` or `cupyx` (`top`), maybe a part of it
    (`prefix`, "cuda.nvrtc" for `from cupy.cuda import nvrtc`), and whether it can only be CuPy (`only_cupy`:
    an import of CuPy, not `get_array_module(x)`, which is NumPy on the CPU)."""
    top: str
    prefix: str = ""
    only_cupy: bool = False


@dataclass(frozen=True)
class Call:
    """One array-module call (or, with positional None, one uncalled reference)."""
    file: str
    line: int
    function: str
    top: str
    path: str
    positional: int = None
    keywords: tuple = ()
    star_args: bool = False
    star_kwargs: bool = False

    @property
    def name(self):
        return f"{self.top}.{self.path}"

    @property
    def where(self):
        return f"{self.file}:{self.line}"

    @property
    def arguments(self):
        """The call's arguments as the table shows them: `2, out=, **kw`."""
        parts = [str(self.positional)] + ["*args"] * self.star_args + [f"{k}=" for k in self.keywords]
        return ", ".join(parts + ["**kwargs"] * self.star_kwargs)


@dataclass(frozen=True)
class Branch:
    """A place where code runs only with CuPy, named by file and enclosing function."""
    file: str
    line: int
    function: str
    why: str

    @property
    def key(self):
        return f"{self.file}: {self.function}"


# ---- reading the AST ----------------------------------------------------------------------------------------
def dotted(node):
    """"sys.modules.get" for that expression, None for anything but names and attributes."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return base and f"{base}.{node.attr}"
    return None


def called_name(func):
    """The last name of a called expression: `module_for` for `backend.module_for`."""
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def cupy_module(name):
    """A Module for a dotted module name under cupy or cupyx ("cupy.cuda.nvrtc"), else None."""
    top, _, rest = (name or "").partition(".")
    return Module(top, rest, only_cupy=True) if top in ("cupy", "cupyx") else None


def string_arg(call):
    return call.args[0].value if call.args and isinstance(call.args[0], ast.Constant) else None


def own_nodes(scope):
    """The nodes of a scope, without descending into nested functions, lambdas or classes."""
    todo = list(ast.iter_child_nodes(scope))
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, SCOPES):
            todo.extend(ast.iter_child_nodes(node))


def module_of(node, lookup, producers):
    """The Module an expression evaluates to when it is an array module, else None."""
    if isinstance(node, ast.Name):
        return lookup(node.id)
    if isinstance(node, ast.IfExp):
        a, b = module_of(node.body, lookup, producers), module_of(node.orelse, lookup, producers)
        if a or b:
            return Module((a or b).top, (a or b).prefix, only_cupy=bool(a and a.only_cupy and b and b.only_cupy))
    if isinstance(node, ast.Call):
        if dotted(node.func) in ("sys.modules.get", "importlib.import_module"):
            return cupy_module(string_arg(node))
        return producers.get(called_name(node.func))
    if isinstance(node, ast.Subscript) and dotted(node.value) == "sys.modules":
        return cupy_module(node.slice.value if isinstance(node.slice, ast.Constant) else None)
    return None


def imported_modules(node):
    """{bound name: Module} for an import of CuPy: `import cupy`, `from cupy.cuda import nvrtc`."""
    if isinstance(node, ast.Import):
        return {a.asname or a.name.split(".")[0]: cupy_module(a.name if a.asname else a.name.split(".")[0])
                for a in node.names if cupy_module(a.name)}
    if isinstance(node, ast.ImportFrom) and not node.level and cupy_module(node.module):
        return {a.asname or a.name: cupy_module(f"{node.module}.{a.name}") for a in node.names}
    return {}


def bind(target, value, names, lookup, producers):
    """Record in `names` the array modules an assignment binds (element by element for tuples)."""
    if isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List)):
        for t, v in zip(target.elts, value.elts):
            bind(t, v, names, lookup, producers)
    elif isinstance(target, ast.Name):
        module = module_of(value, lookup, producers)
        if module:
            names[target.id] = module


def scope_modules(scope, outer, producers):
    """{name: Module} for the array-module names a module, function or lambda binds itself."""
    names = {}
    if isinstance(scope, FUNCTIONS):
        args = scope.args
        for a in args.posonlyargs + args.args + args.kwonlyargs:
            if a.arg == "xp":
                names["xp"] = Module("cupy")
    lookup = lambda n: names.get(n) or outer(n)
    for _ in range(3):  # `a = get_array_module(x)` then `b = a`, in whatever order the walk meets them
        for node in own_nodes(scope):
            names.update(imported_modules(node))
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    bind(target, node.value, names, lookup, producers)
            elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
                bind(node.target, node.value, names, lookup, producers)
    return names


def parse_files():
    """{path relative to the repository: its AST} for every .py under tinygrad_norm/ and plugins/."""
    files = sorted(p for d in SCANNED for p in (ROOT / d).rglob("*.py"))
    return {p.relative_to(ROOT).as_posix(): ast.parse(p.read_text(encoding="utf-8"), str(p)) for p in files}


def find_producers(trees):
    """{function name: Module} for the functions that return an array module (to a fixpoint)."""
    producers = {}
    while True:
        found = dict(producers)
        for tree in trees.values():
            outer = scope_modules(tree, lambda n: None, producers)
            for fn in ast.walk(tree):
                if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                names = scope_modules(fn, outer.get, producers)
                lookup = lambda n: names.get(n) or outer.get(n)
                returned = [module_of(r.value, lookup, producers) for r in own_nodes(fn)
                            if isinstance(r, ast.Return) and r.value is not None]
                modules = [m for m in returned if m]
                if modules:
                    only = all(returned) and all(m.only_cupy for m in modules)  # every return is CuPy
                    found[fn.name] = Module(modules[0].top, modules[0].prefix, only_cupy=only)
        if found == producers:
            return producers
        producers = found


# ---- the scanner --------------------------------------------------------------------------------------------
class Scanner(ast.NodeVisitor):
    """Walks one file: its array-module calls and references, and its CuPy-only branches."""

    def __init__(self, file, producers, predicates=frozenset()):
        self.file, self.producers, self.predicates = file, producers, predicates
        self.scopes, self.where, self.returning = [], [], 0
        self.calls, self.references, self.branches = [], [], []
        self.new_predicates = set()  # functions that return `isinstance(x, cupy.ndarray)`

    # -- scopes
    def lookup(self, name):
        return next((s[name] for s in reversed(self.scopes) if name in s), None)

    def enter(self, node):
        self.scopes.append({})
        self.scopes[-1].update(scope_modules(node, self.lookup, self.producers))
        self.generic_visit(node)
        self.scopes.pop()

    visit_Module = visit_Lambda = enter

    def visit_FunctionDef(self, node):
        self.where.append(node.name)
        self.enter(node)
        self.where.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self.where.append(node.name)
        self.generic_visit(node)
        self.where.pop()

    def visit_Return(self, node):
        self.returning += 1
        self.generic_visit(node)
        self.returning -= 1

    @property
    def function(self):
        return ".".join(self.where) or "<module>"

    # -- array-module calls and references
    def target(self, expr):
        """(Module, dotted path in it, the root expression) when expr is `ROOT.a.b`, else None."""
        parts = []
        while isinstance(expr, ast.Attribute):
            parts.append(expr.attr)
            expr = expr.value
        module = module_of(expr, self.lookup, self.producers)
        path = ".".join(p for p in [module and module.prefix] + parts[::-1] if p)
        return (module, path, expr) if module and path else None

    def visit_Call(self, node):
        self.note_branch_call(node)
        found = self.target(node.func)
        if not found:
            return self.generic_visit(node)
        module, path, root = found
        self.calls.append(Call(self.file, node.lineno, self.function, module.top, path,
                               positional=sum(not isinstance(a, ast.Starred) for a in node.args),
                               keywords=tuple(k.arg for k in node.keywords if k.arg),
                               star_args=any(isinstance(a, ast.Starred) for a in node.args),
                               star_kwargs=any(k.arg is None for k in node.keywords)))
        if module.only_cupy:
            self.branch(node, f"calls {module.top}.{path}")
        for child in [root] + node.args + [k.value for k in node.keywords]:
            if not isinstance(child, ast.Name):
                self.visit(child)

    def visit_Attribute(self, node):
        found = self.target(node)
        if not found:
            return self.generic_visit(node)
        module, path, root = found
        self.references.append(Call(self.file, node.lineno, self.function, module.top, path))
        if module.only_cupy:
            self.branch(node, f"uses {module.top}.{path}")
        if not isinstance(root, ast.Name):
            self.visit(root)

    # -- CuPy-only branches
    def branch(self, node, why):
        self.branches.append(Branch(self.file, node.lineno, self.function, why))

    def is_module(self, node):
        return module_of(node, self.lookup, self.producers) is not None

    def visit_Compare(self, node):
        """`xp is np`, `xp is not cupy`, `cupy is None`; `device == "cuda"`, `d != "cpu"`; `xp.__name__ == ...`."""
        operands = [node.left] + node.comparators
        if any(isinstance(op, (ast.Is, ast.IsNot)) for op in node.ops) and any(map(self.is_module, operands)):
            self.branch(node, "tests which array module it has")
        elif any(isinstance(o, ast.Constant) and o.value in ("cuda", "cpu") for o in operands):
            self.branch(node, "tests the device name")
        elif any(isinstance(o, ast.Attribute) and o.attr == "__name__" and self.is_module(o.value) for o in operands):
            self.branch(node, "tests the array module's name")
        self.generic_visit(node)

    def note_branch_call(self, node):
        """isinstance(x, cupy.ndarray), a call to a function that returns one, hasattr(x, "get"), x.get()."""
        name = called_name(node.func)
        if name == "isinstance" and len(node.args) == 2 and self.is_cupy_type(node.args[1]):
            self.branch(node, "tests for a CuPy array")
            if self.returning and self.where:
                self.new_predicates.add(self.where[-1])
        elif name in self.predicates:
            self.branch(node, f"tests {name}(...)")
        elif name in ("hasattr", "getattr") and len(node.args) >= 2 and getattr(node.args[1], "value", None) == "get":
            self.branch(node, "tests for a .get() method (CuPy's device-to-host copy)")
        elif name == "get" and isinstance(node.func, ast.Attribute) and not node.args and not node.keywords:
            self.branch(node, "copies a CuPy array to the host (.get())")

    def is_cupy_type(self, node):
        """`cupy.ndarray`, or a tuple of types with it."""
        if isinstance(node, ast.Tuple):
            return any(map(self.is_cupy_type, node.elts))
        found = self.target(node) if isinstance(node, ast.Attribute) else None
        return bool(found) and found[1] == "ndarray"

    def visit_Tuple(self, node):
        """A literal that names the "cuda" device and not "cpu": `devices = ("cuda",)` declares GPU-only code."""
        names = {e.value for e in node.elts if isinstance(e, ast.Constant)}
        if "cuda" in names and "cpu" not in names:
            self.branch(node, "declares that it runs on cuda only")
        self.generic_visit(node)

    visit_List = visit_Set = visit_Tuple

    def visit_Import(self, node):
        if imported_modules(node):
            self.branch(node, "imports " + ", ".join(m.top + "." * bool(m.prefix) + m.prefix
                                                     for m in imported_modules(node).values()))

    visit_ImportFrom = visit_Import


@dataclass
class Scan:
    calls: list
    references: list
    branches: list


def scan(trees, producers=None):
    """Every array-module call, reference and CuPy-only branch in `trees` ({file: AST})."""
    producers = find_producers(trees) if producers is None else producers
    first = [Scanner(f, producers) for f in trees]
    for s in first:
        s.visit(trees[s.file])
    predicates = frozenset().union(*(s.new_predicates for s in first))
    scanners = [Scanner(f, producers, predicates) for f in trees]
    for s in scanners:
        s.visit(trees[s.file])
    return Scan([c for s in scanners for c in s.calls], [r for s in scanners for r in s.references],
                [b for s in scanners for b in s.branches])


def scan_source(text, file="<synthetic>"):
    return scan({file: ast.parse(text)})


@functools.lru_cache(maxsize=None)
def project_producers():
    """The project's trees and the producers found in them, made once."""
    trees = parse_files()
    return trees, find_producers(trees)


@functools.lru_cache(maxsize=None)
def project():
    """The scan of tinygrad_norm/ and plugins/, made once."""
    return scan(*project_producers())


# ---- checking against CuPy ----------------------------------------------------------------------------------
def resolve(top, path):
    """The object `top.path` names in CuPy (importing submodules on the way), or raise AttributeError."""
    obj, name = importlib.import_module(top), top
    for part in path.split("."):
        name = f"{name}.{part}"
        try:
            obj = getattr(obj, part)
        except AttributeError:
            try:
                obj = importlib.import_module(name)
            except ImportError:
                raise AttributeError(f"{name} does not exist in CuPy") from None
    return obj


def check(call):
    """(how it was checked, the problem or ""): "signature", "ufunc keywords", "unchecked: why" or "missing"."""
    import cupy
    try:
        fn = resolve(call.top, call.path)
    except AttributeError as e:
        return "missing", str(e)
    if call.positional is None:
        return "exists", ""
    placeholder = object()
    args, kwargs = [placeholder] * call.positional, dict.fromkeys(call.keywords, placeholder)
    if isinstance(fn, cupy.ufunc):
        bad = sorted(set(call.keywords) - UFUNC_KEYWORDS)
        if bad:
            return "ufunc keywords", f"ufunc {call.name} takes no keyword {', '.join(bad)} (only {sorted(UFUNC_KEYWORDS)})"
        if not call.star_args and not fn.nin <= call.positional <= fn.nargs:
            return "ufunc keywords", (f"ufunc {call.name} takes {fn.nin} to {fn.nargs} positional arguments, "
                                      f"given {call.positional}")
        return "ufunc keywords", ""
    try:
        sig, how = inspect.signature(fn), "signature"
    except (TypeError, ValueError):  # a Cython class or builtin: maybe the signature its docstring embeds
        sig, how = cython_signature(fn), "Cython docstring signature"
    if sig is None:
        return f"unchecked: {type(fn).__name__} without a signature", ""
    partial = call.star_args or call.star_kwargs  # the splat may supply the rest
    try:
        bound = (sig.bind_partial if partial else sig.bind)(*args, **kwargs)
    except TypeError as e:
        return how, f"{call.name}{sig}: {e}"
    swallowed = [k for p in sig.parameters.values() if p.kind is p.VAR_KEYWORD for k in bound.arguments.get(p.name, ())]
    return how + (f" (**{'/'.join(swallowed)} unchecked)" if swallowed else ""), ""


def split_top_level(text):
    """`a, b=(1, 2), c` -> ["a", "b=(1, 2)", "c"]: split at the commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch in "([{") - (ch in ")]}")
        if ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    return parts + [text[start:].strip()] if text.strip() else parts


def cython_signature(fn):
    """The signature Cython embeds as the first docstring line (CuPy's `createProgram(str src, str name,
    headers, include_names) -> intptr_t`, `RawModule(str code=None, *, tuple options=(), ...)`), with the C
    types dropped and every default None; None where the docstring does not start with one."""
    first = (getattr(fn, "__doc__", None) or "").strip().split("\n", 1)[0]
    m = re.fullmatch(rf"{re.escape(getattr(fn, '__name__', '') or '?')}\((.*)\)(\s*->.*)?", first)
    if not m:
        return None
    P, params, kind = inspect.Parameter, [], inspect.Parameter.POSITIONAL_OR_KEYWORD
    for text in split_top_level(m.group(1)):
        name = (re.findall(r"\w+", text.split("=")[0]) or [""])[-1]
        if text == "/":
            params = [p.replace(kind=P.POSITIONAL_ONLY) for p in params]
        elif text == "*":
            kind = P.KEYWORD_ONLY
        elif text.startswith("**"):
            params.append(P(name, P.VAR_KEYWORD))
        elif text.startswith("*"):
            params.append(P(name, P.VAR_POSITIONAL))
            kind = P.KEYWORD_ONLY
        else:
            params.append(P(name, kind, default=None if "=" in text else P.empty))
    return inspect.Signature(params)


def table(rows, header):
    """A fixed-width text table of tuples of strings."""
    rows = [header] + [tuple(map(str, r)) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
    return "\n".join([line(rows[0]), line(tuple("-" * w for w in widths))] + [line(r) for r in rows[1:]])


def audit(calls):
    """(the table of every call with its check, the list of problems naming file:line)."""
    rows, problems = [], []
    for c in sorted(calls, key=lambda c: (c.name, c.file, c.line)):
        how, problem = check(c)
        rows.append((c.name, c.arguments if c.positional is not None else "(reference)", c.where, how,
                     problem or "ok"))
        if problem:
            problems.append(f"{c.where}: {problem}")
    return table(rows, ("function", "arguments", "where", "checked by", "result")), problems


# ---- the scanner finds the code's calls ---------------------------------------------------------------------
def test_scanner_finds_the_array_module_calls():
    """A scanner broken into finding nothing (or far less) fails here: 134 calls of 44 functions when written."""
    calls = project().calls
    assert len(calls) > 100 and len({c.name for c in calls}) > 30, table(
        [(c.name, c.arguments, c.where) for c in calls], ("function", "arguments", "where"))


def test_the_backends_module_functions_are_found_as_producers():
    """get_array_module, module_for and cupy_or_raise are found from their returns, not named in the scanner."""
    producers = project_producers()[1]
    assert {"get_array_module", "module_for", "cupy_or_raise"} <= set(producers)
    assert producers["cupy_or_raise"].only_cupy and not producers["get_array_module"].only_cupy


SOURCE_OF_EVERY_KIND = """
import sys
from cupy.cuda import nvrtc
from cupyx import scatter_add

def get_array_module(x):
    return sys.modules["cupy"] if x else np

def module_for(d):
    return cupy_or_raise() if d == "cuda" else np

def cupy_or_raise():
    import cupy
    return cupy

def f(x, backend):
    xp = get_array_module(x)
    a, b = backend.module_for("cuda"), 1
    xp.sqrt(x), get_array_module(x).exp(x), a.log(x), sys.modules["cupy"].abs(x), nvrtc.getPTX(1)
    scatter_add(x, 0, 1)
    return xp.random.standard_normal(3).astype(x.dtype)

zeros = lambda xp, shape: xp.zeros(shape)

def windows(xp_):
    return xp_.reshape(3)  # an array, not the array module
"""


def test_scanner_finds_calls_through_every_kind_of_name():
    """`xp = get_array_module(x)`, `get_array_module(x).f()`, `backend.module_for(d)` in a tuple,
    `sys.modules["cupy"].f()`, `from cupy.cuda import nvrtc`, `from cupyx import f` and an `xp` parameter."""
    calls = scan_source(SOURCE_OF_EVERY_KIND).calls
    assert sorted(c.name for c in calls) == ["cupy.abs", "cupy.cuda.nvrtc.getPTX", "cupy.exp", "cupy.log",
                                             "cupy.random.standard_normal", "cupy.sqrt", "cupy.zeros",
                                             "cupyx.scatter_add"]


def test_scanner_records_keywords_and_splats():
    src = "def f(a, kw):\n    xp = get_array_module(a)\n    return xp.sum(a, 1, *rest, axis=0, **kw)\n" \
          "def get_array_module(x):\n    import cupy\n    return cupy\n"
    (call,) = scan_source(src).calls
    assert (call.path, call.positional, call.keywords, call.star_args, call.star_kwargs, call.line) == \
        ("sum", 2, ("axis",), True, True, 3)


# ---- the calls agree with CuPy ------------------------------------------------------------------------------
def test_every_array_module_call_binds_to_cupys_signature():
    """Each call's function exists in CuPy and takes its positional count and keywords (a signature where
    CuPy gives one, the ufunc keywords for ufuncs); uncalled references exist. Prints the table."""
    pytest.importorskip("cupy")
    calls_table, problems = audit(project().calls)
    refs_table, ref_problems = audit(project().references)
    print(f"{calls_table}\n\n{refs_table}")  # shown with -s or -rP
    assert not problems + ref_problems, "\n".join(problems + ref_problems + ["", calls_table, "", refs_table])


def test_checker_catches_the_two_historical_gpu_crashes():
    """`as_strided(..., writeable=False)` and `max(..., initial=0)`: NumPy takes both, CuPy neither."""
    pytest.importorskip("cupy")
    src = ("def f(a, shape, strides):\n    xp = get_array_module(a)\n"
           "    v = xp.lib.stride_tricks.as_strided(a, shape, strides, writeable=False)\n"
           "    return xp.max(a, initial=0), xp.sqrt(a, where=a > 0), xp.add(a, a, out=a)\n"
           "def get_array_module(x):\n    import sys\n    return sys.modules['cupy']\n")
    _, problems = audit(scan_source(src).calls)
    assert len(problems) == 3, problems
    for line, word in [(3, "writeable"), (4, "initial"), (4, "where")]:
        assert any(p.startswith(f"<synthetic>:{line}:") and word in p for p in problems), (word, problems)


def test_cython_signatures_are_read_from_the_docstring():
    fake = type("Builtin", (), {"__name__": "make", "__doc__": "make(str code, tuple options=(1, 2), *, "
                                "bint fast=False, **kw) -> X\n\nMakes."})()
    assert str(cython_signature(fake)) == "(code, options=None, *, fast=None, **kw)"
    assert cython_signature(type("Plain", (), {"__name__": "f", "__doc__": "Does f."})()) is None


def test_checker_reports_a_function_cupy_lacks():
    pytest.importorskip("cupy")
    src = "def f(a, xp):\n    return xp.no_such_function(a)\n"
    _, problems = audit(scan_source(src).calls)
    assert problems == ["<synthetic>:2: cupy.no_such_function does not exist in CuPy"]


def test_audit_counts():
    """How many calls were checked by signature, by ufunc keywords, or not at all (printed, never failing)."""
    pytest.importorskip("cupy")
    calls = project().calls
    kinds = [check(c)[0].split(":")[0] for c in calls]
    print(f"{len(calls)} array-module calls of {len({c.name for c in calls})} functions: "
          + ", ".join(f"{k} {kinds.count(k)}" for k in sorted(set(kinds))))
    assert len(kinds) == len(calls)


# ---- CuPy-only branches and the README's list of them -------------------------------------------------------
def readme_section(text, heading=README_HEADING):
    """The lines under the heading line that is exactly `heading`, up to the next heading of its level or
    above; None when there is no such heading."""
    lines = text.splitlines()
    if heading not in lines:
        return None
    level = len(heading) - len(heading.lstrip("#"))
    body = []
    for line in lines[lines.index(heading) + 1:]:
        m = re.match(r"(#+) ", line)
        if m and len(m.group(1)) <= level:
            break
        body.append(line)
    return "\n".join(body)


def unlisted_branches(section, branches):
    """The `file: function` keys of the branches that the README section does not name (backticked)."""
    named = set(re.findall(r"`([^`]+\.py: [\w.<>]+)`", section))
    return sorted({b.key for b in branches} - named)


def missing_tests(section):
    """The pytest node ids in the section (`tests/x.py::name[...]`) whose file or test function is missing."""
    missing = []
    for file, name in re.findall(r"`(tests/[\w/]+\.py)::(\w+)(?:\[[^\]`]*\])?`", section):
        path = ROOT / file
        if not path.exists() or not re.search(rf"^\s*def {name}\(", path.read_text(encoding="utf-8"), re.M):
            missing.append(f"{file}::{name}")
    return missing


def branches_table(branches):
    by_key = {}
    for b in branches:
        by_key.setdefault(b.key, []).append(f"{b.line}: {b.why}")
    return table([(k, "; ".join(v)) for k, v in sorted(by_key.items())], ("branch", "found at"))


def test_scanner_finds_cupy_only_branches_of_every_kind():
    src = ("import numpy as np\n"
           "def a(x):\n    xp = get_array_module(x)\n    return 1 if xp is np else 2\n"
           "def b(d):\n    return d == 'cuda'\n"
           "def c(x):\n    return hasattr(x, 'get')\n"
           "def d(x):\n    import cupyx\n"
           "def e(x):\n    return x.get()\n"
           "def is_gpu(x):\n    import cupy\n    return isinstance(x, cupy.ndarray)\n"
           "def f(x):\n    return 1 if is_gpu(x) else 0\n"
           "def g(x):\n    xp = get_array_module(x)\n    return xp.__name__ == 'cupy'\n"
           "def h(x):\n    return x.get('key')\n"
           "class Cuda:\n    devices = ('cuda',)\n"
           "def get_array_module(x):\n    import sys\n    return sys.modules['cupy'] if x else np\n")
    keys = {b.function for b in scan_source(src).branches}
    assert keys == {"a", "b", "c", "d", "e", "is_gpu", "f", "g", "Cuda"}, keys


def test_readme_names_every_cupy_only_branch():
    """README.md's `#### CuPy-only branches` names each branch the scanner finds (as `file: function`), and
    each test it gives for them exists."""
    branches = project().branches
    section = readme_section((ROOT / "README.md").read_text(encoding="utf-8"))
    assert section is not None, f"README.md has no line {README_HEADING!r}; it should list:\n{branches_table(branches)}"
    unlisted = unlisted_branches(section, branches)
    assert not unlisted, "README's CuPy-only branches lack:\n" + "\n".join(unlisted) + "\n\n" + branches_table(branches)
    assert not missing_tests(section), f"README names tests that do not exist: {missing_tests(section)}"


def test_readme_check_reports_a_branch_left_out():
    """The README check itself: a section naming all but one branch reports exactly that one."""
    branches = project().branches
    keys = sorted({b.key for b in branches})
    listed = "\n".join(f"- `{k}`" for k in keys[1:])
    section = readme_section(f"# T\n{README_HEADING}\n{listed}\n## Next\n- `{keys[0]}`\n")  # the next section's is not
    assert unlisted_branches(section, branches) == keys[:1]
