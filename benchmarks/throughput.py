"""Training throughput in network-epochs per second, printed side by side.

    python benchmarks/throughput.py [--device cpu|cuda] [--events 100000] [--seconds 10]

(a) the usual way: one Lightning Trainer and one DataLoader per network (4-64-64-64-1, batch 128);
(b) slidescan's engine step: all members as one batched model, data resident on the device, with
    1, 10, 50, 200 and 1000 members at batch 128 and 1024, eagerly and,
    on CUDA also with the step captured as a CUDA graph, in FP32 and with bf16 autocast;
(c) the engine driven by a Lightning Trainer (one LightningModule holding all members), to measure
    what Lightning's loop costs on top of the lean loop;
(d) with ``--full-epochs 10,1000``: whole epochs of ``train_ensemble`` (shuffling, validation and
    best-epoch bookkeeping included), the figure a training job sees.

Each case runs for about ``--seconds`` of steps; network-epochs/s = members x samples/s / events.
"""

from __future__ import annotations

import argparse
import functools
import platform
import time
import warnings

import numpy as np
import torch

from slidescan.cudagraph import adam, use_graphs
from slidescan.backends.nn.ensemble import MLPEnsemble
from slidescan.backends.nn.engine import NNSettings, make_train_step, train_ensemble

HIDDEN = [64, 64, 64]
print = functools.partial(print, flush=True)  # noqa: A001 (progress while it runs)


def data(n: int, device):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=gen)
    y = (torch.rand(n, generator=gen) < 0.5).float()
    x[y == 1, 0] += 1.0
    return x.to(device), y.to(device)


def engine(x, y, members: int, batch: int, seconds: float, graphs: bool = False, precision: str = "32") -> float:
    """slidescan's own training step (slidescan.backends.nn.engine.make_train_step) on random per-member batches."""
    device = x.device
    n = len(x)
    model = MLPEnsemble(4, HIDDEN, list(range(members))).to(device)
    graphed = use_graphs(graphs, device)
    optimizer = adam(model.parameters(), 1e-3, device, graphed)
    step, _ = make_train_step(model, optimizer, x, y, torch.ones_like(y), precision, graphed)
    steps = 0
    t0 = None
    while True:
        step(torch.randint(0, n, (members, batch), device=device))
        steps += 1
        if t0 is None and steps == 5:  # warm-up (and graph capture) done
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0, steps = time.perf_counter(), 0
        if t0 is not None and steps % 20 == 0:
            if device.type == "cuda":
                torch.cuda.synchronize()
            if time.perf_counter() - t0 > seconds:
                break
    elapsed = time.perf_counter() - t0
    return members * steps * batch / n / elapsed


def full_epochs(x, y, members: int, batch: int, graphs: bool, precision: str, epochs: int = 3) -> float:
    """Whole epochs of slidescan.backends.nn.engine.train_ensemble (shuffling, validation, best-epoch bookkeeping)."""
    settings = NNSettings.from_config(dict(members=members, epochs=epochs, batch_size=batch, device=str(x.device),
                          cuda_graphs=graphs, precision=precision))
    seconds = []
    train_ensemble(x.cpu().numpy(), y.cpu().numpy(), None, settings, list(range(members)),
                   log=lambda line: seconds.append(float(line.rsplit("(", 1)[1].split(" s)")[0])))
    # events trained per epoch exclude the validation split; the first epoch holds the graph capture
    return members * (1 - settings.validation_fraction) / float(np.median(seconds[1:]))


def lightning_per_network(x, y, batch: int, seconds: float, device: str) -> float:
    """One Trainer + DataLoader for one network; epochs/s measured over whole epochs."""
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    class Net(L.LightningModule):
        def __init__(self):
            super().__init__()
            layers, size = [], 4
            for h in HIDDEN:
                layers += [torch.nn.Linear(size, h), torch.nn.ReLU()]
                size = h
            self.net = torch.nn.Sequential(*layers, torch.nn.Linear(size, 1))

        def training_step(self, b, _):
            xb, yb = b
            return torch.nn.functional.binary_cross_entropy_with_logits(self.net(xb).squeeze(-1), yb)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    loader = DataLoader(TensorDataset(x.cpu(), y.cpu()), batch_size=batch, shuffle=True)
    # limit the batches so one "epoch" is short; scale back to full epochs
    n_batches = max(10, int(seconds * 100))
    trainer = L.Trainer(max_epochs=1, limit_train_batches=n_batches, accelerator=device, devices=1,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    t0 = time.perf_counter()
    trainer.fit(Net(), loader)
    elapsed = time.perf_counter() - t0
    return n_batches * batch / len(x) / elapsed


def lightning_engine(x, y, members: int, batch: int, seconds: float, device: str) -> float:
    """The batched engine inside a LightningModule: what Lightning's loop costs per step."""
    import lightning as L

    n = len(x)

    class Batches(torch.utils.data.IterableDataset):
        def __iter__(self):
            while True:
                yield torch.randint(0, n, (members, batch))

    class Ensemble(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = MLPEnsemble(4, HIDDEN, list(range(members)))

        def training_step(self, idx, _):
            idx = idx[0].to(x.device)
            return torch.nn.functional.binary_cross_entropy_with_logits(self.model(x[idx]), y[idx]) * members

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    n_steps = max(20, int(seconds * 200))
    loader = torch.utils.data.DataLoader(Batches(), batch_size=1)
    trainer = L.Trainer(max_steps=n_steps, accelerator=device, devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    t0 = time.perf_counter()
    trainer.fit(Ensemble(), loader)
    return members * n_steps * batch / n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--members", default="1,10,50,200,1000")
    parser.add_argument("--full-epochs", default="", help="member counts to time as whole train_ensemble epochs")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 = one core per job)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import logging
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    x, y = data(args.events, device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"device {device} ({name}), torch {torch.__version__}, {args.threads} CPU thread(s), "
          f"{args.events} training events, MLP 4-{'-'.join(map(str, HIDDEN))}-1")
    base = lightning_per_network(x, y, 128, args.seconds, device.type)
    print(f"{'(a) Lightning, 1 network per Trainer':45s} batch  128: {base:10.2f} network-epochs/s")
    modes = [("eager", False, "32")]
    if device.type == "cuda":
        modes += [("CUDA graph", True, "32"), ("CUDA graph, bf16", True, "bf16-mixed")]
    for label, graphs, precision in modes:
        for batch in (128, 1024):
            for members in [int(m) for m in args.members.split(",")]:
                rate = engine(x, y, members, batch, args.seconds, graphs, precision)
                print(f"{f'(b) engine, {label}, {members} members':45s} batch {batch:4d}: {rate:10.2f} "
                      f"network-epochs/s  ({rate / base:7.1f} x Lightning per network)")
    for members in [int(m) for m in args.full_epochs.split(",") if m]:
        for label, graphs, precision in modes[-2:]:
            rate = full_epochs(x, y, members, 128, graphs, precision)
            print(f"{f'(d) train_ensemble epochs, {label}, {members} members':45s} batch  128: {rate:10.2f} "
                  f"network-epochs/s  ({rate / base:7.1f} x Lightning per network)")
    for members in (10, 200):
        lean = engine(x, y, members, 128, args.seconds)
        lit = lightning_engine(x, y, members, 128, args.seconds, device.type)
        print(f"{'(c) engine in a Lightning Trainer, ' + str(members) + ' members':45s} batch  128: {lit:10.2f} "
              f"network-epochs/s  (lean eager loop {lean:.2f}; Lightning costs {100 * (1 - lit / lean):.0f} %)")


if __name__ == "__main__":
    main()
