"""The checks every event file goes through when it is read: a wrong value stops here, named, instead of
training into a wrong number downstream.

A reader checks each column: numbers (:func:`numeric`: text is named, not "could not convert"), finite values
(:func:`finite_events`, ``data.non_finite``) and labels that are 0 or 1 (:func:`check_labels`). Then the source
checks the sample as a whole (:func:`checked_sample`): an mjj in TeV and jet masses in the same unit (judged by
their plausible range), and no event present twice (``data.duplicates``). Every message names the file, the
column and the offending values.

Why duplicates matter: folds, the reference split and the injection draw are assigned per row, so two copies
of one event land on both sides of a split, and a model then scores the twin of an event it trained on.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

LABELS = (0, 1)
# a dijet mass in TeV: nothing below 10 GeV is a dijet resonance search, nothing above 100 TeV is in reach
MJJ_RANGE_TEV = (0.01, 100.0)
# columns that are jet masses (TeV, like mjj); a jet's mass never exceeds the dijet mass
MASS_COLUMNS = ("mj1", "mj2", "delta_mj")
# what data.non_finite and data.duplicates may say: stop naming the events, or leave them out and count them
POLICIES = ("reject", "drop")


def finite_events(table: pd.DataFrame, columns: list[str], source: str, policy: str = "reject",
                  log: Callable[[str], None] = print) -> pd.DataFrame:
    """The events whose ``columns`` are all finite: anything else is rejected (``policy: reject``, naming the
    file, the columns and the counts) or dropped and counted in the log (``policy: drop``)."""
    if policy not in POLICIES:
        raise ValueError(f"data.non_finite: expected one of {POLICIES}, got {policy!r}")
    values = table[columns].to_numpy(float)
    finite = np.isfinite(values)
    if finite.all():
        return table
    per_column = {c: int(n) for c, n in zip(columns, (~finite).sum(0)) if n}
    rows = ~finite.all(1)
    detail = ", ".join(f"{c} ({n})" for c, n in per_column.items())
    if policy == "reject":
        raise ValueError(f"{source}: {int(rows.sum())} of {len(table)} events have non-finite values (NaN or inf) in "
                         f"column(s) {detail}; fix the file, or set data.non_finite: drop to leave those events out")
    log(f"{source}: dropped {int(rows.sum())} of {len(table)} events with non-finite values (NaN or inf) in column(s) "
        f"{detail} (data.non_finite: drop)")
    return table[~rows].reset_index(drop=True)


def _shown(values, n: int = 5) -> str:
    out = [f"{v:g}" if isinstance(v, (float, int, np.floating, np.integer)) else repr(v) for v in values[:n]]
    return ", ".join(out) + (", ..." if len(values) > n else "")


def numeric(values, source: str, column: str, ours: str | None = None) -> np.ndarray:
    """A column as float64, or an error that names the file and the column when it holds text."""
    name = f"{column!r}" + (f" ({ours})" if ours and ours != column else "")
    array = np.asarray(values)
    if array.dtype.kind in "biuf":
        return array.astype(float)
    try:
        return array.astype(float)
    except (TypeError, ValueError):
        text = sorted({str(v) for v in array.ravel()[:100_000] if not _is_number(v)})
        hint = "; labels must be 0 (background) or 1 (signal)" if (ours or column) == "label" else ""
        raise ValueError(f"{source}: column {name} holds text (e.g. {_shown(text, 3)}), not numbers{hint}") from None


def _is_number(value) -> bool:
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False


def check_labels(labels: np.ndarray, source: str, column: str = "label", allowed: tuple[int, ...] = LABELS
                 ) -> np.ndarray:
    """``labels`` as int8, after checking that each is exactly one of ``allowed``: 0 or 1, or a value a signal model
    declares (``signals.<name>.label``); a cast would turn 2 into signal, 0.5 into background and 257 into 1."""
    labels = np.asarray(labels, float)
    bad = ~np.isin(labels, allowed)
    if bad.any():
        values = np.unique(labels[bad])
        expected = ("0 (background) or 1 (signal)" if tuple(allowed) == LABELS else
                    f"0 (background), 1 or a value of signals.<name>.label {sorted(set(allowed) - {0})}")
        raise ValueError(f"{source}: column {column!r} must be {expected}; {int(bad.sum())} of "
                         f"{len(labels)} events have other values: {_shown(values)}")
    return labels.astype(np.int8)


def check_units(events: pd.DataFrame, source: str, mjj_column: str = "mjj", unit: str = "TeV",
                unit_key: str | None = "data.table.mjj_unit") -> None:
    """mjj in TeV, jet masses in TeV too: judged by the bulk of the events, since a unit mistake moves every event.

    ``unit`` is the unit the file's mjj was declared in (divided by 1000 when GeV), ``unit_key`` the setting that
    declares it (None: the file format fixes it, as the LHCO table's GeV).
    """
    if not len(events):
        return
    median = float(np.median(events["mjj"]))
    lo, hi = MJJ_RANGE_TEV
    converted = f" after conversion from {unit} ({unit_key or 'the file format'})" if unit != "TeV" else ""
    if not lo <= median <= hi:
        other = "TeV" if median < lo else ("GeV" if unit == "TeV" else "MeV")
        fix = (f"set {unit_key}: {other}" if unit_key and other in ("GeV", "TeV") else
               f"the file's masses and momenta must be in {unit}" if not unit_key else "convert the column to TeV")
        raise ValueError(f"{source}: column {mjj_column!r} (mjj) has a median of {median:.4g} TeV{converted}, not a "
                         f"dijet mass: its values look like {other}; {fix}")
    for column in MASS_COLUMNS:
        if column not in events:
            continue
        mass = events[column].to_numpy(float)
        above = mass > events["mjj"].to_numpy(float)
        if above.mean() > 0.01:
            raise ValueError(f"{source}: column {column!r} ({column}) is larger than mjj in {int(above.sum())} of "
                             f"{len(mass)} events (median {np.median(mass):.4g} against mjj's {median:.4g}): jet masses "
                             "must be in TeV, like mjj (a jet's mass never exceeds the dijet mass)")


def unique_events(events: pd.DataFrame, source: str, policy: str = "reject",
                  log: Callable[[str], None] = print) -> pd.DataFrame:
    """The events without exact copies (every column equal, the label aside): rejected with the count and the first
    pair of rows (``policy: reject``), or the later copies dropped and counted in the log (``drop``)."""
    if policy not in POLICIES:
        raise ValueError(f"data.duplicates: expected one of {POLICIES}, got {policy!r}")
    columns = [c for c in events.columns if c != "label"]
    copies = events.duplicated(subset=columns, keep="first").to_numpy()
    if not copies.any():
        return events
    n = int(copies.sum())
    if policy == "reject":
        first = int(np.flatnonzero(copies)[0])
        same = events[columns].iloc[:first].eq(events[columns].iloc[first]).all(axis=1).to_numpy()
        original = int(np.flatnonzero(same)[0]) if same.any() else -1
        raise ValueError(f"{source}: {n} of {len(events)} events are exact copies of another event (first: row {first} "
                         f"repeats row {original}); remove them, or set data.duplicates: drop to keep one of each")
    log(f"{source}: dropped {n} of {len(events)} events that are exact copies of another event (data.duplicates: drop)")
    return events[~copies].reset_index(drop=True)


def checked_sample(events: pd.DataFrame, source: str, data, log: Callable[[str], None] = print,
                   mjj_column: str = "mjj", unit: str = "TeV", unit_key: str | None = "data.table.mjj_unit"
                   ) -> pd.DataFrame:
    """What a file source's events go through once its reader has checked each column (numbers, finite values,
    labels): the units of the sample (:func:`check_units`) and its duplicates (``data.duplicates``)."""
    check_units(events, source, mjj_column, unit, unit_key)
    return unique_events(events, source, data.duplicates, log)
