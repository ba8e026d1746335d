"""Flows one at a time against one batched model (``density.batched``): seconds per flow-epoch, and equality.

    python benchmarks/batched_flows.py --members 1 4 8 --setting default --device cpu --threads 2 --json out.jsonl

Each member is the sideband flow of its own pseudo-experiment (its own background sample and seed) in the
window 3.3-3.7 TeV of the synthetic background: ``--events`` sideband events each (the embedded default's
flow trains on 60,000, the published one on all of about 520,000 at LHCO size). For every N in
``--members``: N flows trained one after another with ``flows.train_flow`` and the same N as one batched
model, ``--epochs`` epochs each; printed are the seconds per flow-epoch both ways, the speed-up, and the
largest difference of the members' validation NLL from the flows trained alone. ``--batched-only`` skips the
one-at-a-time runs (for large N on a GPU). ``--datasets K`` generates K pseudo-experiments and gives member i
the (i mod K)-th, with its own seed (generating 520,000 sideband events takes seconds of CPU per member, and a
step's time does not depend on which events it holds).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from flows import SETTINGS  # noqa: E402  (benchmarks/flows.py: the published, fast and default settings)

from slidescan.data import FEATURES, SyntheticModel, generate_background
from slidescan.density.batched import FlowTask, train_flows
from slidescan.density.flows import FlowSettings, train_flow
from slidescan.seeds import derive_seed, rng
from slidescan.windows import REGION_SR, Window


def sidebands(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    window = Window(1, 2.7, 3.3, 3.7, 4.3)
    bkg = generate_background(int(n * 2.2), SyntheticModel.from_config({}), rng(seed, "batched-flows"))
    region = window.region(bkg["mjj"].to_numpy())
    sb = bkg[(region != REGION_SR) & (region != 2)].iloc[:n]
    return sb[FEATURES].to_numpy(), sb["mjj"].to_numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--setting", default="default", choices=sorted(SETTINGS))
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batched-only", action="store_true")
    parser.add_argument("--datasets", type=int, default=0, help="distinct pseudo-experiments (0: one per flow)")
    parser.add_argument("--json", help="append results to this JSON-lines file")
    args = parser.parse_args()
    settings = FlowSettings.from_config({**SETTINGS[args.setting], "epochs": args.epochs, "device": args.device,
                                         "threads": args.threads})
    distinct = [sidebands(args.events, seed) for seed in range(1, (args.datasets or max(args.members)) + 1)]
    data = [distinct[i % len(distinct)] for i in range(max(args.members))]
    print(f"{args.events} sideband events per flow, setting {args.setting}, {args.epochs} epochs, device "
          f"{args.device}, {args.threads} thread(s), {platform.processor() or platform.machine()}", flush=True)
    for n in args.members:
        tasks = [FlowTask(x, m, derive_seed(1, "batched", i), log=lambda s: None) for i, (x, m) in enumerate(data[:n])]
        t0 = time.time()
        batched = train_flows(tasks, settings)
        batched_seconds = time.time() - t0
        row = {"members": n, "setting": args.setting, "events": args.events, "datasets": len(distinct),
               "epochs": args.epochs,
               "device": args.device, "threads": args.threads, "host": platform.node(),
               "date": time.strftime("%Y-%m-%d"),
               "batched_seconds_per_flow_epoch": round(batched_seconds / (n * args.epochs), 3)}
        if not args.batched_only:
            t0 = time.time()
            alone = [train_flow(t.x, t.mjj, settings, t.seed, log=lambda s: None) for t in tasks]
            alone_seconds = time.time() - t0
            row["alone_seconds_per_flow_epoch"] = round(alone_seconds / (n * args.epochs), 3)
            row["speedup"] = round(alone_seconds / batched_seconds, 3)
            row["max_val_nll_difference"] = float(max(
                np.max(np.abs(np.array(a.history["val_loss"]) - np.array(b.history["val_loss"])))
                for a, b in zip(alone, batched)))
        print(json.dumps(row), flush=True)
        if args.json:
            with open(args.json, "a") as handle:
                handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
