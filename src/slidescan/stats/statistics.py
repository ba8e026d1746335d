"""The tests a scan's selections get (``bumphunt.statistic``): a registry, like the methods'.

Why a registry: how the background after a cut is predicted depends on the search. A resonance in mjj gets it
from a smooth fit of the selected sidebands (``sideband_fit``: robust to a template's flaws, which only shape the
cut, but it needs a sideband on each side and a spectrum a smooth function describes). A search without sidebands,
or one that trusts its template, takes it from the template (``template_count``, ``stats.template_count``). Each
test returns the same rows (``BumpHuntResult``): the p-value scan, the look-elsewhere correction, the calibration,
the limits and the report read them whichever test made them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd

from ..registry import STATISTICS


@dataclass(frozen=True)
class Statistic:
    """``test(events, template, window, settings, seed, validation)``: one ``BumpHuntResult`` per efficiency.
    ``events``: the window's out-of-fold scores (mjj, region, label, score, weight); ``template``: the method's
    held-out SR template scored out of fold (None for a method without one; a test that ``needs_template`` refuses
    those); ``validation``, by keyword and only in a scan with validation regions (``windows.validation``): the rows
    of the region's validation region. A test without that keyword still runs every scan without them."""

    name: str
    description: str
    test: Callable[..., list]
    needs_template: bool = False
    regions: tuple[str, ...] | None = None  # the region kinds it can test (windows.kind); None: any


def register_statistic(statistic: Statistic) -> Statistic:
    return STATISTICS.register(statistic)


def _sideband_fit(events: pd.DataFrame, template, window, settings, seed: int, validation=None) -> list:
    from ..data import weights_of

    if validation is not None:
        raise ValueError(f"window {window.name}: the sideband fit takes no validation region (windows.validation is "
                         "for the template count)")
    from .bumphunt import bump_hunt

    return bump_hunt(events["mjj"].to_numpy(), events["score"].to_numpy(), window, settings.efficiencies,
                     settings.bin_width, settings.fit_parameters, labels=events["label"].to_numpy(),
                     calculator=settings.p0_calculator, ntoys=settings.p0_toys, seed=seed,
                     weights=weights_of(events), region=events["region"].to_numpy())


def _template_count(events: pd.DataFrame, template, window, settings, seed: int, validation=None) -> list:
    from .template_count import template_count

    return template_count(events, template, window, settings.efficiencies, settings.p0_calculator,
                          settings.p0_toys, seed, settings.bin_width, validation)


register_statistic(Statistic("sideband_fit", "dijet function fitted to the selected sidebands, interpolated into "
                             "the SR", _sideband_fit, regions=("mjj_window",)))
register_statistic(Statistic("template_count", "the method's template's fraction above the cut times the SR events, "
                             "its folds' spread as a constrained nuisance", _template_count, needs_template=True))

__all__ = ["Statistic", "register_statistic"]
