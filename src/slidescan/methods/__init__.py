"""The method layer: registered references and scores, and how a scan's method names are configured.

A method name in a scan is ``<reference>-<backend>`` (``cathode-nn``: the CATHODE template, the
vectorised MLP backend) or the name of a :class:`Score` (``anode``). :func:`configure` turns a
name and the validated config into a :class:`MethodRun`, the one object the training stage uses.
Adding a method is writing one module that calls :func:`register` (a built-in one is imported
below; a user's own is named in the config's ``plugins:``).
"""

from __future__ import annotations

from ..registry import BACKENDS, METHODS
from .base import (ClassifierScores, FoldData, FoldFit, Fitted, InputMap, Method, MethodRun, ModelOutput, Reference,
                   Score, TrainingSet, WindowInputs, held_out_fold, training_set)


def register(method: Method) -> Method:
    """Add a reference or score to the registry (call it at the bottom of the method's module)."""
    if not isinstance(method, (Reference, Score)):
        raise TypeError(f"register() takes a Reference or a Score, got {type(method).__name__}")
    return METHODS.register(method)


def method_names() -> list[str]:
    """Every valid name: each reference with each backend, and each score."""
    names = []
    for method in METHODS:
        if method.kind == "reference":
            names += [f"{method.name}-{backend.name}" for backend in BACKENDS]
        else:
            names.append(method.name)
    return names


def parse(name: str) -> tuple[Method, object | None]:
    """``cwola-nn`` -> (the cwola reference, the nn backend); ``anode`` -> (the anode score, None)."""
    if name in METHODS.names() and METHODS[name].kind == "score":
        return METHODS[name], None
    reference, _, backend = name.rpartition("-")
    if reference in METHODS.names() and METHODS[reference].kind == "reference" and backend in BACKENDS.names():
        return METHODS[reference], BACKENDS[backend]
    raise ValueError(f"unknown method {name!r}; valid methods: {method_names()}")


class ReferenceRun(MethodRun):
    """A reference with a classifier backend: label 1 vs label 0, fitted by the backend."""

    def __init__(self, name: str, method: Reference, backend, settings):
        self.name, self.method, self.backend, self.settings = name, method, backend, settings
        self.batched = backend.batched

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(self.method.models)

    @property
    def members(self) -> int:
        return self.backend.members(self.settings)

    @property
    def section(self) -> str:
        return self.backend.settings_type.section

    def tunables(self) -> dict:
        return self.with_code(self.backend.tunables(self.settings))

    def fold_data(self, inputs: WindowInputs, fold: int) -> FoldData:
        return self.method.fold_data(inputs, fold, self.name)

    def describe(self, fold: FoldData) -> str:
        y = fold.train.y
        return f"{int(y.sum())} label-1 vs {int((1 - y).sum())} reference events, {self.members} members ({self.backend.name})"

    def epoch_key(self, folds: list[FoldData]) -> int | None:
        return self.backend.epoch_key(self.settings, [f.train for f in folds])

    def fit(self, fits, checkpoint, log, epoch_key=None) -> list[Fitted]:
        models = self.backend.fit(self.settings, [(f.data.train, f.member_seeds, f.name) for f in fits], checkpoint,
                                  log, epoch_key)
        return [ClassifierScores(m, f.data.features or f.inputs.features, getattr(m, "history", None) or {})
                for m, f in zip(models, fits)]


class ScoreRun(MethodRun):
    """A method that scores events itself, with its settings."""

    uses_mjj = True

    def __init__(self, name: str, method: Score, settings):
        self.name, self.method, self.settings = name, method, settings
        # a score that fits many folds at once (``Score.batched``) gets all pending folds of a job in one call
        self.batched = bool(getattr(method, "batched", False))

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(self.method.models_for(self.settings))

    @property
    def members(self) -> int:
        return self.method.members(self.settings)

    def method_samples(self) -> tuple[str, ...]:
        return tuple(self.method.samples_for(self.settings))

    @property
    def section(self) -> str:
        return self.method.settings_type.section if self.method.settings_type else self.name

    def tunables(self) -> dict:
        from ..settings import tunables

        return self.with_code(tunables(self.settings) if self.settings is not None else {})

    def fold_data(self, inputs: WindowInputs, fold: int) -> FoldData:
        return self.method.fold_data(inputs, fold, self.settings)

    def epoch_key(self, folds: list[FoldData]) -> int | None:
        return self.method.epoch_key(self.settings, folds)

    def fit(self, fits, checkpoint, log, epoch_key=None) -> list[Fitted]:
        if epoch_key is None:  # scores without an epoch key keep the signature they were written against
            return self.method.fit(fits, self.settings, checkpoint, log)
        return self.method.fit(fits, self.settings, checkpoint, log, epoch_key=epoch_key)


def configure(name: str, config: dict) -> MethodRun:
    """The method ``name`` with its settings from the validated config."""
    method, backend = parse(name)
    if backend is None:
        return ScoreRun(name, method, method.configure(config))
    return ReferenceRun(name, method, backend, backend.configure(config))


# the built-in methods register themselves
from . import (anode, autoencoder, cathode, curtains, cwola, feta, flow_nll, generate,  # noqa: E402,F401
               idealized, lacathode, morph, quak, ranode, reweight, salad, supervised, tnt)

__all__ = ["ClassifierScores", "FoldData", "FoldFit", "Fitted", "InputMap", "Method", "MethodRun", "ModelOutput",
           "Reference", "ReferenceRun", "Score", "ScoreRun", "TrainingSet", "WindowInputs", "configure", "held_out_fold",
           "method_names", "parse", "register", "training_set"]
