"""The workflow's stages as plain functions: each reads files, computes, writes files atomically.

Heavy libraries (torch, pyhf) are imported inside the stage that needs them: a workflow runs
hundreds of short jobs and each pays its own imports.

The Snakemake scripts in ``workflow/scripts`` only unpack ``snakemake.input/output/params`` and
call these, so every stage can also be run and tested without Snakemake.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import os
import traceback
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import data as data_mod
from .io import content_hash, has_table, read_attrs, read_table, write_csv, write_tables
from .methods import TrainingSet, held_out_reference, needs_flow, parse_method, training_set
from .seeds import derive_seed, rng
from .settings import EXECUTION_ONLY
from .windows import REGION_SR, assign_folds, window_by_name, window_grid

FAULT_ENV = "SLIDESCAN_FAIL_JOBS"
SCAN_COLUMNS = ["window", "sr_lo", "sr_hi", "method", "injection", "seed", "efficiency", "n_obs", "n_bkg",
                "n_bkg_err", "p0", "z"]


def prepare_data(config: dict, out: str | os.PathLike) -> None:
    """Background, signal pool and truth-level reference samples for the whole scan."""
    dcfg = config["data"]
    seed = dcfg["seed"]
    k = config["folds"]["k"]
    source = dcfg["source"]
    if source == "synthetic":
        scfg = dcfg["synthetic"]
        model = data_mod.SyntheticModel.from_config(scfg.get("model"))
        background = data_mod.generate_background(scfg["n_background"], model, rng(seed, "background"))
        pool = data_mod.generate_signal(scfg["signal_pool"], model, rng(seed, "signal_pool"))
        ref_bkg = data_mod.generate_background(scfg["reference_background"], model, rng(seed, "reference_background"))
        ref_sig = data_mod.generate_signal(scfg["reference_signal"], model, rng(seed, "reference_signal"))
    elif source == "lhco_h5":
        hcfg = dcfg["lhco_h5"]
        events = data_mod.read_lhco_h5(hcfg["path"])
        background, ref_bkg = _split(events[events["label"] == 0], hcfg["reference_fraction"], rng(seed, "split_bkg"))
        pool, ref_sig = _split(events[events["label"] == 1], 0.5, rng(seed, "split_sig"))
    else:
        raise ValueError(f"data.source: expected 'synthetic' or 'lhco_h5', got {source!r}")
    ref_bkg = ref_bkg.assign(fold=assign_folds(len(ref_bkg), k, rng(seed, "folds", "reference_background")))
    ref_sig = ref_sig.assign(fold=assign_folds(len(ref_sig), k, rng(seed, "folds", "reference_signal")))
    write_tables(out, {"background": background, "signal_pool": pool,
                       "reference_background": ref_bkg, "reference_signal": ref_sig}, attrs={"source": source})


def _split(df: pd.DataFrame, fraction: float, generator: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    mask = generator.random(len(df)) < fraction
    return df[~mask].reset_index(drop=True), df[mask].reset_index(drop=True)


def make_injection(config: dict, events: str | os.PathLike, injection: int, seed: int, out: str | os.PathLike) -> None:
    """One pseudo-experiment: all background plus ``injection`` signal events, with folds."""
    background = read_table(events, "background")
    pool = read_table(events, "signal_pool")
    base = config["data"]["seed"]
    df = data_mod.inject(background, pool, int(injection), rng(base, "inject", injection, seed))
    df["fold"] = assign_folds(len(df), config["folds"]["k"], rng(base, "folds", injection, seed))
    write_tables(out, {"events": df}, attrs={"injection": int(injection), "seed": int(seed)})


def split_window(config: dict, injected: str | os.PathLike, events: str | os.PathLike, window: str,
                 out: str | os.PathLike) -> None:
    """The events of one window with their region, and the truth references restricted to its SR."""
    w = window_by_name(window_grid(config["windows"]), window)
    df = read_table(injected, "events")
    df["region"] = w.region(df["mjj"].to_numpy())
    df = df[df["region"] != 2].reset_index(drop=True)
    ref_bkg = read_table(events, "reference_background")
    ref_bkg = ref_bkg[w.region(ref_bkg["mjj"].to_numpy()) == REGION_SR].reset_index(drop=True)
    write_tables(out, {"data": df, "background_sr": ref_bkg, "signal": read_table(events, "reference_signal")},
                 attrs={**read_attrs(injected), "window": window})


def check_forced_failure(path: str | os.PathLike) -> None:
    """Fail on purpose when ``$SLIDESCAN_FAIL_JOBS`` (comma-separated globs) matches ``path``.

    This is how the tests (and users rehearsing a rerun) make one fold fail for real.
    """
    for pattern in filter(None, os.environ.get(FAULT_ENV, "").split(",")):
        if fnmatch.fnmatch(str(path), pattern.strip()):
            raise RuntimeError(f"forced failure of {path}: it matches {pattern!r} in ${FAULT_ENV}")


def fit_flow(config: dict, split: str | os.PathLike, out: str | os.PathLike, checkpoint: str | os.PathLike | None = None,
             closure_plot: str | os.PathLike | None = None, log: Callable[[str], None] = print) -> None:
    """CATHODE's background model of one window: a flow fitted in the sidebands, sampled in the SR.

    Writes the SR samples (with folds and weight 1/oversampling), the loss history, and the
    sideband closure test: a classifier separating held-out sideband events from flow samples at
    the same mjj (AUC 0.5 when the flow is right).
    """
    from .flows import FlowSettings, sample_sr_mjj, train_flow

    check_forced_failure(out)
    settings = FlowSettings.from_config(config.get("flow"))
    attrs = read_attrs(split)
    w = window_by_name(window_grid(config["windows"]), attrs["window"])
    window_data = read_table(split, "data")
    sb = window_data[window_data["region"] != REGION_SR]
    sr = window_data[window_data["region"] == REGION_SR]
    base = config["data"]["seed"]
    key = ("flow", attrs["window"], attrs["injection"], attrs["seed"])
    if settings.max_train_events and len(sb) > settings.max_train_events:
        sb = sb.iloc[np.sort(rng(base, *key, "subset").choice(len(sb), settings.max_train_events, replace=False))]
    log(f"{attrs['window']} injection {attrs['injection']} seed {attrs['seed']}: flow on {len(sb)} sideband events, "
        f"sampling {settings.oversampling:g} x {len(sr)} SR events")
    flow = train_flow(sb[data_mod.FEATURES].to_numpy(), sb["mjj"].to_numpy(), settings, derive_seed(base, *key),
                      checkpoint=checkpoint, log=log)
    n = int(round(settings.oversampling * len(sr)))
    mjj = sample_sr_mjj(sr["mjj"].to_numpy(), n, w.sr_lo, w.sr_hi, derive_seed(base, *key, "mjj"))
    samples = pd.DataFrame(flow.sample(mjj, derive_seed(base, *key, "sr")), columns=data_mod.FEATURES)
    samples.insert(0, "mjj", mjj)
    samples["label"] = np.zeros(n, dtype=np.int8)
    samples["weight"] = np.full(n, 1.0 / settings.oversampling)
    samples["fold"] = assign_folds(n, config["folds"]["k"], rng(base, *key, "folds"))
    samples["region"] = np.zeros(n, dtype=np.int8)
    samples["event_id"] = -1 - np.arange(n, dtype=np.int64)

    held = sb.iloc[flow.validation_index]
    closure = pd.DataFrame(flow.sample(held["mjj"].to_numpy(), derive_seed(base, *key, "sb")), columns=data_mod.FEATURES)
    closure.insert(0, "mjj", held["mjj"].to_numpy())
    sb_auc = closure_auc(held[["mjj", *data_mod.FEATURES]].to_numpy(), closure.to_numpy(), derive_seed(base, *key, "auc"))
    log(f"sideband closure: classifier AUC of held-out sideband data vs flow samples = {sb_auc:.4f}")
    history = pd.DataFrame({"epoch": np.arange(1, len(flow.history["val_loss"]) + 1),
                            "train_loss": flow.history["train_loss"], "val_loss": flow.history["val_loss"]})
    write_tables(out, {"samples": samples, "history": history, "sb_data": held[["mjj", *data_mod.FEATURES]],
                       "sb_samples": closure},
                 attrs={**attrs, "sb_auc": sb_auc, "best_val_nll": flow.best_val_loss, "n_train": len(sb),
                        "best_epochs": ",".join(map(str, flow.best_epochs))})
    if closure_plot:
        from .plots import flow_closure

        flow_closure(held, closure, sr, samples, f"{w.name} (SR {w.sr_lo:g}-{w.sr_hi:g} TeV), injection "
                     f"{attrs['injection']}, seed {attrs['seed']}: SB classifier AUC {sb_auc:.3f}", closure_plot)


def closure_auc(data: np.ndarray, samples: np.ndarray, seed: int) -> float:
    """Test AUC of a boosted-tree classifier trained to tell ``data`` from ``samples`` (half for training)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    x = np.concatenate([data, samples])
    y = np.concatenate([np.ones(len(data)), np.zeros(len(samples))])
    test = np.random.default_rng(seed).random(len(x)) < 0.5
    clf = HistGradientBoostingClassifier(max_iter=200, early_stopping=True, random_state=seed % (2**32))
    clf.fit(x[~test], y[~test])
    return float(roc_auc_score(y[test], clf.predict_proba(x[test])[:, 1]))


@dataclasses.dataclass
class Experiment:
    """One pseudo-experiment (seed) of a training job: its window events, merged output and fold files."""

    split: Path
    out: Path
    folds_dir: Path
    logs_dir: Path
    flow_samples: Path | None = None


def train_folds(config: dict, split: str | os.PathLike, method: str, out: str | os.PathLike,
                folds_dir: str | os.PathLike, logs_dir: str | os.PathLike, checkpoints_dir: str | os.PathLike,
                log: Callable[[str], None] = print, flow_samples: str | os.PathLike | None = None) -> None:
    """The folds of one pseudo-experiment (``train_experiments`` with one experiment)."""
    experiment = Experiment(Path(split), Path(out), Path(folds_dir), Path(logs_dir),
                            Path(flow_samples) if flow_samples else None)
    train_experiments(config, method, [experiment], checkpoints_dir, log)


def train_experiments(config: dict, method: str, experiments: list[Experiment],
                      checkpoints_dir: str | os.PathLike, log: Callable[[str], None] = print) -> None:
    """Train every fold of every seed of one window, method and injection in one job; write each seed's scores.

    One job per (window, method, injection), not per fold or seed: SLURM and Python start-up are
    paid once, the DAG is seeds x k times smaller, and network folds of all seeds train together as
    one batched model (``train.train_groups``), each the network it would be alone, up to
    floating-point rounding. A fold's result (``folds_dir/fold<k>.h5``, with its own log) is not a
    declared output, so Snakemake never deletes it: when a fold fails, the job still trains the
    others and then fails naming the failed ones, and the rerun keeps every finished fold whose data
    and settings are unchanged and trains only the rest.
    """
    k = int(config["folds"]["k"])
    _, backend = parse_method(method)
    checkpoints_dir = Path(checkpoints_dir)
    jobs, pending = [], []
    for experiment in experiments:
        job = FoldJob.load(config, method, experiment, k)
        jobs.append(job)
        for fold, (path, ts) in enumerate(zip(job.fold_files, job.sets)):
            identity = fold_identity(config, method, ts, job.window_data, job.references, job.attrs, fold,
                                     job.epoch_events)
            if path.exists() and read_attrs(path).get("fingerprint") == identity:
                log(f"{job.name(fold)}: kept, finished earlier with the same data and settings ({path})")
                continue
            log(f"{job.name(fold)}: training (log: {job.fold_log(fold)})")
            pending.append((job, fold, identity))
    if backend == "nn":
        failed = _train_nn_folds(config, pending, checkpoints_dir)
    else:
        failed = {}
        for job, fold, identity in pending:
            checkpoint = checkpoints_dir / f"seed{job.attrs['seed']}_fold{fold}.ckpt"
            with _recorded(failed, job, fold), _fold_log(job.fold_log(fold)) as flog:
                flog(f"checkpoint: {checkpoint}")
                train_fold(config, job.sets[fold], job.window_data, job.references, job.attrs, method, fold,
                           job.fold_files[fold], checkpoint=checkpoint, log=flog, identity=identity)
    for (job, fold), reason in failed.items():
        log(f"{job.name(fold)}: FAILED: {reason} (traceback in {job.fold_log(fold)})")
    if failed:
        first = jobs[0].attrs
        seeds = ", ".join(str(job.attrs["seed"]) for job in jobs)
        listing = "; ".join(f"{job.name(fold)}: {reason}" for (job, fold), reason in failed.items())
        raise RuntimeError(f"{len(failed)} of {k * len(jobs)} folds of {first['window']} {method} injection "
                           f"{first['injection']} seed {seeds} failed ({listing}). The {k * len(jobs) - len(failed)} "
                           f"finished folds are kept in {', '.join(str(e.folds_dir) for e in experiments)}; a rerun "
                           "trains only the failed ones.")
    for job in jobs:
        merge_folds([str(p) for p in job.fold_files], job.experiment.out)


@dataclasses.dataclass(eq=False)
class FoldJob:
    """One pseudo-experiment's inputs, training sets and fold files, shared by its folds."""

    config: dict
    method: str
    experiment: Experiment
    window_data: pd.DataFrame
    references: dict[str, pd.DataFrame]
    attrs: dict
    sets: list[TrainingSet]
    epoch_events: int | None

    @classmethod
    def load(cls, config: dict, method: str, experiment: Experiment, k: int) -> "FoldJob":
        window_data, references, attrs = _window_inputs(experiment.split, method, experiment.flow_samples)
        sets = [training_set(method, window_data, references, fold) for fold in range(k)]
        epoch_events = nn_epoch_events(config, sets) if parse_method(method)[1] == "nn" else None
        return cls(config, method, experiment, window_data, references, attrs, sets, epoch_events)

    @property
    def fold_files(self) -> list[Path]:
        return [Path(self.experiment.folds_dir) / f"fold{fold}.h5" for fold in range(len(self.sets))]

    def fold_log(self, fold: int) -> Path:
        return Path(self.experiment.logs_dir) / f"fold{fold}.log"

    def name(self, fold: int) -> str:
        return f"seed {self.attrs['seed']} fold {fold}"

    def write(self, fold: int, model, history: pd.DataFrame, identity: str) -> None:
        _write_fold_result(self.config, model, history, self.window_data, self.references, self.attrs, self.method,
                           fold, self.fold_files[fold], identity)


# epochs are rounded up to this grid of batch counts, ceil(1.01**j): at most 1 % more steps
EPOCH_GRID = 1.01


def nn_epoch_events(config: dict, sets: list[TrainingSet]) -> int:
    """Events per epoch of every member of a pseudo-experiment's folds.

    The largest fold's training split, rounded up to whole batches and then to the next count of
    batches on the grid ``ceil(1.01**j)``. Fixed by the pseudo-experiment's data alone, not by which
    folds or seeds train together, so a fold rerun alone takes the very steps it took with the
    others; the grid gives the seeds of a window (a few hundred events apart) the same length, so
    they can share one batched model.
    """
    from .train import n_train_events

    settings = _backend_settings("nn", config)
    largest = max(n_train_events(len(ts.y), settings) for ts in sets)
    return grid_batches(-(-largest // settings.batch_size)) * settings.batch_size


def grid_batches(batches: int) -> int:
    """The smallest ``ceil(EPOCH_GRID**j)`` that is at least ``batches`` (every count up to about 100)."""
    j = max(0, int(np.log(batches) / np.log(EPOCH_GRID)) - 2)
    while int(np.ceil(EPOCH_GRID ** j)) < batches:
        j += 1
    return int(np.ceil(EPOCH_GRID ** j))


def _train_nn_folds(config: dict, pending: list[tuple[FoldJob, int, str]],
                    checkpoints_dir: Path) -> dict[tuple[FoldJob, int], str]:
    """Train the pending folds as batched models, one per epoch length (usually one for the whole job).

    Returns the failed folds and their errors: a fold whose own check fails is left out, and when
    a batched training fails, every fold in it not yet written has failed.
    """
    failed = {}
    buckets: dict[int, list[tuple[FoldJob, int, str]]] = {}
    for job, fold, identity in pending:
        with _recorded(failed, job, fold), _fold_log(job.fold_log(fold)):
            check_forced_failure(job.fold_files[fold])
            buckets.setdefault(job.epoch_events, []).append((job, fold, identity))
    for epoch_events, batch in buckets.items():
        _train_nn_batch(config, batch, epoch_events, checkpoints_dir, failed)
    return failed


def _train_nn_batch(config: dict, batch: list[tuple[FoldJob, int, str]], epoch_events: int, checkpoints_dir: Path,
                    failed: dict) -> None:
    """One batched model of folds with the same epoch length; every fold's log gets the shared epoch lines."""
    from .train import TrainingGroup, train_groups

    settings = _backend_settings("nn", config)
    groups = [TrainingGroup(job.sets[f].x, job.sets[f].y, job.sets[f].weight,
                            _member_seeds(config, job.attrs, job.method, f, settings.members),
                            f"s{job.attrs['seed']}f{f}")
              for job, f, _ in batch]
    # named by its folds: a rerun of the same folds resumes from it
    checkpoint = checkpoints_dir / ("batch-" + content_hash(extra=[g.name for g in groups])[:16] + ".ckpt")
    written = []
    try:
        with contextlib.ExitStack() as logs:  # each fold's log gets the traceback of a failure too
            fold_logs = [logs.enter_context(_fold_log(job.fold_log(f), append=True)) for job, f, _ in batch]

            def log_all(message: str) -> None:
                for flog in fold_logs:
                    flog(message)

            attrs = batch[0][0].attrs
            log_all(f"{len(batch)} folds as one batched model of {len(batch) * settings.members} members "
                    f"({attrs['window']} {batch[0][0].method} injection {attrs['injection']}: "
                    f"{'; '.join(_folds_by_seed(batch))}), {epoch_events} events per member-epoch")
            log_all(f"checkpoint: {checkpoint}")
            for job, f, _ in batch:
                log_all(f"{job.name(f)}: {int(job.sets[f].y.sum())} label-1 vs {int((1 - job.sets[f].y).sum())} "
                        "reference events")
            models = train_groups(groups, settings, epoch_events, checkpoint=checkpoint, log=log_all)
            for (job, f, identity), model in zip(batch, models):
                job.write(f, model, _history_table(model), identity)
                written.append((job, f))
    except Exception as err:  # every fold of the batch not yet written failed with it
        for job, f, _ in batch:
            if (job, f) not in written:
                failed[(job, f)] = f"{type(err).__name__}: {err}"


def _folds_by_seed(batch) -> list[str]:
    """``seed 1 folds 0, 1, 2`` per seed of a batch."""
    seeds: dict[int, list[int]] = {}
    for job, f, _ in batch:
        seeds.setdefault(job.attrs["seed"], []).append(f)
    return [f"seed {s} folds {', '.join(map(str, folds))}" for s, folds in seeds.items()]


@contextlib.contextmanager
def _recorded(failed: dict, job: FoldJob, fold: int):
    """Record a fold's error instead of raising it: the job's other folds still train."""
    try:
        yield
    except Exception as err:
        failed[(job, fold)] = f"{type(err).__name__}: {err}"


@contextlib.contextmanager
def _fold_log(path: Path, append: bool = False):
    """A fold's own log, started afresh for each attempt (as Snakemake does with a job's log), with its traceback."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a" if append else "w", buffering=1) as handle:
        def log(message: str) -> None:
            print(message, file=handle, flush=True)

        try:
            yield log
        except Exception:
            traceback.print_exc(file=handle)
            raise


def _window_inputs(split, method, flow_samples):
    """The window's events, the method's reference tables and the pseudo-experiment's attributes."""
    window_data = read_table(split, "data")
    references = {"background_sr": read_table(split, "background_sr"), "signal": read_table(split, "signal")}
    if needs_flow(method):
        if flow_samples is None:
            raise ValueError(f"method {method} needs the flow samples of its window (rule flow); none were given")
        references["flow_samples"] = read_table(flow_samples, "samples")
    return window_data, references, read_attrs(split)


def fold_identity(config: dict, method: str, ts: TrainingSet, window_data: pd.DataFrame,
                  references: dict[str, pd.DataFrame], attrs: dict, fold: int,
                  epoch_events: int | None = None) -> str:
    """What a fold's result depends on: its training and scored events, the backend settings, the seeds,
    and for networks the events per epoch (``nn_epoch_events``)."""
    scored = window_data[window_data["fold"] == fold]
    held = held_out_reference(method, references, fold)
    arrays = [ts.x, ts.y, ts.weight, scored[data_mod.FEATURES].to_numpy(), scored["event_id"].to_numpy()]
    if held is not None:
        arrays.append(held[data_mod.FEATURES].to_numpy())
    settings = _fold_settings(config, method, attrs, fold)
    # trees have no epochs: their fingerprints stay those of before network folds were batched
    return content_hash(*arrays, extra=settings if epoch_events is None else (settings, epoch_events))


def fold_settings_identity(config: dict, method: str, attrs: dict, fold: int) -> str:
    """The settings part of a fold's identity (backend settings, member seeds), without its data.

    Stored in each fold's result so that ``slidescan status`` can tell, without reading any data, that
    a finished fold was trained with other classifier settings and will be retrained.
    """
    return content_hash(extra=_fold_settings(config, method, attrs, fold))


def _fold_settings(config: dict, method: str, attrs: dict, fold: int) -> tuple:
    """Method, fold, the backend settings that change results, and the member seeds."""
    _, backend = parse_method(method)
    settings = _backend_settings(backend, config)
    tunables = {k: v for k, v in dataclasses.asdict(settings).items() if k not in EXECUTION_ONLY}
    fold = int(fold)
    return method, fold, tunables, _member_seeds(config, attrs, method, fold, settings.members)


def train_fold(config: dict, ts: TrainingSet, window_data: pd.DataFrame, references: dict[str, pd.DataFrame],
               attrs: dict, method: str, fold: int, out: str | os.PathLike,
               checkpoint: str | os.PathLike | None = None, log: Callable[[str], None] = print,
               identity: str = "") -> None:
    """Train the ensemble of one fold and write the out-of-fold scores of that fold's data events.

    Methods with a separate SR reference (cathode, idealized, supervised) also score that
    reference's held-out events of the fold, for the "data vs reference" AUC.
    """
    check_forced_failure(out)
    _, backend = parse_method(method)
    model = _fit_backend(backend, config, ts, attrs, method, int(fold), checkpoint, log)
    _write_fold_result(config, model, _history_table(model), window_data, references, attrs, method, fold, out,
                       identity)


def _write_fold_result(config: dict, model, history: pd.DataFrame, window_data: pd.DataFrame,
                       references: dict[str, pd.DataFrame], attrs: dict, method: str, fold: int,
                       out: str | os.PathLike, identity: str) -> None:
    """A fold's out-of-fold scores (and held-out reference scores), loss history and fingerprints."""
    fold = int(fold)
    scored = window_data[window_data["fold"] == fold]
    tables = {"scores": _score_table(model, scored), "history": history}
    held = held_out_reference(method, references, fold)
    if held is not None:
        tables["reference_scores"] = _score_table(model, held)
    write_tables(out, tables, attrs={**attrs, "method": method, "fold": fold, "fingerprint": identity,
                                     "settings_fingerprint": fold_settings_identity(config, method, attrs, fold)})


def _score_table(model, events: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "event_id": events["event_id"].to_numpy() if "event_id" in events else np.full(len(events), -1),
        "mjj": events["mjj"].to_numpy(),
        "region": events["region"].to_numpy() if "region" in events else np.zeros(len(events), np.int8),
        "label": events["label"].to_numpy(),
        "score": model.predict(events[data_mod.FEATURES].to_numpy()),
    })


def _fit_backend(backend, config, ts, attrs, method, fold, checkpoint, log):
    """Train the classifier ensemble of one fold alone; torch and scikit-learn are imported only here."""
    if backend == "nn":
        from .train import train_ensemble as fit
    else:
        from .trees import train_bdt_ensemble as fit
    settings = _backend_settings(backend, config)
    member_seeds = _member_seeds(config, attrs, method, fold, settings.members)
    log(f"{attrs['window']} {method} injection {attrs['injection']} seed {attrs['seed']} fold {fold}: "
        f"{int(ts.y.sum())} label-1 vs {int((1 - ts.y).sum())} reference events, {settings.members} members ({backend})")
    return fit(ts.x, ts.y, ts.weight, settings, member_seeds, checkpoint=checkpoint, log=log)


def _history_table(model) -> pd.DataFrame:
    """Per epoch, the members' mean training and validation loss (empty for trees)."""
    losses = getattr(model, "history", None) or {"train_loss": [], "val_loss": []}
    return pd.DataFrame({
        "epoch": np.arange(1, len(losses["val_loss"]) + 1),
        "train_loss": np.mean(losses["train_loss"], axis=1) if losses["train_loss"] else [],
        "val_loss": np.mean(losses["val_loss"], axis=1) if losses["val_loss"] else [],
    })


def _backend_settings(backend: str, config: dict):
    """The classifier settings of ``nn`` or ``bdt`` (``classifier.<backend>`` of the config)."""
    if backend == "nn":
        from .train import NNSettings as Settings
    else:
        from .trees import BDTSettings as Settings
    return Settings.from_config(config["classifier"].get(backend))


def _member_seeds(config: dict, attrs: dict, method: str, fold: int, members: int) -> list[int]:
    return [derive_seed(config["data"]["seed"], "member", attrs["window"], method, attrs["injection"], attrs["seed"],
                        fold, m) for m in range(members)]


def merge_folds(fold_files: list[str], out: str | os.PathLike) -> None:
    """Every window event once, with the score of the model that did not see it."""
    tables = [read_table(f, "scores") for f in fold_files]
    merged = pd.concat(tables, ignore_index=True).sort_values("event_id", kind="stable").reset_index(drop=True)
    if merged["event_id"].duplicated().any():
        raise ValueError(f"{out}: an event was scored by more than one fold; fold files: {fold_files}")
    tables = {"scores": merged,
              "history": pd.concat([read_table(f, "history").assign(fold=read_attrs(f)["fold"]) for f in fold_files],
                                   ignore_index=True)}
    if all(has_table(f, "reference_scores") for f in fold_files):
        tables["reference_scores"] = pd.concat([read_table(f, "reference_scores") for f in fold_files],
                                               ignore_index=True)
    attrs = read_attrs(fold_files[0])
    attrs.pop("fold", None)
    attrs.pop("fingerprint", None)
    attrs.pop("settings_fingerprint", None)
    write_tables(out, tables, attrs=attrs)


def run_bumphunt(config: dict, scores: list[str | os.PathLike], out: str | os.PathLike,
                 spectra_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """The bump hunts of one scan (method, pseudo-experiment) in every window: one table, one job.

    One job per scan rather than per window: a bump hunt takes about a second, the start of a
    cluster job (Python, pyhf, matplotlib) longer. ``spectra_dir`` gets ``<window>.png`` per window.
    """
    table = pd.concat([window_bumphunt(config, f, spectra_dir) for f in scores], ignore_index=True)
    write_csv(out, table)
    return table


def window_bumphunt(config: dict, scores: str | os.PathLike,
                    spectra_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """The bump hunt of one window, method and pseudo-experiment, one row per efficiency.

    With ``spectra_dir``, the selected spectra are drawn to ``spectra_dir/<window>.png``.
    """
    from .stats import bump_hunt  # pyhf and iminuit are imported by bump-hunt jobs only

    attrs = read_attrs(scores)
    df = read_table(scores, "scores")
    w = window_by_name(window_grid(config["windows"]), attrs["window"])
    bcfg = config["bumphunt"]
    results = bump_hunt(df["mjj"].to_numpy(), df["score"].to_numpy(), w, bcfg["efficiencies"], bcfg["bin_width"],
                        bcfg["fit_parameters"], labels=df["label"].to_numpy(),
                        calculator=bcfg.get("p0_calculator", "asymptotic"), ntoys=bcfg.get("p0_toys", 20000),
                        seed=derive_seed(config["data"]["seed"], "p0", w.name, attrs["method"], attrs["injection"],
                                         attrs["seed"]) % (2**32))
    rows = [r.as_dict() for r in results]
    table = pd.DataFrame(rows)
    table.insert(0, "window", w.name)
    table.insert(1, "sr_lo", w.sr_lo)
    table.insert(2, "sr_hi", w.sr_hi)
    table.insert(3, "method", attrs["method"])
    table.insert(4, "injection", int(attrs["injection"]))
    table.insert(5, "seed", int(attrs["seed"]))
    table["n_signal_sr"] = int(((df["label"] == 1) & (df["region"] == REGION_SR)).sum())
    table["sr_auc_vs_reference"] = reference_auc(scores, df)
    if spectra_dir:
        from .plots import selected_spectra

        title = (f"{w.name} (SR {w.sr_lo:g}-{w.sr_hi:g} TeV), {attrs['method']}, "
                 f"injection {attrs['injection']}, seed {attrs['seed']}")
        selected_spectra(df["mjj"].to_numpy(), df["score"].to_numpy(), w, results, bcfg["bin_width"], title,
                         Path(spectra_dir) / f"{w.name}.png")
    return table[SCAN_COLUMNS + [c for c in table.columns if c not in SCAN_COLUMNS]]


def reference_auc(scores: str | os.PathLike, df: pd.DataFrame) -> float:
    """Out-of-fold AUC of SR data against the method's held-out SR reference; NaN without one.

    Without signal the reference is the SR background, so anything but 0.5 is a mismodelled reference.
    """
    if not has_table(scores, "reference_scores"):
        return float("nan")
    from sklearn.metrics import roc_auc_score

    ref = read_table(scores, "reference_scores")
    sr = df.loc[df["region"] == REGION_SR, "score"].to_numpy()
    y = np.concatenate([np.ones(len(sr)), np.zeros(len(ref))])
    return float(roc_auc_score(y, np.concatenate([sr, ref["score"].to_numpy()])))


def gather(csv_files: list[str], out: str | os.PathLike, n_toys: int = 20000) -> pd.DataFrame:
    """All bump-hunt rows, with each scan's look-elsewhere-corrected (global) p-value.

    The global columns (``min_p0``, ``global_p0``, ``global_z``, ``global_p0_seeds``,
    ``n_null_seeds``) are the same on every row of one scan (method, injection, seed).
    """
    from .lookelsewhere import SCAN_KEYS, global_pvalues

    table = pd.concat([pd.read_csv(f) for f in csv_files], ignore_index=True)
    table = table.sort_values(["method", "injection", "seed", "window", "efficiency"],
                              ascending=[True, True, True, True, False]).reset_index(drop=True)
    table = table.merge(global_pvalues(table, n_toys=n_toys), on=SCAN_KEYS, how="left")
    write_csv(out, table)
    return table


def calibration(table: pd.DataFrame) -> pd.DataFrame:
    """Per method, the injection-0 local p0 against uniform (KS on the excess half, p0 < 0.5).

    Windows overlap and efficiencies are nested, so the p0 are correlated: the KS p-value is a guide,
    not an exact test.
    """
    from scipy import stats as sps

    rows = []
    for method, grp in table[table["injection"] == 0].groupby("method"):
        p0 = grp["p0"].dropna().to_numpy()
        excess = 2 * p0[p0 < 0.5]
        rows.append({"method": method, "n": len(p0), "n_deficit": int(np.sum(p0 >= 0.5)),
                     "ks_pvalue": float(sps.kstest(excess, "uniform").pvalue) if len(excess) else float("nan"),
                     "min_p0": float(p0.min()) if len(p0) else float("nan"),
                     "max_z": float(grp["z"].max())})
    return pd.DataFrame(rows, columns=["method", "n", "n_deficit", "ks_pvalue", "min_p0", "max_z"])


def signal_window_rows(table: pd.DataFrame, truth_mass: float) -> pd.DataFrame:
    """Rows of the window whose SR centre is closest to the true signal mass."""
    centre = 0.5 * (table["sr_lo"] + table["sr_hi"])
    nearest = table.loc[(centre - truth_mass).abs().idxmin(), "window"]
    return table[table["window"] == nearest]
