"""The registries a method plugs into: methods, per-window models and classifier backends; and the statistics
that test a selection.

Each entry registers itself when its module is imported (``register(...)`` at the bottom of the
module); the built-in modules are imported by :func:`load_builtins`, a user's own by the config's
``plugins:`` list. Everything else — the DAG, the schema, ``slidescan status``, the summary and the
report — asks these registries, so a new method is one module and its registration.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path
from typing import Generic, Iterator, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind, with an error that lists what exists."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._origin: dict[str, str] = {}

    def register(self, item: T, name: str | None = None) -> T:
        name = name or getattr(item, "name")
        origin = getattr(item, "__module__", None) or type(item).__module__
        if name in self._items and self._origin[name] != origin:
            raise ValueError(f"{self.kind} {name!r} is registered twice: by {self._origin[name]} and by {origin}")
        self._items[name] = item  # the same module imported again (a plugin loaded by path) replaces its own entry
        self._origin[name] = origin
        _REGISTERED_BY[id(item)] = _caller()
        return item

    def __getitem__(self, name: str) -> T:
        load_builtins()
        if name not in self._items:
            raise KeyError(f"unknown {self.kind} {name!r}; registered: {sorted(self._items)}")
        return self._items[name]

    def __contains__(self, name: str) -> bool:
        load_builtins()
        return name in self._items

    def __iter__(self) -> Iterator[T]:
        load_builtins()
        return iter(list(self._items.values()))

    def names(self) -> list[str]:
        load_builtins()
        return list(self._items)


# the packages whose register functions wrap Registry.register: the module that registered an entry is the first
# caller outside them (a plug-in's module, even for an entry built by a slidescan helper such as template_reference)
_WRAPPERS = ("slidescan.registry", "slidescan.methods", "slidescan.density", "slidescan.backends")
_REGISTERED_BY: dict[int, str] = {}


def _caller() -> str:
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") in _WRAPPERS:
        frame = frame.f_back
    return frame.f_globals.get("__name__", "") if frame is not None else ""


METHODS: Registry = Registry("method")
MODELS: Registry = Registry("model")
BACKENDS: Registry = Registry("backend")
# the tests of a selection (bumphunt.statistic): the sideband fit, the template count (stats.statistics)
STATISTICS: Registry = Registry("statistic")

# the modules whose import registers the built-in entries
BUILTINS = ("slidescan.backends", "slidescan.density", "slidescan.methods", "slidescan.stats.statistics")
_loaded = False


def load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTINS:
        importlib.import_module(module)


def code_identity(*entries) -> str:
    """A hash of the source files of the entries' code that is not slidescan's own (a plug-in's module), or "".

    Why: a fold or a model is kept while its fingerprint is unchanged, and Snakemake reruns a job when its params
    change, but neither sees a plug-in's code. A fixed plug-in would leave its wrong results in place (only
    ``--forcerun`` helped). So the code a result comes from joins its identity: the module of each entry's class
    and of every function or class it holds (a ``Reference``'s ``build``, a ``Model``'s ``fit``), and the module that
    registered it. slidescan's own
    modules are left out, so built-in methods keep their fingerprints whatever slidescan version made them.
    """
    modules = set()
    for entry in entries:
        if entry is None:
            continue
        held = [type(entry), *(v for v in getattr(entry, "__dict__", {}).values() if callable(v))]
        modules.update(getattr(obj, "__module__", None) for obj in held)
        modules.add(_REGISTERED_BY.get(id(entry)))
    files = []
    for name in sorted(m for m in modules if m and m != "slidescan" and not m.startswith(("slidescan.", "builtins"))):
        path = getattr(sys.modules.get(name), "__file__", None)
        if path and Path(path).is_file():
            files.append((name, hashlib.sha256(Path(path).read_bytes()).hexdigest()))
    return hashlib.sha256(repr(files).encode()).hexdigest()[:16] if files else ""


def model_order(names) -> tuple[str, ...]:
    """``names`` with the models each reads (``Model.models``) before it, each once: the order to fit them in. A
    cycle (a model that needs itself through others), or a model of the window alone reading one fitted per
    pseudo-experiment, is refused, naming them."""
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise ValueError(f"model {name} needs itself: {' -> '.join((*path, name))}")
        if name in order:
            return
        for needed in MODELS[name].models:
            if MODELS[name].window_alone and not MODELS[needed].window_alone:
                raise ValueError(f"model {name} is fitted once per window (window_alone) but reads model {needed}, "
                                 "which is fitted per pseudo-experiment")
            visit(needed, (*path, name))
        order.append(name)

    for name in names:
        visit(name, ())
    return tuple(order)
