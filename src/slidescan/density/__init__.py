"""Per-window models: what methods need besides a classifier, built once per window and pseudo-experiment.

A :class:`Model` is fitted by one workflow job per (window, injection, seed) and writes one HDF5
file: its tables (e.g. CATHODE's SR samples), its parameters as arrays (a flow, for methods that
evaluate its density), its loss history and a diagnostics figure for the report. A method names
the models it needs; the DAG, ``slidescan status`` and the report learn them from the registry.
The built-in ones are the sideband flow (CATHODE, ANODE, R-ANODE, flow-nll) and the flow of the
simulated background (flow-nll with ``background: simulation``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..registry import MODELS


@dataclass
class ModelContext:
    """What a model's ``fit`` gets: its settings, its window's events, its seeds and checkpoint, a log."""

    settings: object  # the model's typed section (None without one)
    window: object  # windows.Window
    experiment: object  # layout.PseudoExperiment (None for a model of the window alone, ``Model.window_alone``)
    data: pd.DataFrame  # the window's events, with region and fold (empty for a model of the window alone)
    # the SR's truth references of the split file (background_sr, signal: the data's own labelled events set apart, not
    # a simulation; a simulation is ``samples``)
    truth: dict[str, pd.DataFrame]
    events: Path  # the scan's events file: the whole mass range, the truth references included
    checkpoint: Path
    log: Callable[[str], None]
    features: list[str]
    k: int  # folds of the scan
    base_seed: int
    key: tuple  # (model short name, window, *experiment.key): the root of the model's random streams
    # the auxiliary samples the model declares (data.samples): the window's events of each, with region and fold
    samples: dict[str, pd.DataFrame] = field(default_factory=dict)
    # the outputs of the models it reads (``Model.models``), for the same window and pseudo-experiment
    models: dict = field(default_factory=dict)

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """The former name of ``truth`` (plug-ins written before it was renamed keep working)."""
        return self.truth

    def seed(self, *parts) -> int:
        from ..seeds import derive_seed

        return derive_seed(self.base_seed, *self.key, *parts)

    def rng(self, *parts) -> np.random.Generator:
        return np.random.default_rng(self.seed(*parts))


@dataclass
class ModelResult:
    """What a model's ``fit`` returns; the model stage writes it to one file, atomically."""

    tables: dict[str, pd.DataFrame]
    attrs: dict  # must hold "fingerprint": what the result depends on (folds that read it include it)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    history: pd.DataFrame | None = None  # epoch, train_loss, val_loss
    plot: Callable[[Path], None] | None = None  # draws the diagnostics figure to the path given


@dataclass(frozen=True)
class Model:
    """A registered per-window model.

    ``directory`` (outputs and figures) and ``short`` (logs, checkpoints, random streams) default to
    ``models/<name>`` and ``<name>``.
    """

    name: str
    description: str
    fit: Callable[[ModelContext], ModelResult]
    settings_type: type | None = None
    # fits the units of one job together (a batched model), given the most members one batched model may
    # hold (0: all); without it the units of a job are fitted one after another
    fit_many: Callable[[list, int], list] | None = None
    directory: str = ""
    short: str = ""
    gpu: bool = True
    # draws a diagnostics figure for the report (``ModelResult.plot``)
    diagnostics: bool = True
    # the report's caption of its diagnostics figure (rst; ``snakemake.wildcards`` are available)
    caption: str = ""
    loss_label: str = "negative log-likelihood per event"
    needs_truth: bool = False
    # the auxiliary samples (data.samples) it reads, as ctx.samples[name]: the scan must name them
    samples: tuple[str, ...] = ()
    # the region kinds (windows.kind) it works in: mjj windows only unless it says more (it must not read mjj edges)
    regions: tuple[str, ...] = ("mjj_window",)
    # the models whose outputs it reads, as ctx.models[name] (their jobs run first; its fingerprint includes theirs)
    models: tuple[str, ...] = ()
    # reads only its window's samples (and models that do too), never the data: it is fitted once per window and
    # shared by every pseudo-experiment (a flow of the simulation need not be retrained for each injection and seed);
    # its ctx.data is empty and its ctx.experiment None
    window_alone: bool = False
    # learns from per-event weights (``data.table.weight``); a scan with weights refuses a method whose model does not
    weighted: bool = False
    # the attribute of its result holding its closure where it can be checked on data (an AUC of a classifier of its
    # output against data it did not train on, 0.5 when they agree): shown on the report's template pages
    closure: str = ""

    def __post_init__(self):
        if not self.directory:
            object.__setattr__(self, "directory", f"models/{self.name}")
        if not self.short:
            object.__setattr__(self, "short", self.name)

    @property
    def settings_types(self) -> tuple:
        return (self.settings_type,) if self.settings_type else ()


@dataclass(frozen=True)
class ConfiguredModel:
    model: Model
    settings: object

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def threads(self) -> int:
        return int(getattr(self.settings, "threads", 1) or 1)

    def config_section(self, config: dict) -> dict:
        """The part of the config its result depends on (a rule parameter: a change reruns it)."""
        from ..settings import section_of

        if not self.model.settings_type:
            return {}
        section = section_of(config, self.model.settings_type.path())
        # a key added later, at the value of the old behaviour, leaves an old scan's rule parameters as they were
        late = getattr(self.model.settings_type, "late_defaults", {})
        return {k: v for k, v in section.items() if not (k in late and v == late[k])}


def register_model(model: Model) -> Model:
    """Add a per-window model to the registry (call it at the bottom of the model's module)."""
    if not isinstance(model, Model):
        raise TypeError(f"register_model() takes a Model, got {type(model).__name__}")
    return MODELS.register(model)


def configure_model(name: str, config: dict) -> ConfiguredModel:
    from ..settings import section_of

    model = MODELS[name]
    settings = model.settings_type.from_config(section_of(config, model.settings_type.path())) \
        if model.settings_type else None
    return ConfiguredModel(model, settings)


# the built-in models register themselves
from . import (context_weights, curtains, feta, generate, salad, sideband_flow,  # noqa: E402,F401
               simulation_flow)

__all__ = ["ConfiguredModel", "Model", "ModelContext", "ModelResult", "configure_model", "register_model"]
