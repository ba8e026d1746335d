"""The report's template pages: per method with a template of its own and per window, the SR data of a
background-only pseudo-experiment against the whole template, feature by feature.

Why: a template is the background a classifier learns against. Where it differs from the SR background the
classifier learns the difference, calls it signal or sculpts with it, and loses the signal it should find. Without
signal (injection 0) the difference is all there is to see, so that is where a template is judged: each figure's
title gives the out-of-fold AUC of SR data against the template (``sr_auc_vs_reference`` of the scan table, 0.5
when they agree, the number the summary's "Templates" line judges) and the closure of each model that built it
where it can be checked on data (``Model.closure``: the sidebands, or the lower sideband transported to the upper),
so a user sees which template to trust, and where it fails, on which feature.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from ..layout import Layout, PseudoExperiment
from ..settings import ScanSettings


def template_methods(settings: ScanSettings) -> list[str]:
    """The scan's methods whose template is not the data itself (a reference with held-out template events:
    CATHODE, SALAD, FETA, CURTAINs, the idealized reference...); CWoLa's sidebands are data."""
    return [name for name, run in settings.methods.items() if getattr(run.method, "held_out", None) is not None]


def background_only(settings: ScanSettings) -> PseudoExperiment:
    """The pseudo-experiment the pages show: background only, the scan's first seed."""
    return PseudoExperiment(0, settings.seeds[0])


def draw_templates(settings: ScanSettings, layout: Layout, method: str, scan: pd.DataFrame, outputs: dict[str, Path],
                   log: Callable[[str], None] = print) -> None:
    """One figure per window (``outputs``: window name -> path) of ``method``'s template against SR data."""
    from ..plots import feature_histograms
    from ..registry import MODELS
    from ..stages.train import window_inputs

    run, experiment = settings.method(method), background_only(settings)
    for window, out in outputs.items():
        inputs, _ = window_inputs(layout, run, settings.window(window), experiment, settings.features,
                                  settings.feature_groups)
        template = pd.concat([run.method.held_out(inputs, fold) for fold in range(settings.k)], ignore_index=True)
        data = inputs.sr(inputs.data)
        rows = scan[(scan["method"] == method) & (scan["window"] == window) & (scan["injection"] == 0)
                    & (scan["seed"] == experiment.seed)]
        auc = rows["sr_auc_vs_reference"].iloc[0] if len(rows) else float("nan")
        closures = [f"{name} closure AUC {inputs.model(name).attrs[MODELS[name].closure]:.3f}"
                    for name in run.models if MODELS[name].closure]
        title = (f"{method}, {window}, injection 0 seed {experiment.seed}: SR data vs template AUC {auc:.3f} "
                 f"(out of fold; 0.5: alike)" + ("\n" + "; ".join(closures) if closures else ""))
        # the region's condition (mjj, or a threshold region's context columns, which a template must get right
        # though no classifier sees them) beside the features
        columns = list(dict.fromkeys([*settings.window(window).context, *settings.features]))
        feature_histograms([(data, f"SR data ({len(data)})"), (template, f"template ({len(template)})")],
                           columns, title, out, xlabel="{} (SR)")
        log(f"{window}: {len(data)} SR data events, {len(template)} template events; AUC {auc:.3f}"
            + (f"; {'; '.join(closures)}" if closures else ""))


__all__ = ["background_only", "draw_templates", "template_methods"]
