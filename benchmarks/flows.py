"""CATHODE flow training: time and quality of the published setting against faster ones.

    python benchmarks/flows.py --settings published fast --device cpu --json out.jsonl

Data: the sidebands (2.7-3.3 and 3.7-4.3 TeV) of the synthetic LHCO-like background of the
embedded default (``--n-background`` events over 2.5-6 TeV; 200,000 give about 100,000 sideband
events). Every setting trains on the same events with the same train/validation split and the same
preprocessing, so best validation negative log-likelihoods are directly comparable.
Prints seconds per epoch, seconds per full training and the best validation NLL (nats per event).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from slidescan.data import FEATURES, SyntheticModel, generate_background
from slidescan.density.flows import FlowSettings, train_flow
from slidescan.seeds import rng
from slidescan.windows import REGION_SR, Window

SETTINGS = {
    # arXiv:2109.00546: 15 MADE blocks of 128, batch 256, Adam 1e-4, 100 epochs, 10 best epochs
    "published": {"transforms": 15, "hidden": [128], "epochs": 100, "batch_size": 256, "learning_rate": 1e-4,
                  "n_best": 10},
    # same model; 8x the batch with a cosine-decayed, larger learning rate, a third of the epochs
    "fast": {"transforms": 15, "hidden": [128], "epochs": 40, "batch_size": 2048, "learning_rate": 2e-3,
             "lr_schedule": "cosine", "n_best": 10},
    # the embedded default's flow (config/config.yaml), trained on all sideband events
    "default": {"transforms": 6, "hidden": [64, 64], "epochs": 20, "batch_size": 1024, "learning_rate": 1e-3,
                "n_best": 5},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=["published", "fast"], choices=sorted(SETTINGS))
    parser.add_argument("--override", default="{}", help="JSON merged into every setting, e.g. '{\"epochs\": 5}'")
    parser.add_argument("--n-background", type=int, default=200_000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="append results to this JSON-lines file")
    args = parser.parse_args()

    bkg = generate_background(args.n_background, SyntheticModel.from_config({}), rng(1, "background"))
    window = Window(1, 2.7, 3.3, 3.7, 4.3)
    region = window.region(bkg["mjj"].to_numpy())
    sb = bkg[(region != REGION_SR) & (region != 2)]
    x, mjj = sb[FEATURES].to_numpy(), sb["mjj"].to_numpy()
    print(f"{len(sb)} sideband events; device {args.device}, {args.threads} thread(s), {platform.processor()}")
    for name in args.settings:
        config = {**SETTINGS[name], **json.loads(args.override), "device": args.device, "threads": args.threads}
        settings = FlowSettings.from_config(config)
        epoch_seconds = []
        t0 = time.time()

        def log(line: str) -> None:
            print(f"[{name}] {line}", flush=True)  # progress of a long training
            if line.startswith("flow epoch"):
                epoch_seconds.append(float(line.rsplit("(", 1)[1].split(" s)")[0]))

        flow = train_flow(x, mjj, settings, seed=args.seed, log=log)
        total = time.time() - t0
        row = {"setting": name, **config, "n_sideband": len(sb), "seconds_total": round(total, 1),
               "seconds_per_epoch": round(float(np.median(epoch_seconds)), 3),
               "best_val_nll": round(flow.best_val_loss, 5),
               "best_epoch": int(np.argmin(flow.history["val_loss"]) + 1)}
        print(json.dumps(row), flush=True)
        if args.json:
            with open(args.json, "a") as handle:
                handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
