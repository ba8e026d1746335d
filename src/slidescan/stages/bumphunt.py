"""The bump-hunt stage: one scan (method, pseudo-experiment) in every window, one table, one job.

One job per scan rather than per window: a bump hunt takes about a second, the start of a cluster
job (Python, pyhf, matplotlib) longer.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import weights_of
from ..io import has_table, read_attrs, read_table, write_csv
from ..layout import PseudoExperiment
from ..seeds import derive_seed
from ..settings import ScanSettings
from ..windows import REGION_SR

SCAN_COLUMNS = ["window", "sr_lo", "sr_hi", "method", "signal", "injection", "seed", "efficiency", "n_obs", "n_bkg",
                "n_bkg_err", "p0", "z"]


def run_bumphunt(settings: ScanSettings, scores: list[str | os.PathLike], out: str | os.PathLike,
                 spectra_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """The bump hunts of one scan in every window; ``spectra_dir`` gets ``<window>.png`` per window.

    A validation region (``windows.validation``) is tested first and its rows are not the scan's (it is no search
    region: no look-elsewhere, calibration or limit counts it): its non-closure goes into the rows of the SR it
    validates (``stats.template_count``), and its selection figure is drawn like any region's.
    """
    by_window = {read_attrs(f)["window"]: f for f in scores}
    regions = [settings.window(name) for name in by_window]
    validations = {w.validated: window_bumphunt(settings, by_window[w.name], spectra_dir)
                   for w in regions if w.validated}
    expected = {w.validated: w.name for w in settings.windows if w.validated}
    missing = [f"{vr} (validating {sr})" for sr, vr in expected.items() if sr in by_window and sr not in validations]
    if missing:
        raise ValueError(f"{out}: no scores of the validation region(s) {', '.join(missing)}, whose non-closure is "
                         "part of their SR's background uncertainty")
    table = pd.concat([window_bumphunt(settings, by_window[w.name], spectra_dir, validations.get(w.name))
                       for w in regions if not w.validated], ignore_index=True)
    write_csv(out, table)
    return table


def window_bumphunt(settings: ScanSettings, scores: str | os.PathLike,
                    spectra_dir: str | os.PathLike | None = None, validation: pd.DataFrame | None = None
                    ) -> pd.DataFrame:
    """The bump hunt of one window, method and pseudo-experiment, one row per efficiency.

    With ``spectra_dir``, the selected spectra are drawn to ``spectra_dir/<window>.png``. ``validation``: the rows
    of its validation region, for the test's non-closure systematic.
    """
    from ..registry import STATISTICS, load_builtins

    load_builtins()  # the tests register themselves (stats.statistics); pyhf and iminuit load in bump-hunt jobs only
    attrs = read_attrs(scores)
    experiment = PseudoExperiment.from_attrs(attrs)
    df = read_table(scores, "scores")
    w = settings.window(attrs["window"])
    b = settings.bumphunt
    weights = weights_of(df)
    statistic = STATISTICS[b.statistic]
    template = read_table(scores, "reference_scores") if has_table(scores, "reference_scores") else None
    if statistic.needs_template and template is None:
        raise ValueError(f"{scores}: bumphunt.statistic {b.statistic} needs the method's held-out SR template scores "
                         f"(table reference_scores), and {attrs['method']} has none")
    if statistic.needs_template and not ("fold" in df and "fold" in template):
        # scores merged before the fold was kept: one cut over classifiers of different folds mixes their scales
        raise ValueError(f"{scores}: its scores do not say which fold's classifier scored each event (merged by an "
                         f"older slidescan), which {b.statistic} needs; rerun with --forcerun train (finished folds "
                         "are merged again, not retrained)")
    # the validation region's rows only where there are some: a plug-in test written before them takes five arguments
    extra = {} if validation is None else {"validation": validation}
    results = statistic.test(df, template, w, b,
                             derive_seed(settings.data.seed, "p0", w.name, attrs["method"], *experiment.key) % (2**32),
                             **extra)
    table = pd.DataFrame([r.as_dict() for r in results])
    table.insert(0, "window", w.name)
    columns = w.scan_columns()  # sr_lo and sr_hi first, then a threshold region's own bounds (<context>_min)
    table.insert(1, "sr_lo", columns.pop("sr_lo"))
    table.insert(2, "sr_hi", columns.pop("sr_hi"))
    for column, value in columns.items():
        if column not in table:
            table[column] = value
    table.insert(3, "method", attrs["method"])
    table.insert(4, "signal", experiment.signal)
    table.insert(5, "injection", experiment.injection)
    table.insert(6, "seed", experiment.seed)
    signal_sr = ((df["label"] == 1) & (df["region"] == REGION_SR)).to_numpy()
    table["n_signal_sr"] = int(signal_sr.sum()) if weights is None else float(weights[signal_sr].sum())
    table["sr_auc_vs_reference"] = reference_auc(scores, df)
    if spectra_dir:
        w.draw_selection(df, results, b.bin_width, f"{w.name} ({w.label}), {attrs['method']}, {experiment}",
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
    sr = df[df["region"] == REGION_SR]
    y = np.concatenate([np.ones(len(sr)), np.zeros(len(ref))])
    weights = None
    if "weight" in sr or "weight" in ref:  # weighted inputs; a template without weights counts each event once
        weights = np.concatenate([weights_of(sr, ones=True), weights_of(ref, ones=True)])
    return float(roc_auc_score(y, np.concatenate([sr["score"].to_numpy(), ref["score"].to_numpy()]),
                               sample_weight=weights))
