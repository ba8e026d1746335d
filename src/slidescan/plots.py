"""Figures in the HEP style (mplhep)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mplhep  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats as sps  # noqa: E402

from .io import atomic_path  # noqa: E402

plt.style.use(mplhep.style.CMS)


def pvalue_scan(table: pd.DataFrame, method: str, injection: int, out: str | os.PathLike,
                truth_mass: float | None = None) -> None:
    """CWoLa-hunting style scan: local p0 against SR centre, one line per efficiency.

    With several pseudo-experiment seeds the line is the median and the band spans the seeds.
    """
    sub = table[(table["method"] == method) & (table["injection"] == injection)].copy()
    sub["centre"] = 0.5 * (sub["sr_lo"] + sub["sr_hi"])
    fig, ax = plt.subplots(figsize=(9, 7))
    colors = plt.cm.viridis(np.linspace(0, 0.9, sub["efficiency"].nunique()))
    for color, (eff, grp) in zip(colors, sorted(sub.groupby("efficiency"), key=lambda kv: -kv[0])):
        stats = grp.groupby("centre")["p0"].agg(["median", "min", "max"]).reset_index()
        label = "no cut" if eff >= 1 else f"top {eff:g}"
        ax.plot(stats["centre"], stats["median"].clip(lower=1e-12), "o-", color=color, label=label)
        if grp["seed"].nunique() > 1:
            ax.fill_between(stats["centre"], stats["min"].clip(lower=1e-12), stats["max"].clip(lower=1e-12),
                            color=color, alpha=0.2)
    ax.set_yscale("log")
    lowest = np.nanmin(sub["p0"].clip(lower=1e-12)) if sub["p0"].notna().any() else 1e-3
    ax.set_ylim(min(lowest / 5, 1e-4), 1.5)
    for n_sigma in range(1, 8):
        p = sps.norm.sf(n_sigma)
        if p >= ax.get_ylim()[0]:
            ax.axhline(p, color="grey", ls="--", lw=0.8)
            ax.text(ax.get_xlim()[1], p, f" {n_sigma}$\\sigma$", va="center", color="grey", fontsize=12)
    if truth_mass is not None and injection > 0:
        ax.axvline(truth_mass, color="red", ls=":", lw=1.2, label=f"injected signal ({truth_mass:g} TeV)")
    ax.set_xlabel(r"signal region centre $m_{jj}$ [TeV]")
    ax.set_ylabel(r"local $p_0$")
    ax.set_title(f"{method}, injection {injection}", fontsize=16, loc="right")
    ax.legend(fontsize=12, loc="lower left")
    _save(fig, out)


def _save(fig, out) -> None:
    with atomic_path(out) as tmp:
        fig.savefig(tmp, bbox_inches="tight", dpi=90, format=os.path.splitext(str(out))[1][1:] or "png")
    plt.close(fig)
