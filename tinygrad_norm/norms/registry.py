"""The plugin registry: entry points in the group `tinygrad_norm.norms`, loaded lazily on first use.

A plugin that fails to load is recorded with its cause and the others still load. Two plugins claiming one
name make that name an error that says where each came from. With TINYGRAD_NORM_DISABLE_PLUGIN_AUTOLOAD
set, only the plugins shipped with tinygrad-norm itself are loaded (as PYTEST_DISABLE_PLUGIN_AUTOLOAD does).
"""
import os
import warnings
from importlib.metadata import entry_points

GROUP = "tinygrad_norm.norms"
DISABLE_ENV = "TINYGRAD_NORM_DISABLE_PLUGIN_AUTOLOAD"
BUILTIN_DIST = "tinygrad-norm"


class NormPluginError(LookupError):
    """A plugin is unknown, failed to load, or its name is claimed twice."""

    def __str__(self):
        return self.args[0]


class _Registry:
    def __init__(self):
        self.plugins, self.origins, self.failures, self.loaded = {}, {}, {}, False

    def load(self):
        if self.loaded:
            return
        self.loaded = True
        builtin_only = bool(os.environ.get(DISABLE_ENV))
        claims = {}
        for ep in entry_points(group=GROUP):
            dist = getattr(ep.dist, "name", None) or "an unknown distribution"
            if builtin_only and dist.lower().replace("_", "-") != BUILTIN_DIST:
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
            self._add(name, cls, origin)

    def _add(self, name, cls, origin):
        if not isinstance(cls, type):
            self.failures[name] = f"{origin} is not a class (got {type(cls).__name__})"
            return
        cls.name = name
        self.plugins[name], self.origins[name] = cls, origin


_registry = _Registry()


def get(name):
    """The plugin class registered under `name`."""
    _registry.load()
    if name in _registry.plugins:
        return _registry.plugins[name]
    if name in _registry.failures:
        raise NormPluginError(f"norm plugin {name!r} is unavailable: {_registry.failures[name]}")
    raise NormPluginError(f"no norm plugin named {name!r}; available: {', '.join(available()) or 'none'}"
                          + (f"; failed to load: {', '.join(sorted(_registry.failures))}" if _registry.failures else ""))


def available():
    """Sorted names of the plugins that loaded."""
    _registry.load()
    return sorted(_registry.plugins)


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
        key = name or getattr(cls, "name", None)
        if not key:
            raise NormPluginError(f"register({cls.__name__}) needs a name: pass name=... or set the class attribute `name`")
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
