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


@dataclass(frozen=True)
class SyntheticSettings:
    n_background: int
    signal_pool: int
    reference_background: int
    reference_signal: int
    substructure: bool  # the extended sets' subjettiness features too
    noise_features: int  # noise1 ... noiseK
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

    @classmethod
    def from_config(cls, section: dict) -> "DataSettings":
        """From the validated ``data`` section (every default filled in)."""
        synthetic = dict(section.get("synthetic") or {})
        model = SyntheticModel.from_config(synthetic.pop("model", None))
        lhco, table = section.get("lhco_h5"), section.get("table")
        return cls(str(section["source"]), int(section["seed"]), str(section["non_finite"]), str(section["duplicates"]),
                   SyntheticSettings(**synthetic, model=model),
                   LhcoSettings(**lhco) if lhco else None, TableSettings(**table) if table else None,
                   backgrounds=str(section["backgrounds"]))


__all__ = ["FEATURES", "COLUMNS", "SQRT_S", "LHCO_H5_COLUMNS", "DataSettings", "SyntheticModel", "inject",
           "finite_events", "generate_background", "generate_signal", "lhco_features", "read_cathode_npy", "read_lhco_h5",
           "weights_of"]
