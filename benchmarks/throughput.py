"""Training throughput in network-epochs per second, printed side by side.

    python benchmarks/throughput.py [--device cpu|cuda] [--events 100000] [--seconds 10]

(a) the usual way: one Lightning Trainer and one DataLoader per network (4-64-64-64-1, batch 128);
(b) slidescan's engine: all members as one batched model, data resident on the device, with
    1, 10, 50, 200 and 1000 members at batch 128 and 1024;
(c) the engine driven by a Lightning Trainer (one LightningModule holding all members), to measure
    what Lightning's loop costs on top of the lean loop.

Each case runs for about ``--seconds`` of steps; network-epochs/s = members x samples/s / events.
"""

from __future__ import annotations

import argparse
import functools
import platform
import time
import warnings

import torch

from slidescan.ensemble import MLPEnsemble

HIDDEN = [64, 64, 64]
print = functools.partial(print, flush=True)  # noqa: A001 (progress while it runs)


def data(n: int, device):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=gen)
    y = (torch.rand(n, generator=gen) < 0.5).float()
    x[y == 1, 0] += 1.0
    return x.to(device), y.to(device)


def engine(x, y, members: int, batch: int, seconds: float) -> float:
    """Lean batched loop as in slidescan.train: gather per-member batches, one Adam step for all."""
    device = x.device
    n = len(x)
    model = MLPEnsemble(4, HIDDEN, list(range(members))).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    steps = 0
    t0 = None
    while True:
        idx = torch.randint(0, n, (members, batch), device=device)
        loss = loss_fn(model(x[idx]), y[idx]) * members
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
        if t0 is None and steps == 3:  # warm-up done
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0, steps = time.perf_counter(), 0
        if t0 is not None and steps % 10 == 0:
            if device.type == "cuda":
                torch.cuda.synchronize()
            if time.perf_counter() - t0 > seconds:
                break
    elapsed = time.perf_counter() - t0
    return members * steps * batch / n / elapsed


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
    for batch in (128, 1024):
        for members in [int(m) for m in args.members.split(",")]:
            rate = engine(x, y, members, batch, args.seconds)
            print(f"{'(b) engine, ' + str(members) + ' members':45s} batch {batch:4d}: {rate:10.2f} network-epochs/s"
                  f"  ({rate / base:7.1f} x Lightning per network)")
    for members in (10, 200):
        lean = engine(x, y, members, 128, args.seconds)
        lit = lightning_engine(x, y, members, 128, args.seconds, device.type)
        print(f"{'(c) engine in a Lightning Trainer, ' + str(members) + ' members':45s} batch  128: {lit:10.2f} "
              f"network-epochs/s  (lean loop {lean:.2f}; Lightning costs {100 * (1 - lit / lean):.0f} %)")


if __name__ == "__main__":
    main()
