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

from .data import weights_of  # noqa: E402
from .io import atomic_path  # noqa: E402

plt.style.use(mplhep.style.CMS)


def region_position(rows: pd.DataFrame) -> tuple[pd.Series, str, bool]:
    """Where each row's region lies on a scan figure's x axis: its SR centre in mjj, or for regions without an mjj
    window (thresholds, whose sr_lo is empty) its index in the grid (windows.csv); the axis label; whether in mjj."""
    if rows["sr_lo"].notna().all():
        return 0.5 * (rows["sr_lo"] + rows["sr_hi"]), r"signal region centre $m_{jj}$ [TeV]", True
    return rows["window"].str[1:].astype(int), "region (windows.csv: its thresholds)", False


def pvalue_scan(table: pd.DataFrame, method: str, injection: int, out: str | os.PathLike,
                truth_mass: float | None = None, signal: str = "") -> None:
    """CWoLa-hunting style scan: local p0 against SR centre, one line per efficiency.

    With several pseudo-experiment seeds the line is the median and the band spans the seeds. ``signal``: the
    injected model's rows (its name; "" for injection 0 and a one-model scan).
    """
    chosen = table["signal"] == signal if "signal" in table else True
    sub = table[(table["method"] == method) & (table["injection"] == injection) & chosen].copy()
    sub["centre"], xlabel, in_mjj = region_position(sub)
    fig, ax = plt.subplots(figsize=(9, 7))
    colors = plt.cm.viridis(np.linspace(0, 0.9, sub["efficiency"].nunique()))
    for color, (eff, grp) in zip(colors, sorted(sub.groupby("efficiency"), key=lambda kv: -kv[0])):
        stats = grp.groupby("centre")["p0"].agg(["median", "min", "max"]).reset_index()
        label = "no cut" if eff >= 1 else f"top {eff:g}"
        ax.plot(stats["centre"], stats["median"].clip(lower=1e-40), "o-", color=color, label=label)
        if grp["seed"].nunique() > 1:
            ax.fill_between(stats["centre"], stats["min"].clip(lower=1e-40), stats["max"].clip(lower=1e-40),
                            color=color, alpha=0.2)
    ax.set_yscale("log")
    lowest = np.nanmin(sub["p0"].clip(lower=1e-40)) if sub["p0"].notna().any() else 1e-3
    ax.set_ylim(min(lowest / 5, 1e-4), 1.5)
    for n_sigma in range(1, 8):
        p = sps.norm.sf(n_sigma)
        if p >= ax.get_ylim()[0]:
            ax.axhline(p, color="grey", ls="--", lw=0.8)
            ax.text(ax.get_xlim()[1], p, f" {n_sigma}$\\sigma$", va="center", color="grey", fontsize=12)
    if truth_mass is not None and injection > 0 and in_mjj:
        ax.axvline(truth_mass, color="red", ls=":", lw=1.2, label=f"injected signal ({truth_mass:g} TeV)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(r"local $p_0$")
    ax.set_title(f"{method}, {'signal ' + signal + ', ' if signal else ''}injection {injection}", fontsize=16,
                 loc="right")
    if "global_z" in sub and sub["global_z"].notna().any():
        per_seed = sub.groupby("seed")[["min_p0", "global_p0", "global_z"]].first()
        median = per_seed.median()
        # a smallest p0 at the toys' floor is a bound (p0_bound): shown as "<" and "≥"
        bound = len(per_seed) == 1 and "min_p0_bound" in sub and bool(sub["min_p0_bound"].iloc[0])
        lt, ge = ("<", "≥") if bound else ("=", "=")
        text = (f"smallest local $p_0$ {lt} {median['min_p0']:.2g} (Z {ge} {sps.norm.isf(median['min_p0']):.2f})\n"
                f"global Z = {median['global_z']:.2f} (look-elsewhere, toys)")
        if len(per_seed) > 1:
            text += f"; median of {len(per_seed)} seeds"
        ax.text(0.98, 0.03, text, transform=ax.transAxes, ha="right", va="bottom", fontsize=12,
                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "grey"})
    ax.legend(fontsize=12, loc="lower left")
    _save(fig, out)


def _save(fig, out) -> None:
    with atomic_path(out) as tmp:
        fig.savefig(tmp, bbox_inches="tight", dpi=90, format=os.path.splitext(str(out))[1][1:] or "png")
    plt.close(fig)


def selected_spectra(mjj: np.ndarray, scores: np.ndarray, window, results: list, bin_width: float, title: str,
                     out: str | os.PathLike) -> None:
    """Selected mjj spectrum, sideband fit and pulls per efficiency: the sculpting check.

    Points are the selected events, the line the dijet fit to the sidebands (dashed across the SR,
    where it is the prediction), and the lower panels (data - fit) / sqrt(fit) per bin.
    """
    from .stats import bin_integrals, window_edges

    low, sr, high = window_edges(window, bin_width)
    edges = np.unique(np.concatenate([low, sr, high]))
    centres = 0.5 * (edges[1:] + edges[:-1])
    in_sr = (centres >= window.sr_lo) & (centres < window.sr_hi)
    fig, axes = plt.subplots(2, len(results), figsize=(6 * len(results), 7), sharex=True,
                             gridspec_kw={"height_ratios": [3, 1]}, squeeze=False)
    for i, res in enumerate(results):
        top, bottom = axes[0, i], axes[1, i]
        counts = np.histogram(mjj[scores > res.threshold], edges)[0]
        top.errorbar(centres, counts, yerr=np.sqrt(counts), fmt="o", color="black", ms=4, label="selected")
        top.axvspan(window.sr_lo, window.sr_hi, color="gold", alpha=0.25, label="SR")
        if res.fit is not None and res.fit.ok:
            pred = bin_integrals(edges, res.fit.params)
            top.step(edges, np.append(pred, pred[-1]), where="post", color="C0", label="sideband fit")
            pull = (counts - pred) / np.sqrt(np.maximum(pred, 1e-9))
            bottom.bar(centres, pull, width=np.diff(edges), color=np.where(in_sr, "gold", "C0"), edgecolor="none")
        elif res.fit is None and res.fit_ok:  # a test without a fit (the template count): its SR prediction
            top.text(0.5, 0.5, f"{res.fit_message}: SR {res.n_obs:g} vs {res.n_bkg:.1f} +- {res.n_bkg_err:.1f}",
                     transform=top.transAxes, ha="center")
        else:
            top.text(0.5, 0.5, f"fit failed: {res.fit_message}", transform=top.transAxes, ha="center")
        base = "template" if res.fit is None and res.fit_ok else "SB"  # where the cut's efficiency is measured
        label = "no cut" if res.efficiency >= 1 else f"top {res.efficiency:g} of {base}"
        top.set_title(f"{label}: Z = {res.z:.2f}", fontsize=14)
        top.set_yscale("log" if counts.max() > 100 else "linear")
        bottom.axhline(0, color="grey", lw=0.8)
        bottom.set_ylim(-4, 4)
        bottom.set_xlabel(r"$m_{jj}$ [TeV]", fontsize=14)
    axes[0, 0].set_ylabel("events / bin", fontsize=14)
    axes[1, 0].set_ylabel("pull", fontsize=14)
    axes[0, 0].legend(fontsize=10)
    fig.suptitle(title, fontsize=16)
    _save(fig, out)


def selected_counts(results: list, title: str, out: str | os.PathLike) -> None:
    """A region without an mjj window (thresholds): per cut, the SR events kept against the predicted background
    and its uncertainty, and the local Z."""
    eff = np.array([r.efficiency for r in results])
    x = np.arange(len(results))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.errorbar(x, [r.n_bkg for r in results], yerr=[r.n_bkg_err for r in results], fmt="s", color="C0", capsize=4,
                 label="predicted background")
    top.plot(x, [r.n_obs for r in results], "o", color="black", label="SR data kept")
    top.set_yscale("log")
    top.set_ylabel("events", fontsize=14)
    top.legend(fontsize=10)
    bottom.bar(x, [r.z for r in results], color="gold")
    bottom.set_ylabel("local Z", fontsize=14)
    bottom.set_xticks(x, [f"{e:g}" for e in eff])
    bottom.set_xlabel("background efficiency of the cut", fontsize=14)
    fig.suptitle(title, fontsize=13)
    _save(fig, out)


def calibration(table: pd.DataFrame, ks: pd.DataFrame, out: str | os.PathLike) -> None:
    """Local p0 of the background-only (injection 0) scans, per method: should be uniform below 0.5."""
    null = table[table["injection"] == 0]
    methods = sorted(null["method"].unique())
    fig, axes = plt.subplots(1, max(1, len(methods)), figsize=(6 * max(1, len(methods)), 5), squeeze=False)
    for ax, method in zip(axes[0], methods):
        p0 = null[null["method"] == method]["p0"].dropna()
        ax.hist(p0[p0 < 0.5], bins=np.linspace(0, 0.5, 11), histtype="stepfilled", alpha=0.6, label="p0 < 0.5 (excess)")
        expected = len(p0) * 0.5 / 10  # half the p0 uniform on (0, 0.5), 10 bins
        ax.axhline(expected, color="red", ls="--", label="uniform (half the fits)")
        row = ks[ks["method"] == method].iloc[0]
        one_sided = row.get("ks_pvalue_excess", float("nan"))
        ax.set_title(f"{method}: {int(row['n'])} p0, KS p = {row['ks_pvalue']:.2f}"
                     + ("" if pd.isna(one_sided) else f" (excess only {one_sided:.2f})") + "\n"
                     f"{int(row['n_deficit'])} deficits (p0 = 0.5), min p0 = {row['min_p0']:.2g}", fontsize=13)
        ax.set_xlabel("local $p_0$ (injection 0)", fontsize=14)
    axes[0, 0].set_ylabel("windows x efficiencies x seeds", fontsize=13)
    axes[0, 0].legend(fontsize=11)
    _save(fig, out)


def sensitivity(table: pd.DataFrame, out: str | os.PathLike, title: str = "") -> None:
    """Local Z in the signal window against injected signal, per method (median, band over seeds).

    Dashed: the expected Z of the same selection, from the true signal it keeps (truth known). The top
    axis gives the signal-to-background ratio in the SR before any cut.
    """
    fig, ax = plt.subplots(figsize=(9, 7))
    for method, grp in table.groupby("method"):
        best = grp.groupby(["injection", "seed"])["z"].max().groupby("injection")
        stats = best.agg(["median", "min", "max"]).reset_index()
        line, = ax.plot(stats["injection"], stats["median"], "o-", label=method)
        ax.fill_between(stats["injection"], stats["min"], stats["max"], color=line.get_color(), alpha=0.2)
        if "z_expected" in grp and grp["z_expected"].notna().any():
            expected = grp.groupby(["injection", "seed"])["z_expected"].max().groupby("injection").median()
            ax.plot(expected.index, expected.to_numpy(), "--", color=line.get_color(), lw=1.2)
    ax.plot([], [], "k--", lw=1.2, label="expected from the selected true signal")
    for n_sigma in (3, 5):
        ax.axhline(n_sigma, color="grey", ls="--", lw=0.8)
    ax.set_xlabel("injected signal events")
    ax.set_ylabel("local Z, signal window, best efficiency")
    if title:
        ax.set_title(title, fontsize=14, loc="left")
    uncut = table[(table["efficiency"] >= 1) & (table["injection"] > 0)]
    if len(uncut) and "n_signal_sr" in uncut:
        # S/B in the SR is proportional to the injection: one factor from the uncut rows
        per_event = float(np.median(uncut["n_signal_sr"] / uncut["n_bkg"] / uncut["injection"]))
        if per_event > 0:
            top = ax.secondary_xaxis("top", functions=(lambda x: 100 * x * per_event, lambda y: y / (100 * per_event)))
            top.set_xlabel("S/B in the signal region [%]", fontsize=14)
    ax.legend(fontsize=12)
    _save(fig, out)


def methods_z(overview: pd.DataFrame, out: str | os.PathLike) -> list[str]:
    """The Methods page's figure (``report.methods.overview``): per method, against the injected signal, the local
    Z of its most significant window (median, band over seeds) and the scan's global Z after the look-elsewhere
    effect (median). A method not calibrated at injection 0 is drawn dashed and says so: its Z is not evidence.
    Returns the legend's labels."""
    fig, (local, glob) = plt.subplots(1, 2, figsize=(14, 6), sharey=True)
    labels = []
    for (method, signal), grp in overview.groupby(["method", "signal"], dropna=False):
        grp = grp.sort_values("injection")
        calibrated = (grp["calibration"] != "NOT CALIBRATED").all()
        label = f"{method}{f' ({signal})' if isinstance(signal, str) and signal else ''}" + \
            ("" if calibrated else ", NOT CALIBRATED")
        style = "o-" if calibrated else "o--"
        labels.append(label)
        line, = local.plot(grp["injection"], grp["local_z"], style, label=label)
        local.fill_between(grp["injection"], grp["local_z_min"], grp["local_z_max"], color=line.get_color(),
                           alpha=0.15)
        glob.plot(grp["injection"], grp["global_z"], style, color=line.get_color(), label=label)
    for ax, what in ((local, "local Z, most significant window and cut (median)"),
                     (glob, "global Z of the scan (median)")):
        for n_sigma in (3, 5):
            ax.axhline(n_sigma, color="grey", ls="--", lw=0.8)
        ax.set_xlabel("injected signal events")
        ax.set_title(what, fontsize=13, loc="left")
    local.set_ylabel("Z")
    local.legend(fontsize=10)
    _save(fig, out)
    return labels


MAX_CLOSURE_FEATURES = 8


def flow_closure(sb_data: pd.DataFrame, sb_samples: pd.DataFrame, sr_data: pd.DataFrame, sr_samples: pd.DataFrame,
                 title: str, out: str | os.PathLike, rows: tuple[str, str] = ("sideband (held out)", "signal region"),
                 features: list[str] | None = None) -> None:
    """Per-feature histograms: flow samples against held-out sideband data (top) and against SR data (bottom).

    The top row is the closure test: the flow must reproduce the sidebands it was trained on. In the
    bottom row data and samples agree without signal; a signal shows as an excess in a narrow range.
    """
    # a column the SR samples lack (a context column the flow is not conditioned on) has no SR row to draw
    features = features or [c for c in sb_samples.columns if c != "mjj" and c in sr_samples]
    if len(features) > MAX_CLOSURE_FEATURES:  # an extended set (56) would make a figure no one can read
        title = f"{title}\n(the first {MAX_CLOSURE_FEATURES} of {len(features)} features)"
        features = features[:MAX_CLOSURE_FEATURES]
    fig, axes = plt.subplots(2, len(features), figsize=(5 * len(features), 9), squeeze=False)
    for row, (data, samples, where) in enumerate([(sb_data, sb_samples, rows[0]), (sr_data, sr_samples, rows[1])]):
        for ax, feature in zip(axes[row], features):
            lo, hi = np.percentile(np.concatenate([data[feature], samples[feature]]), [0.1, 99.9])
            bins = np.linspace(lo, hi, 41)
            ax.hist(samples[feature], bins, density=True, histtype="stepfilled", alpha=0.4, color="C0",
                    label="flow samples")
            ax.hist(data[feature], bins, density=True, histtype="step", color="black", lw=1.5, label="data",
                    weights=weights_of(data))
            ax.set_xlabel(feature, fontsize=14)
            ax.set_yscale("log")
        axes[row, 0].set_ylabel(f"{where}\nnormalised", fontsize=14)
    axes[0, 0].legend(fontsize=11)
    fig.suptitle(title, fontsize=16)
    _save(fig, out)


def roc_sic(curves: dict[str, tuple], title: str, out: str | os.PathLike, floor: int = 20) -> None:
    """ROC (background rejection against signal efficiency) and SIC curves, one line per method.

    ``curves`` maps a method to (truth labels, scores[, weights]) of SR events. Points with fewer than
    ``floor`` background events passing are not drawn: there the ratios are noise.
    """
    from .stats.metrics import roc

    fig, (ax_roc, ax_sic) = plt.subplots(1, 2, figsize=(15, 6.5))
    for method, curve in sorted(curves.items()):
        fpr, tpr, passing = roc(*curve)
        ok = (passing >= floor) & (fpr > 0)
        ax_roc.plot(tpr[ok], 1 / fpr[ok], label=method)
        ax_sic.plot(tpr[ok], tpr[ok] / np.sqrt(fpr[ok]), label=method)
    grid = np.linspace(0.01, 1, 100)
    ax_roc.plot(grid, 1 / grid, "k:", lw=1, label="random")
    ax_sic.plot(grid, np.sqrt(grid), "k:", lw=1, label="random")
    ax_roc.set_yscale("log")
    ax_roc.set_xlabel("signal efficiency")
    ax_roc.set_ylabel("background rejection 1/$\\epsilon_B$")
    ax_sic.set_xlabel("signal efficiency")
    ax_sic.set_ylabel("SIC = $\\epsilon_S/\\sqrt{\\epsilon_B}$")
    ax_roc.legend(fontsize=11)
    fig.suptitle(title, fontsize=15)
    _save(fig, out)


def max_sic_vs_sb(table: pd.DataFrame, out: str | os.PathLike) -> None:
    """Max SIC (at least 20 background events passing) against S/B in the SR, per method: median and range over seeds."""
    fig, ax = plt.subplots(figsize=(9, 7))
    for method, grp in table.groupby("method"):
        stats = grp.groupby("injection").agg(sb=("s_over_b", "median"), med=("max_sic_20", "median"),
                                              lo=("max_sic_20", "min"), hi=("max_sic_20", "max")).reset_index()
        line, = ax.plot(100 * stats["sb"], stats["med"], "o-", label=method)
        ax.fill_between(100 * stats["sb"], stats["lo"], stats["hi"], color=line.get_color(), alpha=0.2)
    ax.axhline(1, color="grey", ls="--", lw=0.8)
    ax.set_xlabel("S/B in the signal region [%]")
    ax.set_ylabel("max SIC ($\\geq$ 20 background events)")
    ax.legend(fontsize=12)
    _save(fig, out)


def loss_curves(histories: dict[str, pd.DataFrame], title: str, out: str | os.PathLike,
                ylabel: str = "loss (weighted binary cross-entropy)") -> None:
    """Training (solid) and validation (dashed) loss per epoch; one colour per job."""
    fig, ax = plt.subplots(figsize=(10, 7))
    for i, (label, history) in enumerate(sorted(histories.items())):
        color = plt.cm.tab20(i % 20)
        ax.plot(history["epoch"], history["train_loss"], "-", color=color, label=label)
        ax.plot(history["epoch"], history["val_loss"], "--", color=color)
    if not any(len(h) for h in histories.values()):
        ax.text(0.5, 0.5, "nothing trained: no loss history", transform=ax.transAxes, ha="center", fontsize=14)
    ax.plot([], [], "k-", label="training")
    ax.plot([], [], "k--", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, ncol=2)
    ax.set_title(title, fontsize=14, loc="right")
    _save(fig, out)


def threshold_map(events: pd.DataFrame, regions: list, out: str | os.PathLike) -> None:
    """The regions of a non-resonant search over the events' context columns: each SR's corner (its thresholds)
    over the events' 2-D histogram (one context column: a histogram with each threshold)."""
    context = list(regions[0].context)
    fig, ax = plt.subplots(figsize=(9, 7))
    x = events[context[0]].to_numpy(float)
    if len(context) == 1:
        ax.hist(x, bins=100, histtype="stepfilled", color="grey", alpha=0.6, label="events")
        ax.set_yscale("log")
        for w in regions:
            ax.axvline(w.thresholds[0], color="gold", lw=2, ls="--" if w.validates else "-")
            ax.text(w.thresholds[0], ax.get_ylim()[1], f" {w.name}", rotation=90, va="top", fontsize=10)
        ax.set_ylabel("events")
    else:
        y = events[context[1]].to_numpy(float)
        hi = np.quantile(x, 0.9999), np.quantile(y, 0.9999)
        counts, xe, ye = np.histogram2d(x, y, bins=100, range=[[x.min(), hi[0]], [y.min(), hi[1]]])
        mesh = ax.pcolormesh(xe, ye, np.ma.masked_equal(counts.T, 0), norm=matplotlib.colors.LogNorm(),
                             cmap="Greys")
        fig.colorbar(mesh, ax=ax, label="events")
        for w in regions:  # a validation region dashed, in the colour of the SR it validates
            tx, ty = w.thresholds
            style = dict(color=f"C{w.index % 10}", lw=2, ls="--" if w.validates else "-")
            ax.plot([tx, hi[0]], [ty, ty], **style)
            ax.plot([tx, tx], [ty, hi[1]], **style, label=f"{w.name}: {w.label}")
        ax.set_ylabel(f"{context[1]} [TeV]")
        ax.legend(fontsize=9, loc="upper right")
    ax.set_xlabel(f"{context[0]} [TeV]")
    ax.set_title("signal regions (the high corner of each) and control regions (the rest)"
                 + ("; validation regions dashed" if any(w.validates for w in regions) else ""), fontsize=12)
    _save(fig, out)


def window_map(mjj: np.ndarray, windows: list, out: str | os.PathLike, truth_mass: float | None = None) -> None:
    """The sliding windows over the mjj spectrum: sidebands (blue) and signal regions (gold), one row each."""
    fig, (ax, ax_w) = plt.subplots(2, 1, figsize=(10, 4 + 0.35 * len(windows)), sharex=True,
                                   gridspec_kw={"height_ratios": [3, max(1, 0.35 * len(windows))]})
    lo, hi = min(w.sb_lo for w in windows) - 0.2, max(w.sb_hi for w in windows) + 0.2
    ax.hist(mjj, bins=np.arange(lo, hi, 0.02), histtype="stepfilled", color="grey", alpha=0.6, label="events")
    ax.set_yscale("log")
    ax.set_ylabel("events / 20 GeV")
    for i, w in enumerate(windows):
        ax_w.barh(i, w.sr_lo - w.sb_lo, left=w.sb_lo, color="C0", alpha=0.5)
        ax_w.barh(i, w.sr_hi - w.sr_lo, left=w.sr_lo, color="gold")
        ax_w.barh(i, w.sb_hi - w.sr_hi, left=w.sr_hi, color="C0", alpha=0.5)
        ax_w.text(w.sb_hi + 0.02, i, w.name, va="center", fontsize=10)
    ax_w.set_yticks([])
    ax_w.invert_yaxis()
    ax_w.set_xlabel(r"$m_{jj}$ [TeV]")
    if truth_mass is not None:
        for a in (ax, ax_w):
            a.axvline(truth_mass, color="red", ls=":", lw=1.2)
    ax.plot([], [], color="gold", lw=8, label="signal region")
    ax.plot([], [], color="C0", alpha=0.5, lw=8, label="sidebands")
    ax.legend(fontsize=11)
    _save(fig, out)


def limit_plot(table: pd.DataFrame, method: str, efficiency: float, out: str | os.PathLike, cl: float = 0.95,
               truth_mass: float | None = None, signal: str = "") -> None:
    """The upper limit on the injected signal of model ``signal`` against the SR centre at the declared cut:
    observed, expected and its +-1 sigma and +-2 sigma bands. With several background-only seeds, each line is
    their median."""
    chosen = table["signal"] == signal if "signal" in table else True
    sub = table[(table["method"] == method) & np.isclose(table["efficiency"], efficiency) & chosen].copy()
    sub["centre"], xlabel, in_mjj = region_position(sub) if len(sub) else (sub.get("sr_lo"), "", True)
    columns = ["limit_obs", "limit_exp_m2", "limit_exp_m1", "limit_exp_median", "limit_exp_p1", "limit_exp_p2"]
    present = [c for c in columns if c in sub]
    by_window = sub.groupby("centre")[present].median().reset_index() if present else pd.DataFrame()
    seeds = sub["seed"].nunique()
    fig, ax = plt.subplots(figsize=(9, 7))
    if len(by_window) and "limit_obs" in by_window:
        x = by_window["centre"]
        ax.fill_between(x, by_window["limit_exp_m2"], by_window["limit_exp_p2"], color="#ffdf00",
                        label=r"expected $\pm 2\sigma$", step=None)
        ax.fill_between(x, by_window["limit_exp_m1"], by_window["limit_exp_p1"], color="#00c000",
                        label=r"expected $\pm 1\sigma$")
        ax.plot(x, by_window["limit_exp_median"], "k--", label="expected")
        ax.plot(x, by_window["limit_obs"], "ko-", label="observed" + (f" (median of {seeds} seeds)" if seeds > 1 else ""))
        finite = by_window[present].replace([np.inf, -np.inf], np.nan).stack()
        if finite.gt(0).any():
            ax.set_yscale("log")
    else:
        ax.text(0.5, 0.5, "no limits", transform=ax.transAxes, ha="center")
    if truth_mass is not None and in_mjj:
        ax.axvline(truth_mass, color="grey", ls=":", label=f"injected mass {truth_mass:g} TeV")
    cut = "no cut" if efficiency >= 1 else f"top {efficiency:g}"
    ax.set_xlabel(xlabel if not in_mjj else r"SR centre $m_{jj}$ [TeV]")
    ax.set_ylabel(f"{100 * cl:g} % CL upper limit on injected signal events")
    ax.set_title(f"{method}, {'signal ' + signal + ', ' if signal else ''}{cut}", fontsize=16)
    ax.legend(fontsize=13)
    _save(fig, out)


def feature_histograms(samples: list[tuple[pd.DataFrame, str]], features: list[str], title: str, out,
                       xlabel: str = "{}") -> None:
    """Each feature's normalised histogram in every sample (events, label), binned on the first sample's central
    99 %, each event weighted by its ``weight`` column where it has one: a template model's diagnostics figure (FETA's
    morph, CURTAINs' transport) and the report's template pages."""
    from .data import weights_of

    fig, axes = plt.subplots(1, len(features), figsize=(3.6 * len(features), 4.0 + 0.4 * title.count("\n")))
    axes = np.atleast_1d(axes)
    for ax, feature in zip(axes, features):
        bins = np.linspace(*np.quantile(samples[0][0][feature], [0.005, 0.995]), 40)
        # a sample without the column (CATHODE's template lacks a context column its flow is not conditioned on,
        # windows.condition) is left out of that panel
        for events, label in [(e, lab) for e, lab in samples if feature in e]:
            ax.hist(events[feature], bins, density=True, histtype="step", label=label, weights=weights_of(events))
        ax.set_xlabel(xlabel.format(feature))
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    _save(fig, out)
