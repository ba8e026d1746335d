"""The training stage: every fold of every seed of one window, method and injection, in one job.

One job per (window, method, injection), not per fold or seed: SLURM and Python start-up are paid
once, the DAG is seeds x k times smaller, and a batched backend trains the folds of all seeds as
one model, each the network it would be alone, up to floating-point rounding. A fold's result
(with its own log) is not a declared output, so Snakemake never deletes it: when a fold fails, the
job still trains the others and then fails naming the failed ones, and the rerun keeps every
finished fold whose data and settings are unchanged (its fingerprint) and trains only the rest.
The stage is the same for every method: a :class:`methods.MethodRun` says what a fold learns
from, what it scores and how folds are fitted. A job with several devices (``device: auto`` with
several GPUs, or a list) trains one batched model per device at once (``slidescan.devices``).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .. import joblog
from ..data import replica_columns
from ..features import require
from ..io import content_hash, has_table, read_attrs, read_table, write_tables
from ..layout import Layout, PseudoExperiment
from ..methods import FoldData, FoldFit, MethodRun, ModelOutput, WindowInputs
from ..methods.base import SCORED_COLUMNS, check_columns
from ..registry import MODELS
from ..seeds import derive_seed
from ..settings import ScanSettings
from . import check_forced_failure


def member_seeds(base_seed: int, window: str, method: str, experiment: PseudoExperiment, fold: int,
                 members: int) -> list[int]:
    return [derive_seed(base_seed, "member", window, method, *experiment.key, int(fold), m)
            for m in range(members)]


def fold_settings(settings: ScanSettings, run: MethodRun, window: str, experiment: PseudoExperiment,
                  fold: int) -> tuple:
    """Method, fold, the settings that change results, and the member seeds."""
    fold = int(fold)
    return run.name, fold, run.tunables(), member_seeds(settings.data.seed, window, run.name, experiment, fold,
                                                        run.members)


def fold_settings_identity(settings: ScanSettings, run: MethodRun, window: str, experiment: PseudoExperiment,
                           fold: int) -> str:
    """The settings part of a fold's identity, without its data.

    Stored in each fold's result so that ``slidescan status`` can tell, without reading any data, that
    a finished fold was trained with other settings and will be retrained.
    """
    return content_hash(extra=fold_settings(settings, run, window, experiment, fold))


def window_inputs(layout: Layout, run: MethodRun, window, experiment: PseudoExperiment,
                  features: tuple[str, ...], groups: dict | None = None) -> tuple[WindowInputs, dict]:
    """The window's events, its SR references, the outputs of the models the method needs, the split's attrs."""
    split = layout.split(window.name, experiment)
    models = {}
    for name in run.models:
        path = layout.model(MODELS[name], window.name, experiment)
        if not path.exists():
            raise ValueError(f"method {run.name} needs model {name}'s output for {window.name} {experiment} "
                             f"(rule {name}): {path} does not exist")
        models[name] = ModelOutput(name, path)
    inputs = WindowInputs(window, experiment, read_table(split, "data"),
                          {t: read_table(split, t) for t in ("background_sr", "signal")}, models, list(features),
                          read_samples(layout, run.method_samples(), window.name, f"method {run.name}"),
                          dict(groups or {}))
    for table in (inputs.data, *inputs.truth.values()):
        require(table.columns, features, str(split))
    return inputs, read_attrs(split)


def read_samples(layout: Layout, names, window: str, who: str) -> dict:
    """The window's events of each auxiliary sample ``names`` (``data.samples``), each table's origin in its attrs
    (for the template contract's errors)."""
    samples = {}
    for name in names:
        path = layout.sample_split(name, window)
        if not path.exists():
            raise ValueError(f"{who} reads data.samples.{name}, but its events of {window} ({path}) do not exist "
                             f"(rule split_sample)")
        table = read_table(path, "events")
        table.attrs["source"] = f"data.samples.{name} of {window} ({path})"
        samples[name] = table
    return samples


@dataclass(eq=False)
class FoldJob:
    """One pseudo-experiment of a training job: its inputs, each fold's data, and the fold files."""

    settings: ScanSettings
    layout: Layout
    run: MethodRun
    window: str
    experiment: PseudoExperiment
    inputs: WindowInputs
    attrs: dict
    folds: list[FoldData]
    epoch_key: int | None

    @classmethod
    def load(cls, settings: ScanSettings, layout: Layout, run: MethodRun, window: str,
             experiment: PseudoExperiment) -> "FoldJob":
        inputs, attrs = window_inputs(layout, run, settings.window(window), experiment, settings.features,
                                      settings.feature_groups)
        folds = [run.fold_data(inputs, fold) for fold in range(settings.k)]
        scored = [*settings.features, *SCORED_COLUMNS]
        for fold, fd in enumerate(folds):
            check_columns(fd.scored, scored, f"method {run.name}, fold {fold}: its scored events")
            if fd.held_out is not None:
                check_columns(fd.held_out, scored, f"method {run.name}, fold {fold}: its held-out template events")
        return cls(settings, layout, run, window, experiment, inputs, attrs, folds, run.epoch_key(folds))

    def fold_file(self, fold: int) -> Path:
        return self.layout.fold(self.window, self.run.name, self.experiment, fold)

    def fold_log(self, fold: int) -> Path:
        return self.layout.fold_log(self.window, self.run.name, self.experiment, fold)

    def name(self, fold: int) -> str:
        return f"seed {self.experiment.seed} fold {fold}"

    def fit_of(self, fold: int, log: Callable[[str], None] = print) -> FoldFit:
        return FoldFit(self.name(fold), self.experiment.seed, fold, self.folds[fold],
                       member_seeds(self.settings.data.seed, self.window, self.run.name, self.experiment, fold,
                                    self.run.members), self.inputs,
                       self.layout.fold_checkpoint(self.window, self.run.name, self.experiment.injection,
                                                   self.experiment.seed, fold, self.experiment.signal), log)

    def identity(self, fold: int) -> str:
        """What a fold's result depends on: its training and scored events, the settings, the seeds, and for
        batched networks the events per epoch."""
        fd = self.folds[fold]
        arrays = [fd.train.x, fd.train.y, fd.train.weight]
        if fd.train.mjj is not None:
            arrays.append(fd.train.mjj)
        features = fd.features or self.inputs.features  # what its model sees of the events it scores
        arrays += [fd.scored[features].to_numpy(), fd.scored["event_id"].to_numpy()]
        if self.run.uses_mjj:
            arrays.append(fd.scored["mjj"].to_numpy())
        if fd.held_out is not None:
            arrays.append(fd.held_out[features].to_numpy())
            # the template's ensemble is written with its scores (a fold without it, or with other replicas, reruns;
            # a template without one keeps the fingerprints of before ensembles existed)
            replicas = replica_columns(fd.held_out)
            if replicas:
                arrays.append(fd.held_out[replicas].to_numpy())
        extra = fold_settings(self.settings, self.run, self.window, self.experiment, fold)
        # folds without an epoch length (trees) keep the fingerprints of before network folds were batched
        if self.epoch_key is not None:
            extra = (extra, self.epoch_key)
        if fd.extra_identity:
            extra = (extra, fd.extra_identity)
        return content_hash(*arrays, extra=extra)

    def write(self, fold: int, fitted, identity: str) -> None:
        """A fold's out-of-fold scores (and held-out reference scores), loss history and fingerprints."""
        fd = self.folds[fold]
        tables = {"scores": _score_table(fitted, fd.scored), "history": _history_table(fitted)}
        if fd.held_out is not None:
            tables["reference_scores"] = _score_table(fitted, fd.held_out)
        for name, table in tables.items():
            if name != "history" and not np.isfinite(table["score"]).all():
                bad = int((~np.isfinite(table["score"])).sum())
                raise FloatingPointError(f"{self.name(fold)}: {bad} of {len(table)} {name.replace('_', ' ')} are not "
                                         "finite (NaN or inf): the training diverged; its loss is in the fold's log")
        settings_fingerprint = fold_settings_identity(self.settings, self.run, self.window, self.experiment, fold)
        write_tables(self.fold_file(fold), tables,
                     attrs={**self.attrs, "method": self.run.name, "fold": int(fold), "fingerprint": identity,
                            "settings_fingerprint": settings_fingerprint})


def train(settings: ScanSettings, layout: Layout, window: str, method: str, injection: int,
          seeds: list[int] | None = None, log: Callable[[str], None] = print, signal: str = "") -> None:
    """Train every fold of every seed (default: the scan's) of one window, method, signal model and injection;
    write each seed's merged scores."""
    run = settings.method(method)
    k = settings.k
    jobs, pending = [], []
    for seed in (settings.seeds if seeds is None else seeds):
        job = FoldJob.load(settings, layout, run, window, PseudoExperiment(int(injection), int(seed), signal))
        jobs.append(job)
        for fold in range(k):
            identity = job.identity(fold)
            path = job.fold_file(fold)
            if path.exists() and read_attrs(path).get("fingerprint") == identity:
                log(f"{job.name(fold)}: kept, finished earlier with the same data and settings ({path})")
                continue
            log(f"{job.name(fold)}: training (log: {job.fold_log(fold)})")
            pending.append((job, fold, identity))
    failed = _fit_batched(run, pending, log) if run.batched else _fit_one_by_one(run, pending)
    for (job, fold), reason in failed.items():
        log(f"{job.name(fold)}: FAILED: {reason} (traceback in {job.fold_log(fold)})")
    if failed:
        seed_list = ", ".join(str(job.experiment.seed) for job in jobs)
        listing = "; ".join(f"{job.name(fold)}: {reason}" for (job, fold), reason in failed.items())
        kept_in = ", ".join(str(layout.fold_dir(window, method, job.experiment)) for job in jobs)
        model = f"signal {signal} " if signal else ""
        raise RuntimeError(f"{len(failed)} of {k * len(jobs)} folds of {window} {method} {model}injection {injection} "
                           f"seed {seed_list} failed ({listing}). The {k * len(jobs) - len(failed)} finished folds are "
                           f"kept in {kept_in}; a rerun trains only the failed ones.")
    for job in jobs:
        merge_folds([str(job.fold_file(f)) for f in range(k)], layout.scores(window, method, job.experiment))


def _fit_one_by_one(run: MethodRun, pending: list) -> dict:
    """Each fold on its own, with its own checkpoint and log (backends and scores that do not batch)."""
    failed = joblog.Failures()
    for job, fold, identity in pending:
        checkpoint = job.layout.fold_checkpoint(job.window, run.name, job.experiment.injection, job.experiment.seed,
                                                fold, job.experiment.signal)
        flog = joblog.UnitLog(job.fold_log(fold)).started()
        with failed.record([(job, fold)], [flog]):
            flog(joblog.checkpoint(checkpoint))
            check_forced_failure(job.fold_file(fold))
            flog(f"{job.window} {run.name} {job.experiment} fold "
                 f"{fold}: {run.describe(job.folds[fold])}")
            fitted = run.fit([job.fit_of(fold, flog)], checkpoint, flog)[0]
            job.write(fold, fitted, identity)
    return failed


def _fit_batched(run: MethodRun, pending: list, log: Callable[[str], None] = print) -> dict:
    """The pending folds as batched models, one per epoch length (usually one for the whole job), or on
    several devices at least one per device, each device training one model at a time, all at once.

    A fold whose own check fails is left out; when a batched training fails, every fold in it not
    yet written has failed.
    """
    failed = joblog.Failures()
    buckets: dict = {}
    for job, fold, identity in pending:
        with failed.record([(job, fold)], [joblog.UnitLog(job.fold_log(fold)).started()]):
            check_forced_failure(job.fold_file(fold))
            buckets.setdefault(job.epoch_key, []).append((job, fold, identity))
    if not buckets:
        return failed
    import torch

    from ..devices import describe, device_names, fit_on_devices, split_models

    settings = pending[0][0].settings
    device_setting = getattr(getattr(run, "settings", None), "device", None)
    devices = device_names(device_setting) if isinstance(device_setting, str) else [None]
    # on a CPU, models of at most `packing.cpu_members` members: a fold is the network it is alone anyway
    cap = settings.packing.members_per_model(torch.device(devices[0]).type if devices[0] else "cpu")
    folds_per_model = max(1, cap // run.members) if cap else 0
    models = []
    for (epoch_key, bucket), sizes in zip(buckets.items(), split_models([len(b) for b in buckets.values()],
                                                                          folds_per_model, len(devices))):
        for start, size in zip(np.cumsum([0] + sizes[:-1]), sizes):
            models.append((epoch_key, bucket[start:start + size]))
    if len(devices) == 1 or len(models) == 1:
        for epoch_key, batch in models:
            _fit_batch(run, batch, epoch_key, failed)
        return failed
    log(f"{sum(len(batch) for _, batch in models)} folds as {len(models)} batched models on {len(devices)} devices "
        f"({describe(devices)})")

    def announce(i: int, model: tuple, device: str) -> None:
        batch = model[1]
        log(f"model {i + 1} of {len(models)} on {device}: {len(batch)} folds, {len(batch) * run.members} members "
            f"({'; '.join(_folds_by_seed(batch))})")

    def fit(i: int, model: tuple, device: str) -> None:
        _fit_batch(_on_device(run, device), model[1], model[0], failed, device)

    # balanced by members x events per member-epoch (the epoch length of the nn backend, else the largest training
    # set of its folds)
    costs = [len(batch) * run.members * (epoch_key or max(len(job.folds[f].train.y) for job, f, _ in batch))
             for epoch_key, batch in models]
    fit_on_devices(models, costs, devices, fit, announce)
    return failed


def _on_device(run: MethodRun, device: str) -> MethodRun:
    """The method with its settings' device replaced (an execution setting: no identity changes)."""
    moved = copy.copy(run)
    moved.settings = dataclasses.replace(run.settings, device=device)
    return moved


def _fit_batch(run: MethodRun, batch: list, epoch_key, failed: joblog.Failures, device: str | None = None) -> None:
    """One batched model of folds with the same epoch length; every fold's log gets the shared epoch lines."""
    first = batch[0][0]
    names = [f"s{job.experiment.seed}f{f}" for job, f, _ in batch]
    checkpoint = first.layout.batch_checkpoint(first.window, run.name, first.experiment.injection, names,
                                               first.experiment.signal)
    written = []
    fold_logs = [joblog.UnitLog(job.fold_log(f)) for job, f, _ in batch]
    try:
        fits = [job.fit_of(f, flog) for (job, f, _), flog in zip(batch, fold_logs)]

        def log_all(message: str) -> None:
            for flog in fold_logs:
                flog(message)

        model = f"signal {first.experiment.signal} " if first.experiment.signal else ""
        what = (f"{first.window} {run.name} {model}injection {first.experiment.injection}: "
                f"{'; '.join(_folds_by_seed(batch))}")
        log_all(joblog.batch(len(batch), len(batch) * run.members, what)
                + (f", {epoch_key} events per member-epoch" if epoch_key is not None else ""))
        if device is not None:
            log_all(f"device: {device} (one of the job's devices; the others train other models at once)")
        log_all(joblog.checkpoint(checkpoint))
        for job, f, _ in batch:
            log_all(f"{job.name(f)}: {run.describe(job.folds[f])}")
        for (job, f, identity), fitted in zip(batch, run.fit(fits, checkpoint, log_all, epoch_key)):
            job.write(f, fitted, identity)
            written.append((job, f))
    except Exception as err:  # every fold of the batch not yet written failed with it (its log says why)
        unwritten = [i for i, (job, f, _) in enumerate(batch) if (job, f) not in written]
        failed.add([batch[i][:2] for i in unwritten], err, [fold_logs[i] for i in unwritten])


def _folds_by_seed(batch) -> list[str]:
    """``seed 1 folds 0, 1, 2`` per seed of a batch."""
    seeds: dict[int, list[int]] = {}
    for job, f, _ in batch:
        seeds.setdefault(job.experiment.seed, []).append(f)
    return [f"seed {s} folds {', '.join(map(str, folds))}" for s, folds in seeds.items()]


def _score_table(fitted, events: pd.DataFrame) -> pd.DataFrame:
    table = pd.DataFrame({
        "event_id": events["event_id"].to_numpy() if "event_id" in events else np.full(len(events), -1),
        "mjj": events["mjj"].to_numpy(),
        "region": events["region"].to_numpy() if "region" in events else np.zeros(len(events), np.int8),
        "label": events["label"].to_numpy(),
        "score": fitted.predict(events),
    })
    if "weight" in events:  # weighted inputs only (data.table.weight): the bump hunt counts sums of weights
        table["weight"] = events["weight"].to_numpy()
    for column in replica_columns(events):  # a template's ensemble (the template count's nuisance)
        table[column] = events[column].to_numpy()
    return table


def _history_table(fitted) -> pd.DataFrame:
    """Per epoch, the members' mean training and validation loss (empty for trees)."""
    losses = getattr(fitted, "history", None) or {"train_loss": [], "val_loss": []}
    return pd.DataFrame({
        "epoch": np.arange(1, len(losses["val_loss"]) + 1),
        "train_loss": np.mean(losses["train_loss"], axis=1) if losses["train_loss"] else [],
        "val_loss": np.mean(losses["val_loss"], axis=1) if losses["val_loss"] else [],
    })


def merge_folds(fold_files: list[str], out) -> None:
    """Every window event once, with the score of the model that did not see it."""
    # each event with the fold whose model scored it (the template count predicts each fold's data from its template)
    tables = [read_table(f, "scores").assign(fold=read_attrs(f)["fold"]) for f in fold_files]
    merged = pd.concat(tables, ignore_index=True).sort_values("event_id", kind="stable").reset_index(drop=True)
    if merged["event_id"].duplicated().any():
        raise ValueError(f"{out}: an event was scored by more than one fold; fold files: {fold_files}")
    tables = {"scores": merged,
              "history": pd.concat([read_table(f, "history").assign(fold=read_attrs(f)["fold"]) for f in fold_files],
                                   ignore_index=True)}
    if all(has_table(f, "reference_scores") for f in fold_files):
        # each fold's template scored by its own fold's classifier: the template count's ensemble of k predictions
        tables["reference_scores"] = pd.concat([read_table(f, "reference_scores").assign(fold=read_attrs(f)["fold"])
                                                for f in fold_files], ignore_index=True)
    attrs = read_attrs(fold_files[0])
    for key in ("fold", "fingerprint", "settings_fingerprint"):
        attrs.pop(key, None)
    write_tables(out, tables, attrs=attrs)
