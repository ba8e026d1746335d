"""Sideband closure of CATHODE's flow on one window, per feature set and preprocessing (issue 21).

    python benchmarks/flow_closure.py --features extended3 --preprocessing log_logit --seeds 1 2 3 \\
        --json benchmarks/results/flow_closure.jsonl

Makes the scan's events as the workflow does (``slidescan.data.sources.samples`` with the config's ``data``
section, the injection of ``make_injection``, the window's regions of ``split_window``), takes the window's
sideband events (at most the flow's ``max_train_events``, a random subset), and trains the sideband flow with
the config's ``flow`` section (default: config/features_extended3.yaml, the embedded default's CPU flow) and
the product's ``train_flow``, once per training seed. Reports per seed: the best validation NLL in the flow's
space (what training selects on), the NLL of the held-out events in the original feature space (comparable
across preprocessings: the Jacobian is included), whether training diverged (a non-finite validation NLL,
or a last epoch more than ``--diverged`` nats per event above the best), and the product's ``closure_auc``
(a boosted-tree classifier of the held-out sideband events against flow samples at their mjj; 0.5 is
perfect).

``--preprocessing``: the flows' setting (``logit``, ``log_logit``) or ``quantile``, a variant measured here
only: each feature through a monotone piecewise-linear interpolation of its empirical CDF (256 knots) and the
normal quantile (exact log-Jacobian: the log of the interpolation's slope minus the log normal density).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def sideband_events(configfile: str, features: str | None, injection: int | None, experiment_seed: int,
                    window: str):
    """The window's sideband events of one pseudo-experiment (as the workflow makes them), the settings."""
    from slidescan import data as data_mod
    from slidescan.config import load_settings
    from slidescan.data.sources import samples
    from slidescan.features import resolve
    from slidescan.seeds import rng
    from slidescan.windows import REGION_SR

    settings = load_settings(REPO, configfile)
    columns = resolve(features) if features else settings.features
    d = settings.data
    background, pool, *_ = samples(d, columns, log=lambda s: None)
    injection = settings.injections[0] if injection is None else injection
    df = data_mod.inject(background, pool, injection, rng(d.seed, "inject", injection, experiment_seed))
    region = settings.window(window).region(df["mjj"].to_numpy())
    sb = df[(region != REGION_SR) & (region != 2)].reset_index(drop=True)
    return settings, columns, injection, sb


class QuantilePreprocessor:
    """Per feature: u = piecewise-linear empirical CDF (knots at quantiles, widened by a margin at both ends),
    z = Phi^-1(u); exact density transform (the interpolation's slope over the normal density). Bench only."""

    KNOTS = 256

    def __init__(self, knots_x, knots_u, m_mean, m_std):
        self.knots_x, self.knots_u, self.m_mean, self.m_std = knots_x, knots_u, m_mean, m_std
        self.lo = np.array([k[0] for k in knots_x])  # TrainedFlow.sample reads the number of features from lo

    @classmethod
    def fit(cls, x: np.ndarray, mjj: np.ndarray, margin: float = 0.05, kind: str = "quantile"):
        knots_x, knots_u = [], []
        probs = np.linspace(0, 1, cls.KNOTS)
        for j in range(x.shape[1]):
            q = np.quantile(x[:, j], probs)
            span = q[-1] - q[0] or 1.0
            q = np.concatenate([[q[0] - margin * span], q, [q[-1] + margin * span]])
            q = np.maximum.accumulate(q)
            keep = np.concatenate([[True], np.diff(q) > 1e-12 * span])  # strictly increasing knots
            q = q[keep]
            u = np.linspace(0, 1, len(q))
            # u at the outer knots: 1e-6 inside (0, 1), so that z stays finite
            u = 1e-6 + (1 - 2e-6) * u
            knots_x.append(q)
            knots_u.append(u)
        return cls(knots_x, knots_u, float(mjj.mean()), float(mjj.std() or 1.0))

    def _u(self, x):
        return np.stack([np.interp(x[:, j], self.knots_x[j], self.knots_u[j]) for j in range(x.shape[1])], 1)

    def forward(self, x):
        from scipy.special import ndtri

        return ndtri(self._u(x))

    def log_jacobian(self, x):
        from scipy.stats import norm

        out = np.zeros(len(x))
        for j in range(x.shape[1]):
            kx, ku = self.knots_x[j], self.knots_u[j]
            i = np.clip(np.searchsorted(kx, x[:, j], side="right") - 1, 0, len(kx) - 2)
            slope = (ku[i + 1] - ku[i]) / (kx[i + 1] - kx[i])
            u = np.interp(x[:, j], kx, ku)
            out += np.log(slope) - norm.logpdf(norm.ppf(u))
        return out

    def inverse(self, z):
        from scipy.special import ndtr

        u = ndtr(z)
        return np.stack([np.interp(u[:, j], self.knots_u[j], self.knots_x[j]) for j in range(z.shape[1])], 1)

    def condition(self, mjj):
        return ((np.asarray(mjj, float) - self.m_mean) / self.m_std)[:, None]


def run_one(sb, columns, flow_settings, seed: int, max_events: int, diverged: float, quiet: bool) -> dict:
    import torch

    from slidescan.density import flows
    from slidescan.density.sideband_flow import closure_auc
    from slidescan.seeds import rng

    torch.set_num_threads(1)
    events = sb
    if max_events and len(sb) > max_events:
        events = sb.iloc[np.sort(rng("flow_closure", "subset").choice(len(sb), max_events, replace=False))]
    x, mjj = events[list(columns)].to_numpy(float), events["mjj"].to_numpy(float)
    t0 = time.time()
    log = (lambda s: None) if quiet else (lambda s: print(f"  seed {seed}: {s}", flush=True))
    flow = flows.train_flow(x, mjj, flow_settings, seed, log=log)
    train_s = time.time() - t0
    val = flow.history["val_loss"]
    best = float(min(val))
    div = (not all(np.isfinite(val))) or val[-1] > best + diverged
    held = flow.validation_index
    xh, mh = x[held], mjj[held]
    logp = flow.log_prob(xh, mh)
    nll_x = float(-np.mean(logp)) if np.all(np.isfinite(logp)) else float("inf")
    t1 = time.time()
    samples = flow.sample(mh, seed + 7919)
    finite = bool(np.all(np.isfinite(samples)))
    auc = closure_auc(np.column_stack([mh, xh]), np.column_stack([mh, np.nan_to_num(samples)]), seed + 104729)
    return {"seed": seed, "best_val_nll": best, "val_nll_by_epoch": [float(v) for v in val],
            "best_epochs": flow.best_epochs, "heldout_nll_x": nll_x, "diverged": bool(div),
            "closure_auc": auc, "samples_finite": finite, "n_train_events": len(x),
            "train_s": round(train_s, 1), "closure_s": round(time.time() - t1, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default="config/features_extended3.yaml")
    parser.add_argument("--features", help="a feature set (baseline, extended1, extended3, ...); default: the config's")
    parser.add_argument("--preprocessing", default="logit", choices=["logit", "log_logit", "quantile"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="the flow's training seeds")
    parser.add_argument("--injection", type=int, help="default: the config's first")
    parser.add_argument("--experiment-seed", type=int, default=1, help="the pseudo-experiment's seed")
    parser.add_argument("--window", default="w00")
    parser.add_argument("--learning-rate", type=float, help="override the flow's learning_rate")
    parser.add_argument("--epochs", type=int, help="override the flow's epochs")
    parser.add_argument("--lr-schedule", choices=["constant", "cosine"], help="override the flow's lr_schedule")
    parser.add_argument("--log-margin", type=float,
                        help="log_logit: the margin of the log features (default flows.LOG_MARGIN)")
    parser.add_argument("--max-events", type=int, help="override the flow's max_train_events")
    parser.add_argument("--diverged", type=float, default=1.0,
                        help="diverged: last epoch's validation NLL this many nats per event above the best")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    parser.add_argument("--json", help="append one line per seed to this file")
    args = parser.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.path.insert(0, str(REPO / "src"))
    from slidescan.density import flows
    from slidescan.density.flow_settings import FlowSettings

    t0 = time.time()
    settings, columns, injection, sb = sideband_events(args.configfile, args.features, args.injection,
                                                       args.experiment_seed, args.window)
    flow_settings = FlowSettings.from_config(settings.config["flow"]).replace(device="cpu", threads=1)
    changes = {k: v for k, v in (("learning_rate", args.learning_rate), ("epochs", args.epochs),
                                 ("lr_schedule", args.lr_schedule)) if v is not None}
    if args.log_margin is not None:
        flows.LOG_MARGIN = args.log_margin
    if args.preprocessing != "quantile":
        changes["preprocessing"] = args.preprocessing
    else:  # a variant of this benchmark only: train_flow fits flows.Preprocessor
        flows.Preprocessor = QuantilePreprocessor
    flow_settings = flow_settings.replace(**changes)
    max_events = flow_settings.max_train_events if args.max_events is None else args.max_events
    print(f"{len(sb)} sideband events ({args.window}, injection {injection}, experiment seed "
          f"{args.experiment_seed}), {len(columns)} features; data in {time.time() - t0:.1f} s; flow "
          f"{flow_settings.transforms} x {flow_settings.hidden}, {flow_settings.epochs} epochs, lr "
          f"{flow_settings.learning_rate} ({flow_settings.lr_schedule}), preprocessing {args.preprocessing}",
          flush=True)
    for seed in args.seeds:
        row = run_one(sb, columns, flow_settings, seed, max_events, args.diverged, args.quiet)
        row = {"features": args.features or settings.config["features"], "n_features": len(columns),
               "preprocessing": args.preprocessing, "configfile": args.configfile, "window": args.window,
               "injection": injection, "experiment_seed": args.experiment_seed,
               "learning_rate": flow_settings.learning_rate, "epochs": flow_settings.epochs,
               "lr_schedule": flow_settings.lr_schedule,
               "log_margin": flows.LOG_MARGIN if args.preprocessing == "log_logit" else None,
               "transforms": flow_settings.transforms, "hidden": list(flow_settings.hidden),
               "batch_size": flow_settings.batch_size, "machine": platform.processor() or platform.machine(),
               "date": time.strftime("%Y-%m-%d"), **row}
        print(f"seed {seed}: best val nll (flow space) {row['best_val_nll']:.4f}, held-out nll (x space) "
              f"{row['heldout_nll_x']:.4f}, diverged {row['diverged']}, closure AUC {row['closure_auc']:.4f} "
              f"(train {row['train_s']:.0f} s)", flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
