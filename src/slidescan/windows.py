"""The sliding-window grid in mjj and the k-fold assignment of events.

A window is a signal region (SR) with a sideband (SB) on each side. Windows may overlap; each is
analysed on its own. Folds are assigned once per pseudo-dataset, so an event has the same fold in
every window, and every event belongs to exactly one fold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

REGION_SB_LOW, REGION_SR, REGION_SB_HIGH, REGION_OUTSIDE = -1, 0, 1, 2
# no collider reaches a dijet mass of 100 TeV: a window edge above it is in GeV
MAX_TEV = 100.0


@dataclass(frozen=True)
class Window:
    index: int
    sb_lo: float
    sr_lo: float
    sr_hi: float
    sb_hi: float

    @property
    def name(self) -> str:
        return f"w{self.index:02d}"

    @property
    def sr_centre(self) -> float:
        return 0.5 * (self.sr_lo + self.sr_hi)

    def region(self, mjj: np.ndarray) -> np.ndarray:
        """Each event's region: ``REGION_SB_LOW``, ``REGION_SR``, ``REGION_SB_HIGH``, or ``REGION_OUTSIDE`` the window."""
        mjj = np.asarray(mjj)
        region = np.full(mjj.shape, REGION_OUTSIDE, dtype=np.int8)
        region[(mjj >= self.sb_lo) & (mjj < self.sr_lo)] = REGION_SB_LOW
        region[(mjj >= self.sr_lo) & (mjj < self.sr_hi)] = REGION_SR
        region[(mjj >= self.sr_hi) & (mjj < self.sb_hi)] = REGION_SB_HIGH
        return region

    def inside(self, mjj: np.ndarray) -> np.ndarray:
        """Whether each event is in the window (either sideband or the SR)."""
        return self.region(mjj) != REGION_OUTSIDE

    def in_sidebands(self, mjj: np.ndarray) -> np.ndarray:
        """Whether each event is in one of the two sidebands."""
        return np.isin(self.region(mjj), (REGION_SB_LOW, REGION_SB_HIGH))


def window_grid(config: dict) -> list[Window]:
    """Windows from the ``windows`` config: SR width, step and sideband width, linear or log in mjj.

    ``first_sr_lo`` .. ``last_sr_lo`` bound the SR lower edges. In ``log`` spacing the widths and
    step are relative (fractions of the SR lower edge), which keeps the SR width proportional to
    the mjj resolution.
    """
    spacing = config.get("spacing", "linear")
    first, last = float(config["first_sr_lo"]), float(config["last_sr_lo"])
    width, step, sb = float(config["sr_width"]), float(config["step"]), float(config["sb_width"])
    for key, value in (("sr_width", width), ("step", step), ("sb_width", sb)):
        if value <= 0:
            raise ValueError(f"windows.{key}: {value:g} must be > 0")
    if last < first:
        raise ValueError(f"windows.last_sr_lo: {config['last_sr_lo']} is below windows.first_sr_lo "
                         f"({config['first_sr_lo']}); the SR lower edges run from first_sr_lo up to last_sr_lo")
    for key, value in (("first_sr_lo", first), ("last_sr_lo", last)):
        if value > MAX_TEV:
            raise ValueError(f"windows.{key}: {value:g} TeV is beyond any collider's reach: windows are in TeV "
                             f"(did you mean {value / 1000:g}?)")
    windows = []
    lo = first
    while lo <= last + 1e-9:
        if spacing == "linear":
            sr_lo, sr_hi = lo, lo + width
            sb_lo, sb_hi = sr_lo - sb, sr_hi + sb
            nxt = lo + step
        elif spacing == "log":
            sr_lo, sr_hi = lo, lo * (1 + width)
            sb_lo, sb_hi = sr_lo / (1 + sb), sr_hi * (1 + sb)
            nxt = lo * (1 + step)
        else:
            raise ValueError(f"windows.spacing: expected 'linear' or 'log', got {spacing!r}")
        windows.append(Window(len(windows), round(sb_lo, 6), round(sr_lo, 6), round(sr_hi, 6), round(sb_hi, 6)))
        lo = nxt
    return windows


def check_windows(windows: list[Window], mjj: np.ndarray, min_events: int, source: str) -> None:
    """Every window inside the data's mjj range, with at least ``min_events`` events in each region.

    A sideband past the end of the data is partly empty, and its fit then predicts a wrong SR
    background; a region with a handful of events trains nothing. Both are found here, when the
    data are prepared, with the window named, instead of deep in a training job.
    """
    mjj = np.asarray(mjj, float)
    lo, hi = float(mjj.min()), float(mjj.max())
    problems = []
    for w in windows:
        # the sampled range starts a hair inside its nominal edge: 2 % of a sideband outside the data is no gap
        slack = 0.02 * min(w.sr_lo - w.sb_lo, w.sb_hi - w.sr_hi)
        if w.sb_lo < lo - slack or w.sb_hi > hi + slack:
            problems.append(f"window {w.name} (sidebands {w.sb_lo:g}-{w.sb_hi:g} TeV) reaches beyond the data's mjj "
                            f"range {lo:.4g}-{hi:.4g} TeV")
            continue
        region = w.region(mjj)
        counts = {"low sideband": int((region == REGION_SB_LOW).sum()), "SR": int((region == REGION_SR).sum()),
                  "high sideband": int((region == REGION_SB_HIGH).sum())}
        few = {name: n for name, n in counts.items() if n < min_events}
        if few:
            problems.append(f"window {w.name} (SR {w.sr_lo:g}-{w.sr_hi:g} TeV) has "
                            + ", ".join(f"{n} events in its {name}" for name, n in few.items())
                            + f", fewer than windows.min_events ({min_events})")
    if problems:
        ratio = np.median([w.sr_centre for w in windows]) / np.median(mjj)
        units = (f" The data's mjj is about {ratio:.0f} times below the windows: are both in TeV?" if ratio > 10 else
                 f" The data's mjj is about {1 / ratio:.0f} times above the windows: are both in TeV?"
                 if ratio < 0.1 else "")
        raise ValueError(f"{source}: " + "; ".join(problems) + ". Change the windows section (first_sr_lo, "
                         "last_sr_lo, sr_width, sb_width) or windows.min_events." + units)


def window_table(windows: list[Window]) -> pd.DataFrame:
    return pd.DataFrame(
        [dict(window=w.name, sb_lo=w.sb_lo, sr_lo=w.sr_lo, sr_hi=w.sr_hi, sb_hi=w.sb_hi) for w in windows]
    )


def window_by_name(windows: list[Window], name: str) -> Window:
    for w in windows:
        if w.name == name:
            return w
    raise KeyError(f"no window named {name!r}; the grid has {[w.name for w in windows]}")


def assign_folds(n_events: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Balanced random fold labels 0..k-1: fold sizes differ by at most one."""
    if k < 2:
        raise ValueError(f"folds.k must be at least 2 for out-of-fold scores, got {k}")
    return (rng.permutation(n_events) % k).astype(np.int8)
