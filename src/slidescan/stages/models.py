"""The model stage: one per-window model (``density.Model``) for the units (window, pseudo-experiment) of a job.

A job serves one unit or many (``packing.models``); each unit keeps its own output file, figure, log
and checkpoint. Units are fitted together when the model can (``Model.fit_many``: the sideband flow
trains its units as one batched model), else one after another. A unit that fails its own checks is
left out and the others are written; its job then fails naming it, and the rerun finds the finished
units' checkpoints at their last epoch, so they are not trained again.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from .. import joblog
from ..density import ModelContext, configure_model
from ..features import require
from ..io import content_hash, read_attrs, read_table, write_tables
from ..layout import Layout, PseudoExperiment
from ..registry import code_identity
from ..settings import ScanSettings
from . import check_forced_failure
from .train import read_samples


def fit_model(settings: ScanSettings, layout: Layout, name: str, window: str, experiment: PseudoExperiment,
              log: Callable[[str], None] = print) -> None:
    """One unit: ``fit_models`` of one window and pseudo-experiment."""
    fit_models(settings, layout, name, [(window, experiment)], log)


def fit_models(settings: ScanSettings, layout: Layout, name: str, units: list[tuple[str, PseudoExperiment]],
               log: Callable[[str], None] = print) -> None:
    """Fit model ``name`` for every unit; write each unit's file and diagnostics figure."""
    configured = configure_model(name, settings.config)
    model = configured.model
    if model.window_alone:  # one unit per window, whatever pseudo-experiments the job was given
        units = list(dict.fromkeys((window, None) for window, _ in units))
    contexts, failed = [], joblog.Failures()
    for window, experiment in units:
        unit_log = joblog.UnitLog(layout.model_log(model, window, experiment)).started()
        with failed.record([(window, experiment)], [unit_log]):
            check_forced_failure(layout.model(model, window, experiment))
            contexts.append(_context(settings, layout, configured, window, experiment, unit_log))
    devices = _devices(configured.settings) if model.fit_many is not None and len(contexts) > 1 else []
    if len(devices) > 1:
        contexts, results = _fit_on_devices(settings, model, contexts, devices, failed, log)
    elif devices:
        import torch

        cap = settings.packing.members_per_model(torch.device(devices[0]).type, settings.packing.model_members)
        log(f"{len(contexts)} {name} units as batched models of at most {cap or len(contexts)} members")
        results = _fit_many(model, contexts, cap, failed)
        contexts = contexts if results else []
    else:
        results = []
        for ctx in list(contexts):
            with failed.record([_unit(ctx)], [ctx.log]):
                results.append(model.fit(ctx))
            if _unit(ctx) in failed:
                contexts.remove(ctx)
    for ctx, result in zip(contexts, results):
        with failed.record([_unit(ctx)], [ctx.log]):
            _write(layout, model, ctx, result)
    for (window, experiment), reason in failed.items():
        log(f"{_label(window, experiment)}: FAILED: {reason} (traceback in "
            f"{layout.model_log(model, window, experiment)})")
    if failed:
        listing = "; ".join(f"{_label(w, e)}: {reason}" for (w, e), reason in failed.items())
        raise RuntimeError(f"{len(failed)} of {len(units)} {name} units failed ({listing}). The others are written; "
                           "a rerun resumes them from their checkpoints")


def _unit(ctx: ModelContext) -> tuple:
    return ctx.window.name, ctx.experiment


def _label(window: str, experiment) -> str:
    return window if experiment is None else f"{window} {experiment}"


def _fit_many(model, contexts: list[ModelContext], cap, failed: joblog.Failures) -> list:
    """The units as batched models (``Model.fit_many``): when one fails, every unit of the call failed with it."""
    with failed.record([_unit(ctx) for ctx in contexts], [ctx.log for ctx in contexts]):
        return model.fit_many(contexts, cap)
    return []


def _devices(model_settings) -> list[str]:
    """The devices a model's ``device`` setting names (a model without one: the CPU)."""
    from ..devices import device_names

    setting = getattr(model_settings, "device", None)
    return device_names(setting) if isinstance(setting, str) else ["cpu"]


def _fit_on_devices(settings: ScanSettings, model, contexts: list[ModelContext], devices: list[str],
                    failed: joblog.Failures, log: Callable[[str], None]) -> tuple[list[ModelContext], list]:
    """The units as batched models spread over several devices (``devices.split_models``, ``fit_on_devices``:
    balanced by units x window events). A model that fails fails its units; the others are kept. Returns the
    fitted units' contexts and results, in order."""
    import dataclasses

    import torch

    from ..devices import describe, fit_on_devices, split_models

    cap = settings.packing.members_per_model(torch.device(devices[0]).type, settings.packing.model_members)
    sizes = split_models([len(contexts)], cap, len(devices))[0]
    bounds = np.cumsum([0] + sizes)
    models = [contexts[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    log(f"{len(contexts)} {model.name} units as {len(models)} batched models of at most {max(sizes)} members on "
        f"{len(devices)} devices ({describe(devices)})")
    done: dict[int, tuple[list, list]] = {}

    def announce(i: int, units: list[ModelContext], device: str) -> None:
        listing = ", ".join(_label(*_unit(ctx)) for ctx in units)
        log(f"model {i + 1} of {len(models)} on {device}: {len(units)} units ({listing})")
        for ctx in units:
            ctx.log(f"trained on {device}, in model {i + 1} of {len(models)} of its job ({len(units)} units)")

    def fit(i: int, units: list[ModelContext], device: str) -> None:
        units = [dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, device=device)) for ctx in units]
        results = _fit_many(model, units, len(units), failed)
        if results:
            done[i] = (units, results)

    # the events of a unit's window stand for those its flow trains on (sidebands, or the window's simulation)
    fit_on_devices(models, [len(m) * max(len(ctx.data) for ctx in m) for m in models], devices, fit, announce)
    fitted = [(ctx, result) for i in sorted(done) for ctx, result in zip(*done[i])]
    return [ctx for ctx, _ in fitted], [result for _, result in fitted]


def _context(settings: ScanSettings, layout: Layout, configured, window: str, experiment: PseudoExperiment | None,
             log: Callable[[str], None]) -> ModelContext:
    """What a unit's fit gets. A model of the window alone (experiment None) gets no data: its samples only."""
    model = configured.model
    if experiment is None:
        data, references = pd.DataFrame(columns=[*settings.features, "mjj", "region", "fold"]), {}
    else:
        split = layout.split(window, experiment)
        data, references = read_table(split, "data"), {t: read_table(split, t) for t in ("background_sr", "signal")}
        for table in (data, *references.values()):
            require(table.columns, settings.features, str(split))
    return ModelContext(configured.settings, settings.window(window), experiment, data, references, layout.events(),
                        layout.model_checkpoint(model, window, experiment), log, list(settings.features), settings.k,
                        settings.data.seed, (model.short, window, *(experiment.key if experiment else ())),
                        read_samples(layout, model.samples, window, f"model {model.name}"),
                        _needed_models(layout, model, window, experiment))


def _needed_models(layout: Layout, model, window: str, experiment: PseudoExperiment) -> dict:
    """The outputs of the models ``model`` reads, for its window and pseudo-experiment."""
    from ..methods.base import ModelOutput
    from ..registry import MODELS

    out = {}
    for name in model.models:
        path = layout.model(MODELS[name], window, experiment)
        if not path.exists():
            raise ValueError(f"model {model.name} needs model {name}'s output for {_label(window, experiment)} (rule "
                             f"{name}): {path} does not exist")
        out[name] = ModelOutput(name, path)
    return out


def _write(layout: Layout, model, ctx: ModelContext, result) -> None:
    name, window, experiment = model.name, ctx.window.name, ctx.experiment
    if "fingerprint" not in result.attrs:
        raise ValueError(f"model {name}: its fit returned no 'fingerprint' attribute (what its result depends on)")
    # a plug-in model's code is part of what its result depends on, so the folds that read its fingerprint retrain
    # when the code changes (registry.code_identity; slidescan's own models keep their fingerprints)
    # and so are the fingerprints of the models it read (ctx.models)
    code = code_identity(model)
    read = tuple(output.fingerprint for output in ctx.models.values())
    attrs = result.attrs
    if code or read:
        attrs = {**attrs, "fingerprint": content_hash(extra=(result.attrs["fingerprint"], code, *read))}
    # a model that trains nothing has an empty loss history (its loss-curve figure says so)
    empty = pd.DataFrame({"epoch": np.zeros(0, int), "train_loss": np.zeros(0), "val_loss": np.zeros(0)})
    tables = {**result.tables, "history": result.history if result.history is not None else empty}
    # a unit of a pseudo-experiment carries the split's attributes (window, injection, seed...); a model of the
    # window alone its window's
    origin = read_attrs(layout.split(window, experiment)) if experiment is not None else {"window": window}
    write_tables(layout.model(model, window, experiment), tables, attrs={**origin, "model": name, **attrs},
                 arrays=result.arrays)
    if model.diagnostics:
        if result.plot is None:
            raise ValueError(f"model {name} declares a diagnostics figure but its fit returned no plot")
        result.plot(layout.model_plot(model, window, experiment))


__all__ = ["fit_model", "fit_models"]
