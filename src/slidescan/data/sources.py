"""Where a scan's events come from (``data.source``): each source gives the four samples of ``prepare_data``.

A source returns the background the scan searches, the signal pool that injections draw from, and the
truth-level references (background in each SR, signal) that only the idealized and supervised
references and the performance figures use. Add one with ``@source("name")``: a function of the
``data`` settings, a log and the configured features.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd

from ..seeds import rng
from .checks import check_labels, checked_sample, finite_events, numeric
from .readers import read_lhco_h5
from .synthetic import (add_extra_features, generate_background, generate_signal, generate_simulation,
                        mismodel_context)


class Samples(NamedTuple):
    background: pd.DataFrame
    signal_pool: pd.DataFrame
    reference_background: pd.DataFrame
    reference_signal: pd.DataFrame
    description: str  # for errors: the file, or what was generated
    labelled: bool = True  # False: data without truth labels (every event background; no injection, no truth method)


SOURCES: dict[str, Callable] = {}


def source(name: str):
    def register(fn):
        SOURCES[name] = fn
        return fn
    return register


def samples(data, features: tuple[str, ...], log: Callable[[str], None] = print,
            labels: tuple[int, ...] = (0, 1)) -> Samples:
    """The ``data`` section's samples; a source that reads a file reads the configured ``features``. ``labels``:
    the values the label column may hold (0, 1 and those of ``signals.<name>.label``; only label 1 is the
    signal here)."""
    if data.source not in SOURCES:
        raise ValueError(f"data.source: expected one of {sorted(SOURCES)}, got {data.source!r}")
    return SOURCES[data.source](data, log, features, labels)


def signal_samples(data, model, features: tuple[str, ...], log: Callable[[str], None] = print,
                   labels: tuple[int, ...] = (0, 1)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A named signal model's signal pool and reference signal (``signals.<name>``), from random streams of its own.

    The synthetic source generates them with the model's parameters; a file source reads its ``path`` like the
    data (the file's label-1 events where it has labels, else all) or takes the data's events of its ``label``;
    the events are halved at random into pool and reference like the data's signal.
    """
    seed = data.seed
    if data.source == "synthetic":
        s = data.synthetic
        return tuple(add_extra_features(generate_signal(n, model.synthetic, rng(seed, kind, model.name)),
                                        s.substructure, s.noise_features,
                                        rng(seed, "extra_features", kind, model.name), context=s.context)
                     for kind, n in (("signal_pool", s.signal_pool), ("reference_signal", s.reference_signal)))
    if model.label is not None:
        events, _ = _read_table(data, data.table.path, features, log, labels)
        what = f"no event has label {model.label} (signals.{model.name}.label, column {data.table.label!r})"
        events = events[events["label"] == model.label]
        path = data.table.path
    else:
        read = _read_lhco if data.source == "lhco_h5" else _read_table
        events, labelled = read(data, model.path, features, log)
        what = f"no signal events (signals.{model.name}.path{': every event has label 0' if labelled else ''})"
        events = events[events["label"] == 1] if labelled else events
        path = model.path
    if not len(events):
        raise ValueError(f"{path}: {what}")
    return _split(events.reset_index(drop=True).assign(label=np.int8(1)), 0.5, rng(seed, "split_sig", model.name))


def data_selection(data, sample, events: pd.DataFrame, log: Callable[[str], None] = print) -> pd.DataFrame:
    """A synthetic simulation with context columns passes the data's selection (mjj in the model's range), as a real
    simulation passes the data's trigger and preselection: a non-resonant region has no mjj window to leave out the
    mismodelled mjj that fell outside the data's range, and simulated events where the data can have none would make
    the weights of the simulation to the data, w(m), infinite there. Applied after the sample's folds are assigned,
    so every kept event keeps its fold (an mjj-window scan's windows see the same events as without it)."""
    if data.source != "synthetic" or not data.synthetic.context or sample.kind == "signal":
        return events
    model = data.synthetic.model
    selected = (events["mjj"] >= model.mjj_min) & (events["mjj"] < model.mjj_max)
    log(f"data.samples.{sample.name}: {int(selected.sum())} of {len(events)} simulated events pass the data's "
        f"selection {model.mjj_min:g} <= mjj < {model.mjj_max:g} TeV")
    return events[selected].reset_index(drop=True)


def auxiliary_events(data, sample, features: tuple[str, ...], log: Callable[[str], None] = print) -> pd.DataFrame:
    """The events of one auxiliary sample (``data.samples.<name>``): the synthetic source generates a simulation
    (the background model drawn anew, ``sample.mismodelling``) or, for ``kind: signal``, W' -> X Y at the sample's
    X and Y masses with the W' mass spread evenly over the mjj range; a file source reads ``sample.path`` like the
    data's file (its labels where it has them, else every event of the sample's kind; ``sample.weight`` its weight
    column)."""
    from dataclasses import replace

    signal_kind = sample.kind == "signal"
    if data.source == "synthetic":
        s = data.synthetic
        n = sample.n_events or s.n_background
        generator = rng(data.seed, "sample", sample.name)
        if signal_kind:
            model = replace(s.model, m_x=sample.m_x or s.model.m_x, m_y=sample.m_y or s.model.m_y)
            events = generate_signal(n, model, generator,
                                     m_wprime=generator.uniform(s.model.mjj_min, s.model.mjj_max, n))
            log(f"data.samples.{sample.name}: {n} synthetic signal events, X {model.m_x} TeV, Y {model.m_y} TeV, "
                f"W' mass {s.model.mjj_min}-{s.model.mjj_max} TeV")
        else:
            events = generate_simulation(n, s.model, sample.mismodelling, generator)
            log(f"data.samples.{sample.name}: {n} synthetic background events, mismodelling {sample.mismodelling}")
        events = add_extra_features(events, s.substructure, s.noise_features,
                                    rng(data.seed, "extra_features", "sample", sample.name), context=s.context)
        return events if signal_kind else mismodel_context(events, sample.mismodelling)
    if data.source == "lhco_h5":
        events, labelled = _read_lhco(data, sample.path, features, log)
    else:
        events, labelled = _read_table(replace(data, table=replace(data.table, weight=sample.weight)), sample.path,
                                       features, log)
    if signal_kind:
        background = int((events["label"] == 0).sum()) if labelled else 0
        if background:  # a signal prior that learned background would tag background as that signal
            raise ValueError(f"data.samples.{sample.name}: {sample.path} has {background} events labelled 0 "
                             "(background); a sample of kind signal is a signal model: give a file of its signal "
                             "events, or one without labels")
        events = events.assign(label=np.int8(1))
    else:
        signal = int((events["label"] == 1).sum()) if labelled else 0
        if signal:  # a template of signal-contaminated "background" would hide the signal it should reveal
            raise ValueError(f"data.samples.{sample.name}: {sample.path} has {signal} events labelled 1 (signal); a "
                             "sample is a simulated background: give a file of background events, or one without "
                             "labels")
    log(f"data.samples.{sample.name}: {len(events)} events of {sample.path}"
        f"{'' if labelled else f' (no labels: every event {sample.kind})'}")
    return events.reset_index(drop=True)


@source("synthetic")
def _synthetic(data, log, features, labels=(0, 1)) -> Samples:
    s, seed = data.synthetic, data.seed
    out = []
    for name, generate, n in (("background", generate_background, s.n_background),
                              ("signal_pool", generate_signal, s.signal_pool),
                              ("reference_background", generate_background, s.reference_background),
                              ("reference_signal", generate_signal, s.reference_signal)):
        df = generate(n, s.model, rng(seed, name))
        out.append(add_extra_features(df, s.substructure, s.noise_features, rng(seed, "extra_features", name),
                                      context=s.context))
    return Samples(*out, "the synthetic background (data.synthetic)")


def _read_lhco(data, path, features=(), log=print, labels=(0, 1)) -> tuple[pd.DataFrame, bool]:
    events = read_lhco_h5(path, data.non_finite, log)
    labelled = "label" in events
    return checked_sample(events.assign(label=events["label"] if labelled else np.int8(0)), path,
                          data, log, "mjj (of the jets' momenta)", "GeV", unit_key=None), labelled


def _read_table(data, path, features, log=print, labels=(0, 1)) -> tuple[pd.DataFrame, bool]:
    t = data.table
    columns = {"mjj": t.mjj, "label": t.label, "weight": t.weight, **{f: t.columns.get(f, f) for f in features}}
    events = read_event_table(path, t.tree, columns, data.non_finite, log, labels)
    if t.mjj_unit == "GeV":
        events["mjj"] = events["mjj"] / 1000.0
    return checked_sample(events, path, data, log, t.mjj, t.mjj_unit), t.label is not None


@source("lhco_h5")
def _lhco(data, log, features, labels=(0, 1)) -> Samples:
    events, labelled = _read_lhco(data, data.lhco_h5.path, features, log)
    return _by_label(events, data.lhco_h5.reference_fraction, data.seed, data.lhco_h5.path, labelled)


@source("table")
def _table(data, log, features, labels=(0, 1)) -> Samples:
    events, labelled = _read_table(data, data.table.path, features, log, labels)
    return _by_label(events, data.table.reference_fraction, data.seed, data.table.path, labelled)


def _by_label(events: pd.DataFrame, reference_fraction: float, seed: int, path, labelled: bool = True) -> Samples:
    """Background (label 0) and signal (label 1), each split at random into the scan's and the references; the
    events of other labels are named signal models' (:func:`signal_samples`).

    Events without labels are data: every one of them is the scan's. A truth reference set apart from them could
    serve no method (those that need the truth refuse unlabelled data), so it would only throw away
    ``reference_fraction`` of the data's statistics."""
    if not labelled:
        events = events.reset_index(drop=True)
        return Samples(events, events.iloc[:0], events.iloc[:0], events.iloc[:0], str(path), False)
    background, ref_bkg = _split(events[events["label"] == 0], reference_fraction, rng(seed, "split_bkg"))
    pool, ref_sig = _split(events[events["label"] == 1], 0.5, rng(seed, "split_sig"))
    return Samples(background, pool, ref_bkg, ref_sig, str(path), labelled)


def seed_background(data, background: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The background of pseudo-experiment seed ``seed`` when ``data.backgrounds`` is independent, and which of
    ``background``'s rows each of its events copies (None when the events are new).

    The synthetic source generates a new background (the same model and size, its own seed). A file holds one
    background only, so its seeds get a Poisson bootstrap of it: each event taken n ~ Poisson(1) times, which
    is how a background of the same expected size fluctuates (Efron's bootstrap with a Poisson total). The caller
    keeps an event's copies in one fold, or a model would score the twin of an event it trained on.
    """
    if data.source == "synthetic":
        s = data.synthetic
        events = generate_background(s.n_background, s.model, rng(data.seed, "background", "seed", seed))
        return add_extra_features(events, s.substructure, s.noise_features,
                                  rng(data.seed, "extra_features", "background", "seed", seed), context=s.context), None
    copies = rng(data.seed, "bootstrap", seed).poisson(1.0, len(background))
    rows = np.repeat(np.arange(len(background)), copies)
    return background.iloc[rows].reset_index(drop=True), rows


def has_labels(data, workdir: str | Path = ".") -> bool | None:
    """Whether the scan's events carry truth labels, known before they are read: a table source says so in its
    config (``data.table.label``), an LHCO file by its columns (read without its events); None where that cannot
    be told yet (the file is not there: the data job names it)."""
    if data.source == "table":
        return data.table.label is not None
    if data.source != "lhco_h5":
        return True
    path = Path(workdir) / data.lhco_h5.path
    if not path.is_file():
        return None
    try:
        with pd.HDFStore(path, "r") as store:
            keys = store.keys()
            return "label" in store.select(keys[0], stop=0).columns if len(keys) == 1 else None
    except Exception:  # not a pandas table: the data job says so, with the reader's reason
        return None


def _split(df: pd.DataFrame, fraction: float, generator: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    mask = generator.random(len(df)) < fraction
    return df[~mask].reset_index(drop=True), df[mask].reset_index(drop=True)


# --- generic tables: ROOT TTrees, Parquet, HDF5 ---

FORMATS = {".root": "root", ".parquet": "parquet", ".pq": "parquet", ".h5": "hdf5", ".hdf5": "hdf5", ".hdf": "hdf5"}


def read_event_table(path: str | Path, tree: str | None, columns: dict[str, str], non_finite: str = "reject",
                     log: Callable[[str], None] = print, labels: tuple[int, ...] = (0, 1)) -> pd.DataFrame:
    """The events of a ROOT TTree, a Parquet file or an HDF5 table, renamed by ``columns`` (the scan's name ->
    the file's column); ``label`` is 0 for every event when the map has none (data, not simulation).

    A ``weight`` column, when mapped, must be finite and >= 0: the bump hunt's scaled Poisson likelihood and the
    flows have no meaning for negative weights (NLO generators' events must be unweighted or resampled first).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file (data.table.path)")
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"{path}: unknown table format {path.suffix!r}; expected one of {sorted(FORMATS)}")
    wanted = {ours: theirs for ours, theirs in columns.items() if theirs is not None}
    frame = _hdf(path, tree) if kind == "hdf5" else None  # an HDF5 table is read whole; the others by column
    available = list(frame.columns) if frame is not None else _columns(path, kind, tree)
    missing = {ours: theirs for ours, theirs in wanted.items() if theirs not in available}
    if missing:
        listing = ", ".join(f"{theirs!r} (for {ours})" for ours, theirs in missing.items())
        raise ValueError(f"{path}{'' if tree is None else ':' + tree}: no column {listing}; it has {sorted(available)} "
                       "(map them with data.table.columns)")
    raw = frame if frame is not None else _read(path, kind, tree, sorted(set(wanted.values())))
    table = pd.DataFrame({ours: numeric(raw[theirs], str(path), theirs, ours) for ours, theirs in wanted.items()})
    table = finite_events(table, list(table.columns), str(path), non_finite, log)
    table["label"] = (check_labels(table["label"].to_numpy(), str(path), wanted["label"], labels) if "label" in table
                      else np.zeros(len(table), np.int8))
    if "weight" in table:
        negative = int((table["weight"] < 0).sum())
        if negative:
            raise ValueError(f"{path}: column {wanted['weight']!r} (data.table.weight) has {negative} of {len(table)} "
                             f"negative weights (smallest {float(table['weight'].min()):g}); slidescan needs weights "
                             ">= 0 (resample or unweight events with negative weights first)")
        if not table["weight"].sum() > 0:
            raise ValueError(f"{path}: column {wanted['weight']!r} (data.table.weight) sums to zero")
    return table


def optional(module: str, what: str, extra: str = "inputs"):
    """An optional dependency, or an error that says which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError:
        raise ModuleNotFoundError(f"{what} needs the {module} package: pip install 'slidescan[{extra}]' "
                                  f"(or pip install {module})") from None


def _columns(path: Path, kind: str, tree: str | None) -> list[str]:
    if kind == "root":
        return list(_tree(path, tree).keys())
    pyarrow = optional("pyarrow", "reading Parquet files")
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except (pyarrow.ArrowException, OSError) as err:
        raise ValueError(f"{path}: not a readable Parquet file ({type(err).__name__}: {err})") from None


def _read(path: Path, kind: str, tree: str | None, columns: list[str]):
    if kind == "root":
        return _tree(path, tree).arrays(columns, library="np")
    return pd.read_parquet(path, columns=columns)


def _tree(path: Path, name: str | None):
    uproot = optional("uproot", "reading ROOT files")
    try:
        file = uproot.open(path)
    except Exception as err:  # uproot raises ValueError, OSError or its own errors for a file that is not ROOT
        raise ValueError(f"{path}: not a readable ROOT file ({type(err).__name__}: {err})") from None
    trees = [k.split(";")[0] for k, cls in file.classnames().items() if cls in ("TTree", "ROOT::RNTuple")]
    if name is None:
        if len(set(trees)) != 1:
            raise ValueError(f"{path}: {len(set(trees))} TTrees {sorted(set(trees))}; name one in data.table.tree")
        name = trees[0]
    trees = sorted(set(trees))  # every cycle of a tree is listed
    if name not in trees:
        raise ValueError(f"{path}: no TTree {name!r} (data.table.tree); it has {trees}")
    return file[name]


def _hdf(path: Path, key: str | None) -> pd.DataFrame:
    """A pandas HDF5 table (``DataFrame.to_hdf``), or a group of 1-D datasets of equal length (h5py)."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path}: not a readable HDF5 file ({err})") from None
    with f:
        keys = [k for k in f.keys()]
        if key is None and len(keys) != 1:
            raise ValueError(f"{path}: {len(keys)} top-level groups {keys}; name one in data.table.tree")
        key = key or keys[0]
        if key not in f:
            raise ValueError(f"{path}: no group {key!r} (data.table.tree); it has {keys}")
        group = f[key]
        pandas_table = isinstance(group, h5py.Group) and "pandas_type" in group.attrs
        if not pandas_table:
            if not isinstance(group, h5py.Group):
                raise ValueError(f"{path}: {key!r} is a dataset; expected a group of one 1-D dataset per column")
            return pd.DataFrame({name: group[name][()] for name in group if group[name].ndim == 1})
    return pd.read_hdf(path, key=key)
