"""Event samples: the columns every stage reads, the synthetic generator, readers, injection.

Every sample is a DataFrame with the LHCO / CATHODE columns ``mjj, mj1, delta_mj, tau21_j1,
tau21_j2`` (masses in TeV; ``mj1`` is the lighter jet, ``tau21_j1`` its N-subjettiness ratio)
plus ``label`` (1 signal, 0 background; truth, used only by methods that declare they need it), and
whatever further feature columns the source gives (``slidescan.features``: the scan's features are
chosen by the config). ``FEATURES`` is the baseline set, the columns of the LHCO and CATHODE readers.
Where the events come from is ``data.sources``; the synthetic model is documented in ``docs/synthetic.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

FEATURES = ["mj1", "delta_mj", "tau21_j1", "tau21_j2"]
COLUMNS = ["mjj", *FEATURES, "label"]
SQRT_S = 13.0  # TeV

from .injection import inject  # noqa: E402
from .checks import finite_events  # noqa: E402
from .readers import LHCO_H5_COLUMNS, lhco_features, read_cathode_npy, read_lhco_h5  # noqa: E402
from .synthetic import SyntheticModel, generate_background, generate_signal  # noqa: E402


def weights_of(events, ones: bool = False):
    """The events' per-event weights (their ``weight`` column: data.table.weight, or CATHODE's samples); without
    one, None (unweighted), or ones with ``ones``."""
    import numpy as np

    if "weight" in events:
        return events["weight"].to_numpy()
    return np.ones(len(events)) if ones else None


# a template's replica weights: the same events weighted by the model refitted on bootstraps of its training events
# (``salad.replicas``, ``context_weights.replicas``); the template count's ensemble nuisance is their spread
REPLICA_WEIGHT = "weight_replica_"


def replica_columns(events) -> list[str]:
    """The names of the events' replica weight columns, in order (none for a template without an ensemble)."""
    return [c for c in events.columns if str(c).startswith(REPLICA_WEIGHT)]


@dataclass(frozen=True)
class SyntheticSettings:
    n_background: int
    signal_pool: int
    reference_background: int
    reference_signal: int
    substructure: bool  # the extended sets' subjettiness features too
    noise_features: int  # noise1 ... noiseK
    context: bool  # ht and met, the context columns of a non-resonant search
    model: SyntheticModel


@dataclass(frozen=True)
class LhcoSettings:
    path: str
    reference_fraction: float


@dataclass(frozen=True)
class TableSettings:
    """``data.table``: a ROOT TTree, Parquet file or HDF5 table and which of its columns are what."""

    path: str
    tree: str | None
    mjj: str
    mjj_unit: str
    label: str | None
    weight: str | None  # per-event weights (simulation); None: every event counts 1
    columns: dict  # feature -> the file's column, where they differ
    reference_fraction: float


@dataclass(frozen=True)
class SignalModel:
    """One signal model of the scan (``signals:``). The name is "" in a scan of one model (the synthetic model's
    W', or a file's label-1 events), whose paths and seeds are those of every earlier scan.

    The synthetic source generates a named model with ``synthetic`` (the scan's model with this signal's W', X, Y
    masses and widths); a file source reads it from ``path`` (every event of the file is signal, or its label-1
    events when it has labels) or takes the events whose label column is ``label``.
    """

    name: str
    mass: float  # TeV: the resonance, where its sensitivity and limits are read
    synthetic: SyntheticModel | None = None
    path: str | None = None
    label: int | None = None

    SYNTHETIC_KEYS = ("m_wprime", "m_x", "m_y", "mjj_resolution", "signal_tail_fraction")

    def __str__(self) -> str:
        return f"signal model {self.name}" if self.name else "the signal model"


# names pandas.read_csv reads as NaN, inf or a bool: a model so named would lose its rows in the scan's tables
UNREADABLE_NAMES = frozenset({"na", "nan", "null", "none", "inf", "infinity", "true", "false"})


def signal_models(section: dict, data: "DataSettings", truth_mass: float, source: str = "config"
                  ) -> tuple[SignalModel, ...]:
    """The scan's signal models from the validated ``signals`` section: the one unnamed model when it is empty.

    What a model may say depends on the source: the synthetic source generates (W', X, Y masses, widths), a file
    source reads (``path``, or ``label`` of data.table), and a file's model needs its ``mass``.
    """
    from dataclasses import replace

    from ..config import ConfigError

    synthetic = data.source == "synthetic"
    if not section:
        return (SignalModel("", truth_mass, data.synthetic.model if synthetic else None),)
    models = []
    for name, spec in section.items():
        where = f"{source}: signals.{name}"
        if name.lower() in UNREADABLE_NAMES:
            raise ConfigError(f"{where}: a model may not be named {name!r}: the tables name each row's model, and "
                              "pandas reads that name back as a missing value, a number or a truth value")
        params = {k: v for k, v in spec.items() if k in SignalModel.SYNTHETIC_KEYS}
        if synthetic:
            if "path" in spec or "label" in spec:
                raise ConfigError(f"{where}: the synthetic source generates its signals; give "
                                  f"{', '.join(SignalModel.SYNTHETIC_KEYS)} (not path or label)")
            model = replace(data.synthetic.model, **params)
            mass = float(spec.get("mass", model.m_wprime))
            models.append(SignalModel(name, mass, model))
            continue
        if params:
            raise ConfigError(f"{where}: {', '.join(params)} describe a synthetic signal, but data.source is "
                              f"{data.source}; give the model's events with path or label")
        if ("path" in spec) == ("label" in spec):
            raise ConfigError(f"{where}: give the model's events with exactly one of path (a file of its events) "
                              "or label (its value in data.table's label column)")
        if "label" in spec and data.source != "table":
            raise ConfigError(f"{where}: label selects events by the value of data.table's label column; with "
                              f"data.source {data.source} give a path")
        if "label" in spec and (data.table.label is None):
            raise ConfigError(f"{where}: label {spec['label']} needs data.table.label (the file's label column)")
        if "mass" not in spec:
            raise ConfigError(f"{where}: mass (TeV) is required for a signal read from a file: it is where its "
                              "sensitivity and limits are read")
        models.append(SignalModel(name, float(spec["mass"]), None, spec.get("path"), spec.get("label")))
    labels = [m.label for m in models if m.label is not None]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{source}: signals: two models take the same label value {labels}")
    return tuple(models)


@dataclass(frozen=True)
class AuxiliarySample:
    """One named auxiliary sample of ``data.samples`` (a simulation, say): generated by the synthetic source with a
    mismodelling preset, or read from ``path`` like the data's file. ``kind`` "signal": a signal prior (QUAK's),
    the synthetic W' -> X Y at the masses ``m_x``, ``m_y``."""

    name: str
    mismodelling: str = "none"
    n_events: int | None = None
    path: str | None = None
    weight: str | None = None
    kind: str = "background"
    m_x: float | None = None
    m_y: float | None = None

    def check(self, data: "DataSettings", source: str = "config") -> None:
        from ..config import ConfigError

        where = f"{source}: data.samples.{self.name}"
        if self.kind == "signal" and self.mismodelling != "none":
            raise ConfigError(f"{where}: mismodelling distorts a simulated background; a signal sample (kind: signal) "
                              "takes none")
        if self.kind != "signal" and (self.m_x is not None or self.m_y is not None):
            raise ConfigError(f"{where}: m_x and m_y are the masses of a synthetic signal sample; add kind: signal")
        if data.source != "synthetic" and (self.m_x is not None or self.m_y is not None):
            raise ConfigError(f"{where}: m_x and m_y describe a generated signal, but data.source is {data.source}")
        if data.source == "synthetic" and (self.path or self.weight):
            raise ConfigError(f"{where}: the synthetic source generates its samples (mismodelling, n_events); path "
                              "and weight are for file sources")
        if data.source != "synthetic":
            if not self.path:
                raise ConfigError(f"{where}: path is required with data.source {data.source} (the sample's file, "
                                  "read like the data's)")
            if self.mismodelling != "none" or self.n_events is not None:
                raise ConfigError(f"{where}: mismodelling and n_events describe a generated sample, but data.source "
                                  f"is {data.source}")
            if self.weight and data.source != "table":
                raise ConfigError(f"{where}: weight names a column of a table file (data.source table)")


@dataclass(frozen=True)
class DataSettings:
    """The ``data`` section: where the events come from and the base seed of every random choice."""

    source: str
    seed: int
    non_finite: str
    duplicates: str
    synthetic: SyntheticSettings
    lhco_h5: LhcoSettings | None
    table: TableSettings | None
    backgrounds: str  # "independent": a background per pseudo-experiment seed (sources.seed_background)
    samples: tuple[AuxiliarySample, ...] = ()  # data.samples, by name

    def sample(self, name: str) -> AuxiliarySample:
        for sample in self.samples:
            if sample.name == name:
                return sample
        raise KeyError(f"no sample {name!r} in data.samples (it has {[s.name for s in self.samples]})")

    @classmethod
    def from_config(cls, section: dict) -> "DataSettings":
        """From the validated ``data`` section (every default filled in)."""
        synthetic = dict(section.get("synthetic") or {})
        model = SyntheticModel.from_config(synthetic.pop("model", None))
        lhco, table = section.get("lhco_h5"), section.get("table")
        return cls(str(section["source"]), int(section["seed"]), str(section["non_finite"]), str(section["duplicates"]),
                   SyntheticSettings(**synthetic, model=model),
                   LhcoSettings(**lhco) if lhco else None, TableSettings(**table) if table else None,
                   backgrounds=str(section["backgrounds"]),
                   samples=tuple(AuxiliarySample(name, **spec) for name, spec in (section.get("samples") or {}).items()))


__all__ = ["AuxiliarySample", "FEATURES", "COLUMNS", "SQRT_S", "LHCO_H5_COLUMNS", "DataSettings", "SignalModel", "SyntheticModel", "signal_models", "inject",
           "finite_events", "generate_background", "generate_signal", "lhco_features", "read_cathode_npy", "read_lhco_h5",
           "weights_of"]
