"""Regions: where each event of a scan lies (signal region, control region, outside), one kind per search, and
the k-fold assignment of events.

Why one module: every stage asks the same questions of a region (which events are in the SR, which in the control
region, what a density model is conditioned on, what the SR's condition looks like, which test a selection gets),
and when each stage answered them itself from mjj edges, a search without an mjj window could not be written.
Two kinds:

- ``Window``, the sliding mjj window of a resonance search: an SR with a sideband (SB) on each side, conditioned
  on mjj, tested by the fit of the selected sidebands (``sideband_fit``). Windows may overlap; each is analysed
  on its own.
- ``Thresholds``, a non-resonant search's signal region in one or two context variables (arXiv:2311.12924): the
  SR is the high corner (every context column at or above its threshold), the control region (CR) everything
  else; a grid of thresholds is the "sliding" of this search. Density models are conditioned on the context
  columns, and a selection is tested against the method's template (``template_count``): there is no sideband
  on the far side to interpolate from. With ``windows.validation`` each SR gets a validation region (VR): the
  corner lowered by the given widths, less the SR (which is outside it, blinded). The VR is scanned as a region of
  its own, the method extrapolating into it from a CR further away; what its template count misses there (the
  non-closure) is the systematic of the SR's prediction (``stats.template_count``). Why: the template count's
  statistical and ensemble errors cover how much the template would move with another training, not how far the
  extrapolation itself is off (a mistuned simulation reweighted, a flow applied past where it was trained). It
  assumes the extrapolation is as far off in the SR as one step before it, which holds for Reweight and not for
  flows conditioned on met, whose bias grows with the distance extrapolated (docs/benchmarks.md, the calibration).
  ``windows.condition`` names the context columns the density models are conditioned on (all by default): a
  column the features depend on only through the others (met, given ht, for QCD) left out, the flows interpolate
  in the rest instead of extrapolating into the corner, and the VR tests that assumption.

Every event of a region has a code (``REGION_*``) in the column ``region``: stages downstream read that column,
never the edges. Folds are assigned once per pseudo-dataset, so an event has the same fold in every region, and
every event belongs to exactly one fold.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np
import pandas as pd

REGION_SB_LOW, REGION_SR, REGION_SB_HIGH, REGION_OUTSIDE, REGION_CR = -1, 0, 1, 2, 3
# the region kinds (windows.kind); a method or model that reads no mjj edge declares ``regions=ANY_REGION``
ANY_REGION = ("mjj_window", "thresholds")
# no collider reaches a dijet mass of 100 TeV: a window edge above it is in GeV
MAX_TEV = 100.0


def sample_kde(values: np.ndarray, n: int, inside, seed: int, weight: np.ndarray | None = None,
               what: str = "the SR") -> np.ndarray:
    """``n`` draws from a Gaussian KDE of ``values`` ((m,) or (m, d), weighted by ``weight``) for which
    ``inside(draws)`` holds (rejection): the condition of SR samples, drawn like the SR data's."""
    from scipy.stats import gaussian_kde

    values = np.asarray(values, float)
    if len(values) < 2:
        raise ValueError(f"{what}: {len(values)} events are too few for a density estimate of its condition")
    kde = gaussian_kde(values.T, weights=weight)
    generator = np.random.default_rng(seed)
    out = np.empty((0,) + values.shape[1:])
    while len(out) < n:
        draw = kde.resample(2 * (n - len(out)) + 100, seed=generator)
        draw = draw[0] if values.ndim == 1 else draw.T
        out = np.concatenate([out, draw[inside(draw)]])
    return out[:n]


@dataclass(frozen=True)
class Window:
    """A sliding mjj window: SR [sr_lo, sr_hi) between the sidebands [sb_lo, sr_lo) and [sr_hi, sb_hi), in TeV."""

    index: int
    sb_lo: float
    sr_lo: float
    sr_hi: float
    sb_hi: float

    kind = "mjj_window"
    validated = None  # the name of the SR a region validates (``Thresholds``); an mjj window validates none
    context = ("mjj",)
    condition_columns = context  # what its density models are conditioned on
    statistic = "sideband_fit"  # its default test (bumphunt.statistic)
    outside = "sidebands"  # what logs and figures call the region a model learns in

    @property
    def name(self) -> str:
        return f"w{self.index:02d}"

    @property
    def sr_centre(self) -> float:
        return 0.5 * (self.sr_lo + self.sr_hi)

    @property
    def label(self) -> str:
        return f"SR {self.sr_lo:g}-{self.sr_hi:g} TeV"

    def row(self) -> dict:
        return dict(window=self.name, sb_lo=self.sb_lo, sr_lo=self.sr_lo, sr_hi=self.sr_hi, sb_hi=self.sb_hi)

    def region(self, mjj: np.ndarray) -> np.ndarray:
        """Each event's region: ``REGION_SB_LOW``, ``REGION_SR``, ``REGION_SB_HIGH``, or ``REGION_OUTSIDE`` the window."""
        mjj = np.asarray(mjj)
        region = np.full(mjj.shape, REGION_OUTSIDE, dtype=np.int8)
        region[(mjj >= self.sb_lo) & (mjj < self.sr_lo)] = REGION_SB_LOW
        region[(mjj >= self.sr_lo) & (mjj < self.sr_hi)] = REGION_SR
        region[(mjj >= self.sr_hi) & (mjj < self.sb_hi)] = REGION_SB_HIGH
        return region

    def assign(self, events: pd.DataFrame) -> np.ndarray:
        """The region code of each event of a table (its ``mjj``)."""
        return self.region(events["mjj"].to_numpy())

    def condition(self, events: pd.DataFrame) -> np.ndarray:
        """What a density model of this region is conditioned on: mjj, shape (n,)."""
        return events["mjj"].to_numpy()

    def sample_condition(self, sr: pd.DataFrame, n: int, seed: int, weight: np.ndarray | None = None) -> np.ndarray:
        """``n`` SR conditions from a KDE of the SR events' mjj, kept inside the SR."""
        return sample_kde(self.condition(sr), n, lambda m: (m >= self.sr_lo) & (m < self.sr_hi), seed, weight,
                          f"SR {self.sr_lo:g}-{self.sr_hi:g}")

    def inside(self, mjj: np.ndarray) -> np.ndarray:
        """Whether each event is in the window (either sideband or the SR)."""
        return self.region(mjj) != REGION_OUTSIDE

    def in_sidebands(self, mjj: np.ndarray) -> np.ndarray:
        """Whether each event is in one of the two sidebands."""
        return np.isin(self.region(mjj), (REGION_SB_LOW, REGION_SB_HIGH))

    def counts(self, region: np.ndarray) -> dict[str, int]:
        """Events per part of the window, for the check of ``windows.min_events``."""
        return {"low sideband": int((region == REGION_SB_LOW).sum()), "SR": int((region == REGION_SR).sum()),
                "high sideband": int((region == REGION_SB_HIGH).sum())}

    def scan_columns(self) -> dict:
        """Its columns in the bump hunt's rows (pvalue_scan.csv)."""
        return {"sr_lo": self.sr_lo, "sr_hi": self.sr_hi}

    def mjj_bins(self, bin_width: float) -> np.ndarray:
        """The mjj bin edges of the low sideband, the SR and the high sideband: where a cut's sculpting of mjj is read."""
        from .stats.dijet import window_edges

        return np.unique(np.concatenate(window_edges(self, bin_width)))

    def draw_selection(self, events: pd.DataFrame, results: list, bin_width: float, title: str, out) -> None:
        """The bump hunt's figure: the selected mjj spectra with the sideband fit, per efficiency."""
        from .plots import selected_spectra

        selected_spectra(events["mjj"].to_numpy(), events["score"].to_numpy(), self, results, bin_width, title, out)

    @staticmethod
    def truth(windows: list, mass) -> "Window":
        """The window whose SR centre is nearest to a signal's mass (``mass()``; where ROC, SIC and loss curves are
        drawn)."""
        m = mass()
        return min(windows, key=lambda w: abs(w.sr_centre - m))

    @staticmethod
    def draw_map(events: pd.DataFrame, windows: list, out, truth_mass: float | None = None) -> None:
        """The windows over the mjj spectrum."""
        from .plots import window_map

        window_map(events["mjj"].to_numpy(), windows, out, truth_mass=truth_mass)

    @staticmethod
    def check_range(windows: list, events: pd.DataFrame) -> tuple[dict[str, str], str]:
        """The windows whose sidebands reach beyond the data's mjj range (name -> problem), and what to change
        (with the hint of a units mistake)."""
        mjj = events["mjj"].to_numpy(float)
        lo, hi = float(mjj.min()), float(mjj.max())
        problems = {}
        for w in windows:
            # the sampled range starts a hair inside its nominal edge: 2 % of a sideband outside the data is no gap
            slack = 0.02 * min(w.sr_lo - w.sb_lo, w.sb_hi - w.sr_hi)
            if w.sb_lo < lo - slack or w.sb_hi > hi + slack:
                problems[w.name] = (f"window {w.name} (sidebands {w.sb_lo:g}-{w.sb_hi:g} TeV) reaches beyond the "
                                    f"data's mjj range {lo:.4g}-{hi:.4g} TeV")
        ratio = np.median([w.sr_centre for w in windows]) / np.median(mjj)
        hint = (f" The data's mjj is about {ratio:.0f} times below the windows: are both in TeV?" if ratio > 10 else
                f" The data's mjj is about {1 / ratio:.0f} times above the windows: are both in TeV?"
                if ratio < 0.1 else "")
        return problems, "Change the windows section (first_sr_lo, last_sr_lo, sr_width, sb_width) or " \
                         "windows.min_events." + hint


@dataclass(frozen=True)
class Thresholds:
    """A non-resonant SR: every context column at or above its threshold (the high corner); the CR is the rest."""

    index: int
    context: tuple[str, ...]
    thresholds: tuple[float, ...]
    # a validation region: the thresholds of the SR it validates (``validation_regions``), whose events lie outside
    # it; its own SR is its corner less that one
    validates: tuple[float, ...] | None = None
    # the context columns the density models are conditioned on (``windows.condition``); None: all of them
    conditioned: tuple[str, ...] | None = None

    kind = "thresholds"
    statistic = "template_count"
    outside = "CR"

    @property
    def name(self) -> str:
        return f"{'v' if self.validates else 'w'}{self.index:02d}"

    @property
    def validated(self) -> str | None:
        """The name of the SR whose prediction this region validates (None: a search region)."""
        return f"w{self.index:02d}" if self.validates else None

    @property
    def label(self) -> str:
        corner = ", ".join(f"{c} >= {t:g}" for c, t in zip(self.context, self.thresholds))
        return f"VR {corner}, below {self.validated}" if self.validates else f"SR {corner}"

    def row(self) -> dict:
        row = dict(window=self.name, **{f"{c}_min": t for c, t in zip(self.context, self.thresholds)})
        return {**row, "validates": self.validated} if self.validates else row

    @staticmethod
    def _in_corner(values: np.ndarray, thresholds: tuple[float, ...]) -> np.ndarray:
        values = np.asarray(values, float).reshape(len(values), -1)
        return np.all(values >= np.asarray(thresholds), axis=1)

    def _in_sr(self, values: np.ndarray) -> np.ndarray:
        inside = self._in_corner(values, self.thresholds)
        return inside & ~self._in_corner(values, self.validates) if self.validates else inside

    def assign(self, events: pd.DataFrame) -> np.ndarray:
        """SR or CR; a validation region's validated SR is outside it (neither its SR nor what it trains on)."""
        values = events[list(self.context)].to_numpy()
        region = np.full(len(events), REGION_CR, dtype=np.int8)
        region[self._in_sr(values)] = REGION_SR
        if self.validates:
            region[self._in_corner(values, self.validates)] = REGION_OUTSIDE
        return region

    @property
    def condition_columns(self) -> tuple[str, ...]:
        """The context columns a density model of this region is conditioned on (``windows.condition``)."""
        return self.conditioned or self.context

    def condition(self, events: pd.DataFrame) -> np.ndarray:
        """The conditioning context columns, shape (n,) for one and (n, d) for several."""
        values = events[list(self.condition_columns)].to_numpy(float)
        return values[:, 0] if len(self.condition_columns) == 1 else values

    def sample_condition(self, sr: pd.DataFrame, n: int, seed: int, weight: np.ndarray | None = None) -> np.ndarray:
        """``n`` SR conditions from a KDE of the SR events' conditioning columns, kept inside the SR (inside its
        projection onto those columns, where the models see fewer than all)."""
        if self.condition_columns == self.context:
            inside = self._in_sr
        else:
            at = [self.context.index(c) for c in self.condition_columns]
            inside = lambda values: self._in_corner(values, tuple(self.thresholds[i] for i in at))  # noqa: E731
        return sample_kde(self.condition(sr), n, inside, seed, weight, f"{self.name} ({self.label})")

    def counts(self, region: np.ndarray) -> dict[str, int]:
        return {"SR": int((region == REGION_SR).sum()), "CR": int((region == REGION_CR).sum())}

    def scan_columns(self) -> dict:
        """Its columns in the bump hunt's rows: no mjj window (sr_lo, sr_hi empty), its thresholds (<column>_min)."""
        return {"sr_lo": np.nan, "sr_hi": np.nan, **{k: v for k, v in self.row().items() if k != "window"}}

    def mjj_bins(self, bin_width: float) -> None:
        """No sidebands in mjj to read a cut's sculpting against."""
        return None

    def draw_selection(self, events: pd.DataFrame, results: list, bin_width: float, title: str, out) -> None:
        """The bump hunt's figure: per cut, the SR events kept against the predicted background."""
        from .plots import selected_counts

        selected_counts(results, title, out)

    @staticmethod
    def truth(regions: list, mass) -> "Thresholds":
        """A non-resonant signal is in every region: the loosest, the first, is where its curves are drawn (its
        mass is not asked)."""
        return regions[0]

    @staticmethod
    def draw_map(events: pd.DataFrame, regions: list, out, truth_mass: float | None = None) -> None:
        """Each SR's corner over the events' context columns."""
        from .plots import threshold_map

        threshold_map(events, regions, out)

    @staticmethod
    def check_range(regions: list, events: pd.DataFrame) -> tuple[dict[str, str], str]:
        """Nothing to check beyond the counts: a threshold region has no far edge."""
        return {}, "Change windows.thresholds or windows.min_events."


def region_grid(config: dict) -> list:
    """The regions of the ``windows`` config: the sliding mjj windows (``kind: mjj_window``, ``window_grid``) or
    the grid of SR thresholds (``kind: thresholds``: every combination of ``thresholds.<context column>``)."""
    if config.get("kind", "mjj_window") == "mjj_window":
        missing = [k for k in ("first_sr_lo", "last_sr_lo", "sr_width", "step", "sb_width") if k not in config]
        if missing:
            raise ValueError(f"windows: kind mjj_window needs {', '.join(missing)}")
        if config.get("validation"):
            raise ValueError("windows.validation: validation regions are for kind thresholds (a non-resonant search's "
                             "template count); an mjj window's sideband fit is validated by its sidebands")
        if config.get("condition"):
            raise ValueError("windows.condition: for kind thresholds (which of its context columns the density "
                             "models are conditioned on); an mjj window's models are conditioned on mjj")
        return window_grid(config)
    # the mjj window's keys are not read: a config of kind thresholds may overlay one of mjj windows
    grid = config.get("thresholds") or {}
    if not grid or len(grid) > 2:
        raise ValueError(f"windows.thresholds: give one or two context columns, each with its SR thresholds "
                         f"(e.g. {{ht: [1.0, 1.2], met: [0.3, 0.4]}}), got {grid or 'none'}")
    context = tuple(grid)
    for column, values in grid.items():
        if not values:
            raise ValueError(f"windows.thresholds.{column}: no thresholds")
    conditioned = config.get("condition")
    unknown = sorted(set(conditioned or ()) - set(context))
    if unknown:
        raise ValueError(f"windows.condition: {', '.join(unknown)} is not a context column of windows.thresholds "
                         f"({', '.join(context)})")
    # in the thresholds' order, and None where it names them all: such a scan is the scan without the key
    conditioned = tuple(c for c in context if c in conditioned) if conditioned else None
    conditioned = None if conditioned == context else conditioned
    regions = [Thresholds(i, context, tuple(float(v) for v in values), conditioned=conditioned)
               for i, values in enumerate(product(*(sorted(set(grid[c])) for c in context)))]
    return regions + validation_regions(regions, config.get("validation"))


def validation_regions(regions: list, widths: dict | None) -> list:
    """One validation region per SR (``windows.validation``: per context column, how far below the SR's threshold
    the VR reaches): the corner of the lowered thresholds less the SR, named ``v<i>`` after the SR ``w<i>``."""
    if not widths:
        return []
    unknown = sorted(set(widths) - set(regions[0].context))
    if unknown:
        raise ValueError(f"windows.validation: {', '.join(unknown)} is not a context column of windows.thresholds "
                         f"({', '.join(regions[0].context)})")
    # rounded: 0.15 - 0.05 is 0.09999999999999999, which windows.csv and the labels would show
    return [Thresholds(r.index, r.context, tuple(round(t - float(widths.get(c, 0.0)), 9)
                                                 for c, t in zip(r.context, r.thresholds)),
                       validates=r.thresholds, conditioned=r.conditioned) for r in regions]


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


def check_windows(windows: list, events: pd.DataFrame, min_events: int, source: str) -> None:
    """Every region inside the data's range, with at least ``min_events`` events in each of its parts.

    A sideband past the end of the data is partly empty, and its fit then predicts a wrong SR
    background; a region with a handful of events trains nothing. Both are found here, when the
    data are prepared, with the region named, instead of deep in a training job.
    """
    for w in windows:
        missing = [c for c in w.context if c not in events]
        if missing:
            raise ValueError(f"{source}: no column(s) {missing}: region {w.name} ({w.label}) is defined in them "
                             "(windows.thresholds); map them with data.table.columns")
    beyond, what = type(windows[0]).check_range(windows, events)
    problems = []
    for w in windows:
        if w.name in beyond:
            problems.append(beyond[w.name])
            continue
        few = {name: n for name, n in w.counts(w.assign(events)).items() if n < min_events}
        if few:
            problems.append(f"window {w.name} ({w.label}) has "
                            + ", ".join(f"{n} events in its {name}" for name, n in few.items())
                            + f", fewer than windows.min_events ({min_events})")
    if problems:
        raise ValueError(f"{source}: " + "; ".join(problems) + f". {what}")


def window_table(windows: list) -> pd.DataFrame:
    return pd.DataFrame([w.row() for w in windows])


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
