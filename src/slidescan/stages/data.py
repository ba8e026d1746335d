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
    background, pool, ref_bkg, ref_sig, source, labelled = samples(d, settings.features, log)
    if not labelled and settings.truth_needs():
        raise ValueError(f"{source}: no column 'label': the events are data without truth labels, so "
                         f"{settings.refusal_without_labels()}")
    for sample in (background, pool, ref_bkg, ref_sig):
        require(sample.columns, settings.features, source)
    check_windows(list(settings.windows), background["mjj"].to_numpy(), settings.min_events, source)
    ref_bkg = ref_bkg.assign(fold=assign_folds(len(ref_bkg), k, rng(seed, "folds", "reference_background")))
    ref_sig = ref_sig.assign(fold=assign_folds(len(ref_sig), k, rng(seed, "folds", "reference_signal")))
    write_tables(out, {"background": background, "signal_pool": pool,
                       "reference_background": ref_bkg, "reference_signal": ref_sig}, attrs={"source": d.source})


def make_injection(settings: ScanSettings, events: str | os.PathLike, experiment: PseudoExperiment,
                   out: str | os.PathLike) -> None:
    """One pseudo-experiment: all background plus ``injection`` signal events, with folds.

    With ``data.backgrounds: independent`` the background is the seed's own (:func:`sources.seed_background`),
    the same for every injection of that seed; a bootstrap's copies of one event share its fold.
    """
    from ..data.sources import seed_background

    background = read_table(events, "background")
    pool = read_table(events, "signal_pool")
    base, (injection, seed) = settings.data.seed, (experiment.injection, experiment.seed)
    copied = None
    if settings.data.backgrounds == "independent":
        n_source = len(background)
        background, copied = seed_background(settings.data, background, seed)
    df = data_mod.inject(background, pool, injection, rng(base, "inject", injection, seed))
    if copied is None:
        df["fold"] = assign_folds(len(df), settings.k, rng(base, "folds", injection, seed))
    else:
        folds = assign_folds(n_source + injection, settings.k, rng(base, "folds", injection, seed))
        df["fold"] = np.concatenate([folds[copied], folds[n_source:]])
    write_tables(out, {"events": df}, attrs=experiment.attrs())


def split_window(settings: ScanSettings, injected: str | os.PathLike, events: str | os.PathLike, window: str,
                 out: str | os.PathLike) -> None:
    """The events of one window with their region, and the truth references restricted to its SR."""
    w = settings.window(window)
    df = read_table(injected, "events")
    df["region"] = w.region(df["mjj"].to_numpy())
    df = df[df["region"] != REGION_OUTSIDE].reset_index(drop=True)
    ref_bkg = read_table(events, "reference_background")
    ref_bkg = ref_bkg[w.region(ref_bkg["mjj"].to_numpy()) == REGION_SR].reset_index(drop=True)
    write_tables(out, {"data": df, "background_sr": ref_bkg, "signal": read_table(events, "reference_signal")},
                 attrs={**read_attrs(injected), "window": window})
