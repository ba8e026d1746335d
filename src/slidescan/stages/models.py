"""The model stage: one per-window model (``density.Model``) for one window and pseudo-experiment."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from ..data import FEATURES
from ..density import ModelContext, configure_model
from ..io import read_attrs, read_table, write_tables
from ..layout import Layout, PseudoExperiment
from ..settings import ScanSettings
from . import check_forced_failure


def fit_model(settings: ScanSettings, layout: Layout, name: str, window: str, experiment: PseudoExperiment,
              log: Callable[[str], None] = print) -> None:
    """Fit model ``name`` on the window's split events; write its file and its diagnostics figure."""
    configured = configure_model(name, settings.config)
    model = configured.model
    out = layout.model(model, window, experiment)
    check_forced_failure(out)
    split = layout.split(window, experiment)
    ctx = ModelContext(configured.settings, settings.window(window), experiment, read_table(split, "data"),
                       {t: read_table(split, t) for t in ("background_sr", "signal")}, layout.events(),
                       layout.model_checkpoint(model, window, experiment), log, list(FEATURES), settings.k,
                       settings.data.seed, (model.short, window, experiment.injection, experiment.seed))
    result = model.fit(ctx)
    if "fingerprint" not in result.attrs:
        raise ValueError(f"model {name}: its fit returned no 'fingerprint' attribute (what its result depends on)")
    # a model that trains nothing has an empty loss history (its loss-curve figure says so)
    empty = pd.DataFrame({"epoch": np.zeros(0, int), "train_loss": np.zeros(0), "val_loss": np.zeros(0)})
    tables = {**result.tables, "history": result.history if result.history is not None else empty}
    write_tables(out, tables, attrs={**read_attrs(split), "model": name, **result.attrs}, arrays=result.arrays)
    if model.diagnostics:
        if result.plot is None:
            raise ValueError(f"model {name} declares a diagnostics figure but its fit returned no plot")
        result.plot(layout.model_plot(model, window, experiment))
