"""The data stages: the scan's events, one pseudo-experiment's injection, one window's split."""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

from .. import data as data_mod
from ..io import read_attrs, read_table, write_tables
from ..layout import PseudoExperiment
from ..seeds import rng
from ..settings import ScanSettings
from ..windows import REGION_OUTSIDE, REGION_SR, assign_folds, check_windows


def prepare_data(settings: ScanSettings, out: str | os.PathLike, log: Callable[[str], None] = print) -> None:
    """Background, signal pool and truth-level reference samples for the whole scan.

    The window grid is checked against the background's mjj range and counts (``windows.min_events``).
    """
    from ..data.sources import samples
    from ..features import require

    d = settings.data
    seed, k = d.seed, settings.k
    background, pool, ref_bkg, ref_sig, source, labelled = samples(d, settings.columns, log, settings.labels)
    if not labelled and settings.truth_needs():
        raise ValueError(f"{source}: no column 'label': the events are data without truth labels, so "
                         f"{settings.refusal_without_labels()}")
    for sample in (background, pool, ref_bkg, ref_sig):
        require(sample.columns, settings.columns, source)
    check_windows(list(settings.windows), background, settings.min_events, source)
    ref_bkg = ref_bkg.assign(fold=assign_folds(len(ref_bkg), k, rng(seed, "folds", "reference_background")))
    ref_sig = ref_sig.assign(fold=assign_folds(len(ref_sig), k, rng(seed, "folds", "reference_signal")))
    write_tables(out, {"background": background, "signal_pool": pool,
                       "reference_background": ref_bkg, "reference_signal": ref_sig}, attrs={"source": d.source})


def prepare_signal(settings: ScanSettings, name: str, out: str | os.PathLike, log: Callable[[str], None] = print
                   ) -> None:
    """The signal pool and reference signal of the named model ``name`` of ``signals:``, in a file of its own: a
    model added to a scan adds this job and its injections, and leaves the events and every other model alone."""
    from ..data.sources import signal_samples
    from ..features import require

    model = settings.signal(name)
    pool, ref_sig = signal_samples(settings.data, model, settings.columns, log, settings.labels)
    for sample in (pool, ref_sig):
        require(sample.columns, settings.columns, model.path or str(model))
    folds = assign_folds(len(ref_sig), settings.k, rng(settings.data.seed, "folds", "reference_signal", name))
    log(f"{model}: {len(pool)} events to inject, {len(ref_sig)} as its truth reference")
    write_tables(out, {"signal_pool": pool, "reference_signal": ref_sig.assign(fold=folds)},
                 attrs={"signal": name, "mass": model.mass})


def prepare_sample(settings: ScanSettings, name: str, out: str | os.PathLike, log: Callable[[str], None] = print
                   ) -> None:
    """An auxiliary sample (``data.samples.<name>``) in a file of its own, each event with its fold (the same in
    every window), checked like the data: it must hold the scan's features."""
    from ..data.sources import auxiliary_events, data_selection
    from ..features import require

    sample = settings.data.sample(name)
    events = auxiliary_events(settings.data, sample, settings.columns, log)
    require(events.columns, settings.columns, f"data.samples.{name} ({sample.path or 'synthetic'})")
    events = events.assign(fold=assign_folds(len(events), settings.k, rng(settings.data.seed, "folds", "sample", name)))
    events = data_selection(settings.data, sample, events, log)
    write_tables(out, {"events": events}, attrs={"sample": name})


def split_sample(settings: ScanSettings, events: str | os.PathLike, window: str, out: str | os.PathLike) -> None:
    """The events of an auxiliary sample in one window, with their region (like the data's split)."""
    w = settings.window(window)
    df = read_table(events, "events")
    df["region"] = w.assign(df)
    write_tables(out, {"events": df[df["region"] != REGION_OUTSIDE].reset_index(drop=True)},
                 attrs={**read_attrs(events), "window": window})


def make_injection(settings: ScanSettings, events: str | os.PathLike, experiment: PseudoExperiment,
                   out: str | os.PathLike, signal: str | os.PathLike | None = None) -> None:
    """One pseudo-experiment: all background plus ``injection`` signal events, with folds; a named model's signal
    comes from its own file ``signal`` (:func:`prepare_signal`), else from the events' pool.

    With ``data.backgrounds: independent`` the background is the seed's own (:func:`sources.seed_background`),
    the same for every injection of that seed; a bootstrap's copies of one event share its fold.
    """
    from ..data.sources import seed_background

    background = read_table(events, "background")
    pool = read_table(signal if experiment.signal else events, "signal_pool")
    base, injection, seed = settings.data.seed, experiment.injection, experiment.seed
    copied = None
    if settings.data.backgrounds == "independent":
        n_source = len(background)
        background, copied = seed_background(settings.data, background, seed)
    source = f"signal model {experiment.signal!r} ({signal})" if experiment.signal else \
        f"the signal pool of {events} (data.signal_pool)"
    df = data_mod.inject(background, pool, injection, rng(base, "inject", *experiment.key), pool=source)
    if copied is None:
        df["fold"] = assign_folds(len(df), settings.k, rng(base, "folds", *experiment.key))
    else:
        folds = assign_folds(n_source + injection, settings.k, rng(base, "folds", *experiment.key))
        df["fold"] = np.concatenate([folds[copied], folds[n_source:]])
    write_tables(out, {"events": df}, attrs=experiment.attrs())


def split_window(settings: ScanSettings, injected: str | os.PathLike, events: str | os.PathLike, window: str,
                 out: str | os.PathLike, signal: str | os.PathLike | None = None) -> None:
    """The events of one window with their region, and the truth references restricted to its SR.

    The reference signal is the pseudo-experiment's model's (``signal``: a named model's file); a background-only
    experiment of a scan of several models carries the first model's (the supervised reference's at injection 0).
    """
    w = settings.window(window)
    df = read_table(injected, "events")
    df["region"] = w.assign(df)
    df = df[df["region"] != REGION_OUTSIDE].reset_index(drop=True)
    ref_bkg = read_table(events, "reference_background")
    ref_bkg = ref_bkg[w.assign(ref_bkg) == REGION_SR].reset_index(drop=True)
    write_tables(out, {"data": df, "background_sr": ref_bkg, "signal": read_table(signal or events, "reference_signal")},
                 attrs={**read_attrs(injected), "window": window})
