"""The plugin registry: entry points in the group `tinygrad_norm.norms`, loaded lazily on first use.

A plugin that fails to load is recorded with its cause and the others still load. Two plugins claiming one
name make that name an error that says where each came from. With TINYGRAD_NORM_DISABLE_PLUGIN_AUTOLOAD
set, only the plugins shipped with tinygrad-norm itself are loaded (as PYTEST_DISABLE_PLUGIN_AUTOLOAD does).

What a plugin declares is checked when it is registered (`problem`), so a class that cannot work is refused
with the reason there, not later in `get` or the checker.
"""
import os
import warnings
from importlib.metadata import entry_points

from ..module import Module
from .layer import NormLayer
from .pattern import Pattern, PatternError

GROUP = "tinygrad_norm.norms"
DISABLE_ENV = "TINYGRAD_NORM_DISABLE_PLUGIN_AUTOLOAD"
BUILTIN_DIST = "tinygrad-norm"


class NormPluginError(LookupError):
    """A plugin is unknown, failed to load, or its name is claimed twice."""

    def __str__(self):
        return self.args[0]


def problem(cls):
    """Why `cls` cannot be a norm plugin, or None. A plugin is a class that declares what it normalizes:

    acts_on = "activations" (the default): a NormLayer subclass with a statistics `pattern` (the core does the
        rest), or a Module subclass with `pattern = None` and a forward of its own;
    acts_on = "weights": a class whose `apply(module, ...)` reparametrizes a module's weight (weight norm).
    example: (args, kwargs, input_shape), or a function returning that, for the conformance checker.
    """
    if not isinstance(cls, type):
        return f"a plugin must be a class; got {type(cls).__name__} {cls!r}"
    target = acts_on(cls)
    example = getattr(cls, "example", None)
    if example is not None and not callable(example) and not (
            isinstance(example, tuple) and len(example) == 3 and isinstance(example[0], tuple)
            and isinstance(example[1], dict) and isinstance(example[2], tuple)):
        return f"example must be (args tuple, kwargs dict, input shape tuple) or a function returning that; got {example!r}"
    if target == "weights":
        return None if callable(getattr(cls, "apply", None)) else \
            "acts_on = 'weights' but it has no apply(module, ...) classmethod to reparametrize a module's weight"
    if target != "activations":
        return f"acts_on must be 'activations' or 'weights'; got {target!r}"
    if not issubclass(cls, Module):
        return (f"{cls.__name__} is not a Module: a plugin that acts on activations subclasses NormLayer (a declared "
                f"pattern) or Module (pattern = None and its own forward)")
    if not hasattr(cls, "pattern"):
        return ("it declares no `pattern`: subclass NormLayer and declare one such as 'n c ... -> c', or set "
                "pattern = None and write forward")
    if cls.pattern is None:
        own = cls.forward not in (Module.forward, NormLayer.forward)
        if getattr(cls, "statistics", None):
            return "it declares further statistics patterns but no main `pattern`; declare one (the one running statistics follow)"
        return None if own else "pattern is None, so it must write its own forward, and it does not"
    if not issubclass(cls, NormLayer):
        return f"it declares pattern {cls.pattern!r} but is not a NormLayer, the class that turns a pattern into a layer"
    try:
        pattern = Pattern(cls.pattern, owner=cls.__name__)
        if cls.param_axes:
            pattern.token(cls.param_axes)
        return _statistics_problem(cls)
    except PatternError as e:
        return str(e)


def _statistics_problem(cls):
    """Why a NormLayer's further named patterns (`statistics`) or its parameter ranges (`bounded`) cannot work,
    or None: each pattern must parse, each range be (low, high) with low < high."""
    for name, bounds in (cls.bounded.items() if isinstance(cls.bounded, dict) else [(None, cls.bounded)]):
        if not (isinstance(name, str) and isinstance(bounds, tuple) and len(bounds) == 2
                and all(isinstance(b, (int, float)) for b in bounds) and bounds[0] < bounds[1]):
            return f"bounded maps a parameter's name to (low, high) with low < high; got {name!r}: {bounds!r}"
    named = cls.statistics
    if not isinstance(named, dict):
        return f"statistics must be a dict of name -> pattern; got {type(named).__name__} {named!r}"
    for name, text in named.items():
        if not (isinstance(name, str) and name.isidentifier()):
            return f"statistics: a pattern's name is an identifier such as 'instance'; got {name!r}"
        if not isinstance(text, str):
            return f"statistics {name!r}: a pattern is a string such as 'n c ... -> n c'; got {text!r}"
        Pattern(text, owner=f"{cls.__name__}, statistics {name!r}")
    return None


def name_problem(name):
    """Why `name` cannot name a plugin, or None: a registered name is a non-empty string without spaces."""
    if not isinstance(name, str):
        return f"a plugin's name is a string; got {type(name).__name__} {name!r}"
    if not name or any(c.isspace() for c in name):
        return f"a plugin's name is a non-empty string without spaces; got {name!r}"
    return None


class _Registry:
    def __init__(self):
        self.plugins, self.origins, self.failures, self.loaded = {}, {}, {}, False
        self.skipped = {}  # name -> origin of the entry points the autoload switch left out

    def load(self):
        if self.loaded:
            return
        self.loaded = True
        builtin_only = bool(os.environ.get(DISABLE_ENV))
        claims = {}
        for ep in entry_points(group=GROUP):
            dist = getattr(ep.dist, "name", None) or "an unknown distribution"
            if builtin_only and dist.lower().replace("_", "-") != BUILTIN_DIST:
                self.skipped[ep.name] = f"{ep.value} from {dist}"
                continue
            claims.setdefault(ep.name, []).append((ep, f"{ep.value} from {dist}"))
        for name, found in claims.items():
            origins = sorted({origin for _, origin in found})
            if len(origins) > 1:
                self.failures[name] = f"the name {name!r} is claimed by more than one plugin: " + " and ".join(origins)
                continue
            ep, origin = found[0]
            try:
                cls = ep.load()
            except Exception as e:  # a broken plugin must not take the others down
                self.failures[name] = f"{origin} failed to import: {type(e).__name__}: {e}"
                warnings.warn(f"tinygrad_norm: norm plugin {name!r} ({origin}) failed to load: {type(e).__name__}: {e}",
                              RuntimeWarning, stacklevel=3)
                continue
            why = problem(cls)
            if why:
                self.failures[name] = f"{origin} is not a norm plugin: {why}"
                continue
            self._add(name, cls, origin)

    def _add(self, name, cls, origin):
        """Record a plugin class that `problem` found nothing wrong with."""
        cls.plugin_name = name
        self.plugins[name], self.origins[name] = cls, origin


_registry = _Registry()


def get(name):
    """The plugin class registered under `name`."""
    _registry.load()
    if not isinstance(name, str):
        raise NormPluginError(f"cannot look up a norm plugin: {name_problem(name)}")
    if name in _registry.plugins:
        return _registry.plugins[name]
    if name in _registry.failures:
        raise NormPluginError(f"norm plugin {name!r} is unavailable: {_registry.failures[name]}")
    if name in _registry.skipped:
        raise NormPluginError(f"norm plugin {name!r} ({_registry.skipped[name]}) is installed but was not loaded: "
                              f"{DISABLE_ENV} is set, so only tinygrad-norm's own plugins load; unset it to use "
                              f"third-party plugins")
    raise NormPluginError(f"no norm plugin named {name!r}; available: {', '.join(available()) or 'none'}"
                          + (f"; failed to load: {', '.join(sorted(_registry.failures))}" if _registry.failures else "")
                          + (f"; not loaded because {DISABLE_ENV} is set: {', '.join(sorted(_registry.skipped))}"
                             if _registry.skipped else ""))


def resolve(plugin):
    """A plugin class from its registered name, or the class itself once `problem` finds nothing wrong with it."""
    if isinstance(plugin, str):
        return get(plugin)
    why = problem(plugin)
    if why:
        raise NormPluginError(f"{getattr(plugin, '__name__', plugin)!r} is not a norm plugin: {why}")
    return plugin


def display_name(cls):
    """The registered name of a plugin class, or its class name when it is not registered."""
    return getattr(cls, "plugin_name", None) or cls.__name__


def acts_on(cls):
    """"activations" or "weights": what a plugin class normalizes (undeclared means activations)."""
    return getattr(cls, "acts_on", "activations")


def available(acting_on=None):
    """Sorted names of the plugins that loaded; acting_on="activations" or "weights" keeps those only."""
    _registry.load()
    return sorted(n for n, cls in _registry.plugins.items() if acting_on in (None, acts_on(cls)))


def failures():
    """name -> why it is unavailable, for every plugin that failed to load or whose name clashed."""
    _registry.load()
    return dict(_registry.failures)


def origin(name):
    """Where a plugin came from: "module:attr from distribution", or "registered at runtime by module"."""
    get(name)
    return _registry.origins[name]


def register(cls=None, *, name=None, replace=False):
    """Register a plugin class at runtime (also usable as a decorator). A taken name is an error unless replace."""
    def add(cls):
        _registry.load()
        why = problem(cls)
        if why:
            raise NormPluginError(f"cannot register {getattr(cls, '__name__', cls)!r} as a norm plugin: {why}")
        key = getattr(cls, "plugin_name", None) if name is None else name
        if key is None:
            raise NormPluginError(f"register({cls.__name__}) needs a name: pass name=... or set the class attribute "
                                  f"`plugin_name`")
        why = name_problem(key)
        if why:
            raise NormPluginError(f"cannot register {cls.__name__!r} as a norm plugin: {why}")
        here = f"{cls.__module__}:{cls.__qualname__} registered at runtime"
        if key in _registry.plugins and not replace and _registry.plugins[key] is not cls:
            raise NormPluginError(f"the name {key!r} is claimed by more than one plugin: {_registry.origins[key]} and "
                                  f"{here}; pass replace=True to override")
        _registry.failures.pop(key, None)
        _registry._add(key, cls, here)
        return cls
    return add(cls) if cls is not None else add


def refresh():
    """Forget what was loaded and scan the entry points again (after `pip install` of a plugin in a running
    session). Plugins registered at runtime are dropped too."""
    _registry.__init__()
    _registry.load()


def unregister(name):
    _registry.load()
    _registry.plugins.pop(name, None)
    _registry.origins.pop(name, None)
