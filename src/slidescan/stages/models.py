"""The model stage: one per-window model (``density.Model``) for the units (window, pseudo-experiment) of a job.

A job serves one unit or many (``packing.models``); each unit keeps its own output file, figure, log
and checkpoint. Units are fitted together when the model can (``Model.fit_many``: the sideband flow
trains its units as one batched model), else one after another. A unit that fails its own checks is
left out and the others are written; its job then fails naming it, and the rerun finds the finished
units' checkpoints at their last epoch, so they are not trained again.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .. import joblog
from ..density import ModelContext, configure_model
from ..features import require
from ..io import read_attrs, read_table, write_tables
from ..layout import Layout, PseudoExperiment
from ..settings import ScanSettings
from . import check_forced_failure


def fit_model(settings: ScanSettings, layout: Layout, name: str, window: str, experiment: PseudoExperiment,
              log: Callable[[str], None] = print) -> None:
    """One unit: ``fit_models`` of one window and pseudo-experiment."""
    fit_models(settings, layout, name, [(window, experiment)], log)


def fit_models(settings: ScanSettings, layout: Layout, name: str, units: list[tuple[str, PseudoExperiment]],
               log: Callable[[str], None] = print) -> None:
    """Fit model ``name`` for every unit; write each unit's file and diagnostics figure."""
    configured = configure_model(name, settings.config)
    model = configured.model
    contexts, failed = [], {}
    for window, experiment in units:
        unit_log = _unit_log(layout.model_log(model, window, experiment))
        try:
            check_forced_failure(layout.model(model, window, experiment))
            contexts.append(_context(settings, layout, configured, window, experiment, unit_log))
        except Exception as err:
            unit_log(traceback.format_exc().rstrip())
            failed[(window, experiment)] = f"{type(err).__name__}: {err}"
    if model.fit_many is not None and len(contexts) > 1:
        device = getattr(configured.settings, "device", "cpu")
        from ..devices import resolve_device

        cap = settings.packing.members_per_model(resolve_device(device).type, settings.packing.model_members)
        log(f"{len(contexts)} {name} units as batched models of at most {cap or len(contexts)} members")
        try:
            results = model.fit_many(contexts, cap)
        except Exception as err:  # the batch failed: every unit of it failed with it
            for ctx in contexts:
                ctx.log(traceback.format_exc().rstrip())
                failed[(ctx.window.name, ctx.experiment)] = f"{type(err).__name__}: {err}"
            contexts, results = [], []
    else:
        results = []
        for ctx in list(contexts):
            try:
                results.append(model.fit(ctx))
            except Exception as err:
                ctx.log(traceback.format_exc().rstrip())
                failed[(ctx.window.name, ctx.experiment)] = f"{type(err).__name__}: {err}"
                contexts.remove(ctx)
    for ctx, result in zip(contexts, results):
        try:
            _write(layout, model, ctx, result)
        except Exception as err:
            ctx.log(traceback.format_exc().rstrip())
            failed[(ctx.window.name, ctx.experiment)] = f"{type(err).__name__}: {err}"
    for (window, experiment), reason in failed.items():
        log(f"{window} {experiment}: FAILED: {reason} (traceback in {layout.model_log(model, window, experiment)})")
    if failed:
        listing = "; ".join(f"{w} {e}: {reason}" for (w, e), reason in failed.items())
        raise RuntimeError(f"{len(failed)} of {len(units)} {name} units failed ({listing}). The others are written; "
                           "a rerun resumes them from their checkpoints")


def _unit_log(path: Path) -> Callable[[str], None]:
    """A unit's own log: every attempt appends (its first line marks it), like a training fold's."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def log(message: str) -> None:
        with open(path, "a") as handle:
            print(message, file=handle)

    log(joblog.attempt())
    return log


def _context(settings: ScanSettings, layout: Layout, configured, window: str, experiment: PseudoExperiment,
             log: Callable[[str], None]) -> ModelContext:
    model = configured.model
    split = layout.split(window, experiment)
    data, references = read_table(split, "data"), {t: read_table(split, t) for t in ("background_sr", "signal")}
    for table in (data, *references.values()):
        require(table.columns, settings.features, str(split))
    return ModelContext(configured.settings, settings.window(window), experiment, data, references, layout.events(),
                        layout.model_checkpoint(model, window, experiment), log, list(settings.features), settings.k,
                        settings.data.seed, (model.short, window, experiment.injection, experiment.seed))


def _write(layout: Layout, model, ctx: ModelContext, result) -> None:
    name, window, experiment = model.name, ctx.window.name, ctx.experiment
    if "fingerprint" not in result.attrs:
        raise ValueError(f"model {name}: its fit returned no 'fingerprint' attribute (what its result depends on)")
    # a model that trains nothing has an empty loss history (its loss-curve figure says so)
    empty = pd.DataFrame({"epoch": np.zeros(0, int), "train_loss": np.zeros(0), "val_loss": np.zeros(0)})
    tables = {**result.tables, "history": result.history if result.history is not None else empty}
    split = layout.split(window, experiment)
    write_tables(layout.model(model, window, experiment), tables,
                 attrs={**read_attrs(split), "model": name, **result.attrs}, arrays=result.arrays)
    if model.diagnostics:
        if result.plot is None:
            raise ValueError(f"model {name} declares a diagnostics figure but its fit returned no plot")
        result.plot(layout.model_plot(model, window, experiment))


__all__ = ["fit_model", "fit_models"]
