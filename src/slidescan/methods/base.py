"""What a method is: how the events of a window are scored out of fold.

Two kinds, one interface for the training stage:

- a :class:`Reference` says how the label-0 background template of the SR is made, and which
  per-window models that needs; a classifier backend then separates SR data (label 1) from it
  (cwola, cathode, idealized, supervised). Its name in a scan is ``<reference>-<backend>``.
- a :class:`Score` scores events itself, without a classifier (anode, ranode, flow-nll). Its name
  in a scan is its own.

For the model of fold ``k`` both build a :class:`FoldData`: what the model learns from (never a
data event of fold ``k``) and what it scores (the events of fold ``k``). A configured method, a
:class:`MethodRun`, is what the training stage drives: it fits the folds and scores their events.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, ClassVar

import numpy as np
import pandas as pd

from ..data import weights_of
from ..windows import REGION_SR


@dataclass
class TrainingSet:
    """Label-1 and label-0 events of one fold's model, with weights (and mjj, for density methods)."""

    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    mjj: np.ndarray | None = None


@dataclass
class ModelOutput:
    """The result of one per-window model (``density.Model``) for one pseudo-experiment: an HDF5 file."""

    name: str
    path: object  # pathlib.Path
    _tables: dict = field(default_factory=dict, repr=False)

    def table(self, name: str) -> pd.DataFrame:
        """A table of the model's file (read once)."""
        from ..io import read_table

        if name not in self._tables:
            table = read_table(self.path, name)
            table.attrs["source"] = f"model {self.name}'s table {name!r} ({self.path})"  # for check_columns' errors
            self._tables[name] = table
        return self._tables[name]

    @property
    def attrs(self) -> dict:
        from ..io import read_attrs

        return read_attrs(self.path)

    @property
    def fingerprint(self) -> str:
        """What the model was fitted on and with: part of the identity of every fold that reads it."""
        return str(self.attrs.get("fingerprint", ""))

    def density(self):
        """The model's conditional density p(x | mjj) (a ``density.flows.TrainedFlow``, loaded once)."""
        from ..density.flows import load_flow

        if "_density" not in self._tables:
            self._tables["_density"] = load_flow(self.path)
        return self._tables["_density"]


@dataclass
class WindowInputs:
    """What a method sees of one window and pseudo-experiment."""

    window: object  # windows.Window
    experiment: object  # layout.PseudoExperiment
    data: pd.DataFrame  # the window's events, with their region and fold
    # the SR's truth references: labelled background ("background_sr") and signal ("signal") set apart from the
    # data's own labelled events (or generated with it). Not a simulation: the data's own background, perfect by
    # construction, for the idealized and supervised ceilings (``needs_truth``). A simulation is ``samples``
    truth: dict[str, pd.DataFrame]
    models: dict[str, ModelOutput]
    features: list[str]
    # the auxiliary samples the method declares (data.samples): the window's events of each, with region and fold
    samples: dict[str, pd.DataFrame] = field(default_factory=dict)
    # which of the features describe jet 1, jet 2 and the event ("jet1", "jet2", "event"; features.resolve_groups)
    feature_groups: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """The former name of ``truth`` (plug-ins written before it was renamed keep working)."""
        return self.truth

    def training_events(self, fold: int) -> pd.DataFrame:
        """The window's events that the model of ``fold`` may learn from."""
        return self.data[self.data["fold"] != fold]

    def sr(self, events: pd.DataFrame) -> pd.DataFrame:
        return events[events["region"] == REGION_SR]

    def sidebands(self, events: pd.DataFrame) -> pd.DataFrame:
        return events[events["region"] != REGION_SR]

    def model(self, name: str) -> ModelOutput:
        if name not in self.models:
            raise ValueError(f"{self.window.name} {self.experiment}: the output of model {name!r} was not given "
                             f"(the method declares the models it needs; given: {sorted(self.models)})")
        return self.models[name]


@dataclass
class FoldData:
    """The model of one fold: what it learns from and what it scores."""

    train: TrainingSet
    scored: pd.DataFrame  # the window events of the fold
    held_out: pd.DataFrame | None = None  # the fold's SR reference events, scored for the data-vs-reference AUC
    # anything else the result depends on (e.g. the fingerprint of a model it reads)
    extra_identity: tuple = ()
    # the columns its classifier sees, when not the scan's features (a reference's ``InputMap``)
    features: list[str] | None = None


class Method(ABC):
    """A registered method: a :class:`Reference` or a :class:`Score`."""

    name: str
    description: str
    needs_truth: bool = False
    # the auxiliary samples (data.samples) it reads, as inputs.samples[name]: the scan must name them
    samples: tuple[str, ...] = ()
    # trains on the true signal (the split's reference signal), so even its background-only scores belong to one
    # signal model: in a scan of several, injection 0 carries the first model's (limits on the others say so)
    signal_truth: bool = False
    # the per-window models it needs (names in the model registry): built once per window and pseudo-experiment
    models: tuple[str, ...] = ()
    # learns from per-event weights (``data.table.weight``); a scan with weights refuses a method that does not
    weighted: bool = False
    # the region kinds (windows.kind) it works in: mjj windows only unless it says more (it must not read mjj edges)
    regions: tuple[str, ...] = ("mjj_window",)
    kind: ClassVar[str]

    @property
    def settings_types(self) -> tuple:
        return ()


# what a table of events that is scored (a fold's events, a template's held-out events) holds besides the features
SCORED_COLUMNS = ("mjj", "label")


def check_columns(table: pd.DataFrame, needed, what: str) -> None:
    """The template contract (docs/plugins.md): fail, naming ``what`` (the method, the fold, which table) and the
    table's origin where a model's file gave it, when ``table`` lacks a column the training stage reads."""
    missing = [c for c in needed if c not in table.columns]
    if missing:
        source = table.attrs.get("source")
        raise ValueError(f"{what}{f' ({source})' if source else ''}: no column(s) {missing}; it has "
                         f"{list(table.columns)}. A template's events must hold the scan's features, and events that "
                         "are scored (held_out) also mjj and label (docs/plugins.md, \"The template contract\")")


def training_set(positive: pd.DataFrame, negative: pd.DataFrame, features: list[str], what: str) -> TrainingSet:
    """Label 1 for ``positive``, 0 for ``negative``, each event weighted by its ``weight`` column if it has one."""
    if len(positive) == 0 or len(negative) == 0:
        raise ValueError(f"{what}: empty training sample ({len(positive)} label-1 events, {len(negative)} reference "
                         "events); widen the window or add events")
    x = np.concatenate([positive[features].to_numpy(), negative[features].to_numpy()])
    y = np.concatenate([np.ones(len(positive)), np.zeros(len(negative))])
    w = np.concatenate([weights_of(positive, ones=True), weights_of(negative, ones=True)])
    return TrainingSet(x, y, w)


@dataclass(frozen=True)
class InputMap:
    """A reference's own classifier inputs: ``apply`` maps a table of events (label-1, template, held-out and scored
    events alike) to one that also holds ``columns``, which its classifier then sees instead of the scan's features.

    Why a hook of the layer and not of the method: whatever a classifier is trained on, its scores of the fold's
    events and of the held-out template must come from the same inputs, and the fold's fingerprint must change with
    them; a method that transformed only its training sample would score events in another space. ``identity`` is
    what the map depends on beyond the events (e.g. the fingerprint of a flow it reads): part of each fold's.
    """

    apply: Callable[[pd.DataFrame], pd.DataFrame]
    columns: list[str]
    identity: tuple = ()

    @classmethod
    def subset(cls, columns) -> "InputMap":
        """The classifier sees only these of the scan's features."""
        return cls(lambda events: events, list(columns), ("subset",))


@dataclass(frozen=True)
class Reference(Method):
    """SR data (label 1) against a background template of the SR (label 0), for a classifier backend.

    ``build(inputs, fold)`` returns the (label-1, label-0) events of the model of ``fold``; it must
    leave out the data events of ``fold``, which that model scores. ``held_out(inputs, fold)``, for a
    template other than the data itself, returns the template's events of ``fold``: they are scored
    too, and "SR data vs template" must then give an AUC of 0.5 without signal.
    """

    name: str
    description: str
    build: Callable[[WindowInputs, int], tuple[pd.DataFrame, pd.DataFrame]]
    needs_truth: bool = False
    signal_truth: bool = False  # trains on the true signal (see Method.signal_truth)
    models: tuple[str, ...] = ()
    samples: tuple[str, ...] = ()
    held_out: Callable[[WindowInputs, int], pd.DataFrame] | None = None
    # every backend weights its events by their ``weight`` column (``training_set``); the models must too
    weighted: bool = True
    # its classifier's own inputs (a transform of the events, a subset of the features), given the window's inputs
    input_map: Callable[[WindowInputs], InputMap] | None = None
    # the region kinds (windows.kind) it works in: mjj windows only unless it says more (it must not read mjj edges)
    regions: tuple[str, ...] = ("mjj_window",)
    kind: ClassVar[str] = "reference"

    def fold_data(self, inputs: WindowInputs, fold: int, method: str) -> FoldData:
        positive, negative = self.build(inputs, fold)
        check_columns(positive, inputs.features, f"method {method}, fold {fold}: its label-1 events")
        check_columns(negative, inputs.features, f"method {method}, fold {fold}: its label-0 events (the template)")
        held = self.held_out(inputs, fold) if self.held_out else None
        scored = inputs.data[inputs.data["fold"] == fold]
        if self.input_map is None:
            train = training_set(positive, negative, inputs.features, f"method {method}, fold {fold}")
            return FoldData(train, scored, held)
        mapped = self.input_map(inputs)
        tables = [mapped.apply(t) if t is not None else None for t in (positive, negative, scored, held)]
        for table, what in zip(tables, ("label-1 events", "label-0 events (the template)", "scored events",
                                        "held-out template events")):
            if table is not None:
                check_columns(table, mapped.columns, f"method {method}, fold {fold}: its {what} after its input map")
        positive, negative, scored, held = tables
        train = training_set(positive, negative, mapped.columns, f"method {method}, fold {fold}")
        return FoldData(train, scored, held, ("inputs", tuple(mapped.columns), mapped.identity), list(mapped.columns))


def held_out_fold(table: pd.DataFrame, fold: int) -> pd.DataFrame:
    return table[table["fold"] == fold]


def template_reference(name: str, description: str, model: str, table: str | Callable[[WindowInputs], pd.DataFrame],
                       **kwargs) -> Reference:
    """SR data against a model's table of template events with folds of their own (CATHODE's flow samples, SALAD's
    weighted simulation): the classifier of fold ``k`` trains on the template's other folds and scores its fold
    ``k`` (the closure AUC of SR data against the template, 0.5 without signal). ``table``: the name of the model's
    table, or a function of the window's inputs that builds the template from the model's (and others') tables."""
    def template(inputs: WindowInputs) -> pd.DataFrame:
        return table(inputs) if callable(table) else inputs.model(model).table(table)

    def build(inputs: WindowInputs, fold: int):
        events = template(inputs)
        return inputs.sr(inputs.training_events(fold)), events[events["fold"] != fold]

    return Reference(name, description, build, models=(model, *kwargs.pop("models", ())),
                     held_out=lambda inputs, fold: held_out_fold(template(inputs), fold), **kwargs)


class Score(Method):
    """A method that scores events itself (no classifier): a subclass registers one instance.

    It declares its settings (``settings_type``, the section of its name), builds each fold's
    :class:`FoldData` and fits the folds' models; a fitted model's ``predict(events)`` returns one
    score per event (higher: more signal-like) and ``history`` its loss per epoch.
    """

    kind: ClassVar[str] = "score"
    settings_type: ClassVar[type | None] = None
    # fits the folds of a job together (one call for all pending folds), e.g. as one batched model
    batched: ClassVar[bool] = False

    @property
    def settings_types(self) -> tuple:
        return (self.settings_type,) if self.settings_type else ()

    def configure(self, config: dict):
        from ..settings import section_of

        return self.settings_type.from_config(section_of(config, self.settings_type.path())) \
            if self.settings_type else None

    def models_for(self, settings) -> tuple[str, ...]:
        """The per-window models needed with these settings (by default, ``models``)."""
        return self.models

    def samples_for(self, settings) -> tuple[str, ...]:
        """The auxiliary samples read with these settings (by default, ``samples``)."""
        return tuple(self.samples)

    def members(self, settings) -> int:
        return int(getattr(settings, "members", 1))

    def epoch_key(self, settings, folds: list[FoldData]) -> int | None:
        """For a batched score whose folds must take the same steps together and alone (the nn engine's events
        per epoch): what every fold of a pseudo-experiment shares; part of each fold's identity, and handed to
        ``fit`` as ``epoch_key=``. None (the default): nothing."""
        return None

    @abstractmethod
    def fold_data(self, inputs: WindowInputs, fold: int, settings) -> FoldData:
        ...

    @abstractmethod
    def fit(self, fits: list["FoldFit"], settings, checkpoint, log: Callable[[str], None]) -> list:
        ...


@dataclass(eq=False)
class FoldFit:
    """One fold's model to fit: its key, its data, its member seeds, its window's inputs."""

    name: str  # "seed 1 fold 2" in logs
    seed: int
    fold: int
    data: FoldData
    member_seeds: list[int]
    inputs: WindowInputs
    # the fold's own checkpoint (its path does not depend on which folds train with it) and log
    checkpoint: object = None
    log: Callable[[str], None] = print


class Fitted:
    """A fold's fitted model: one score per event, and its loss history (per epoch, per member)."""

    history: dict

    def predict(self, events: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError


@dataclass
class ClassifierScores(Fitted):
    """A classifier backend's model, scoring events by their features."""

    model: object
    features: list[str]  # the columns it was trained on (the scan's features, or its reference's InputMap's)
    history: dict = field(default_factory=dict)

    def predict(self, events: pd.DataFrame) -> np.ndarray:
        return self.model.predict(events[self.features].to_numpy())


class MethodRun(ABC):
    """A method as configured in a scan (``cathode-nn``, ``anode``): what the training stage drives."""

    name: str
    method: Method
    # fits many folds as one model (with one checkpoint), when their ``epoch_key`` agrees
    batched: bool = False

    @property
    @abstractmethod
    def models(self) -> tuple[str, ...]:
        ...

    @property
    @abstractmethod
    def members(self) -> int:
        ...

    @property
    @abstractmethod
    def section(self) -> str:
        """The config section whose settings change this method's results (for messages)."""

    @abstractmethod
    def tunables(self) -> dict:
        """The settings that change results: part of every fold's identity."""

    def code(self) -> str:
        """The hash of the plug-in code this method's results come from (its own module, its backend's and its
        models'; ``registry.code_identity``), "" when it is all slidescan's own."""
        from ..registry import MODELS, code_identity

        return code_identity(self.method, getattr(self, "backend", None), *(MODELS[m] for m in self.all_models()))

    def sample_needs(self) -> dict[str, tuple[str, ...]]:
        """The auxiliary samples (``data.samples``) that this method and each of its models read, by who reads them."""
        from ..registry import MODELS

        needs = {f"method {self.method.name}": self.method_samples()}
        needs.update({f"model {m}": tuple(MODELS[m].samples) for m in self.all_models()})
        return {who: samples for who, samples in needs.items() if samples}

    @property
    def has_template(self) -> bool:
        """Whether its folds score a held-out template of the SR background (``Reference.held_out``): what the
        template count test (``bumphunt.statistic``) predicts the background from."""
        return getattr(self.method, "held_out", None) is not None

    def method_samples(self) -> tuple[str, ...]:
        """The samples the method itself reads (``inputs.samples``), not its models."""
        return tuple(getattr(self.method, "samples", ()))

    def samples(self) -> tuple[str, ...]:
        """Every sample this method reads, itself or through its models."""
        return tuple(dict.fromkeys(s for samples in self.sample_needs().values() for s in samples))

    def with_code(self, tunables: dict) -> dict:
        """``tunables`` with the plug-in code's hash, when there is one (built-in methods keep their identities)."""
        code = self.code()
        return {**tunables, "code": code} if code else tunables

    @abstractmethod
    def fold_data(self, inputs: WindowInputs, fold: int) -> FoldData:
        ...

    def describe(self, fold: FoldData) -> str:
        """The fold's training sample, for its log."""
        return f"{len(fold.train.y)} training events, {self.members} members"

    def epoch_key(self, folds: list[FoldData]) -> int | None:
        """What every fold of a pseudo-experiment shares and its identity includes (events per epoch); None: nothing."""
        return None

    @abstractmethod
    def fit(self, fits: list[FoldFit], checkpoint, log: Callable[[str], None], epoch_key: int | None = None
            ) -> list[Fitted]:
        ...

    # a fold's score depends on its events' mjj too (density methods), not only on their features
    uses_mjj: bool = False

    def unweighted(self) -> list[str]:
        """What of this method ignores per-event weights: the method itself and the models it needs."""
        from ..registry import MODELS

        out = [] if self.method.weighted else [f"method {self.name}"]
        return out + [f"model {m} (of {self.name})" for m in self.all_models() if not MODELS[m].weighted]

    def all_models(self) -> tuple[str, ...]:
        """The models this method reads and, before each, the models those read (``Model.models``), each once."""
        from ..registry import model_order

        return model_order(self.models)
