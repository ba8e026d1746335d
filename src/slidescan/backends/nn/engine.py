"""Training loop of the vectorised MLP ensemble, with per-epoch checkpoints and resume.

Data stay on the device as whole tensors (no per-sample DataLoader). Every member draws its own
train/validation split and its own shuffled batches from generators seeded by its seed and the
epoch, so a member's result does not depend on which other members share the job, and a job
resumed from a checkpoint continues exactly where it stopped. Several training sets (the folds of
a job) can share one batched model (``train_groups``): a GPU is only busy with hundreds of members.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch

from ... import checkpoint as ckpt
from ... import joblog
from ...cudagraph import GraphedStep, adam, keep_rate_on_device, use_graphs
from ...devices import autocast, resolve_device
from ...io import content_hash
from ...settings import EXECUTION_ONLY
from ..base import balanced_weights
from . import NNSettings, n_train_events
from .ensemble import MLPEnsemble, apply_mlp, apply_vae, member_generator, member_permutations, vae_layers


# member-events per validation chunk: 4M rows of 64 floats are 1 GiB per layer
VALIDATION_ROWS = 4_194_304


@dataclass(frozen=True)
class Loss:
    """What the ensemble learns: its layers, its forward pass, its per-event loss and the score it gives an event.

    Why one engine for classifiers and autoencoders: an autoencoder ensemble has the same shape of work (many small
    MLPs, one batch per member), so it gets the same batching over members, folds and seeds, checkpoints, resume
    and CUDA graphs by changing only these things.
    """

    name: str
    labelled: bool  # learns labels (both classes, balanced weights); else only reproduces its inputs
    layers: Callable[[int, list[int]], list[tuple[int, int]]]  # (fan_in, fan_out) per layer for n_in inputs, hidden
    # per-event loss, (M, B): output, inputs (M, B, n_in), labels (M, B)
    per_event: Callable[[object, torch.Tensor, torch.Tensor], torch.Tensor]
    # per-event score, (M, B), higher = more signal-like: output (of a forward pass without noise), inputs
    score: Callable[[object, torch.Tensor], torch.Tensor]
    # weights, biases, inputs, noise (M, B, noise_dim) or None -> output
    forward: Callable = lambda weights, biases, x, noise=None: apply_mlp(weights, biases, x)
    # standard-normal numbers per training event that the forward pass takes (a VAE's latent dimension); 0: none
    noise_dim: Callable[[list[int]], int] = lambda hidden: 0


def _chain(n_out: Callable[[int], int]):
    def layers(n_in: int, hidden: list[int]) -> list[tuple[int, int]]:
        sizes = [n_in, *hidden, n_out(n_in)]
        return list(zip(sizes[:-1], sizes[1:]))
    return layers


def _squared_error(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared reconstruction error per event (in standardised inputs)."""
    if out.dim() == x.dim() - 1:  # one feature: the ensemble's output was squeezed
        out = out.unsqueeze(-1)
    return (out.float() - x.float()).pow(2).mean(-1)


def _vae_forward(weights, biases, x, noise=None):
    # the encoder's last layer is the one whose output is not the next layer's input (mean and log-variance)
    split = next(i for i in range(len(weights) - 1) if weights[i].shape[-1] != weights[i + 1].shape[-2])
    return apply_vae(weights, biases, x, split, noise)


def _vae_loss(out, x: torch.Tensor) -> torch.Tensor:
    """The negative evidence lower bound per event (a unit-variance Gaussian decoder in standardised inputs, up to
    a constant): half the summed squared error plus the KL divergence of the encoder's Gaussian from N(0, 1)."""
    recon, mean, log_var = out
    error = 0.5 * (recon.float() - x.float()).pow(2).sum(-1)
    kl = 0.5 * (mean.float().pow(2) + log_var.float().exp() - 1.0 - log_var.float()).sum(-1)
    return error + kl


_BCE = torch.nn.BCEWithLogitsLoss(reduction="none")
LOSSES = {
    "classification": Loss("classification", True, _chain(lambda n_in: 1), lambda out, x, y: _BCE(out.float(), y),
                           lambda out, x: torch.sigmoid(out)),
    # an autoencoder: the hidden layers hold its bottleneck; anomalous events reconstruct worse
    "reconstruction": Loss("reconstruction", False, _chain(lambda n_in: n_in), lambda out, x, y: _squared_error(out, x),
                           _squared_error),
    # a variational autoencoder (Kingma & Welling, arXiv:1312.6114): the narrowest hidden layer is the latent space;
    # trained on the loss with the latent point drawn, scored by it at the latent mean (deterministic)
    "vae": Loss("vae", False, lambda n_in, hidden: vae_layers(n_in, hidden)[0], lambda out, x, y: _vae_loss(out, x),
                _vae_loss, _vae_forward, lambda hidden: int(min(hidden))),
}


class TrainedEnsemble:
    """The selected parameters of every member; ``predict`` averages over epochs and members."""

    def __init__(self, snapshots: list[tuple[list[torch.Tensor], list[torch.Tensor]]], slot_valid: torch.Tensor,
                 mean: np.ndarray, scale: np.ndarray, history: dict, loss: str = "classification"):
        self.snapshots = snapshots
        self.slot_valid = slot_valid  # (slots, members) bool
        self.mean, self.scale = mean, scale
        self.history = history
        self.loss = LOSSES[loss]

    @torch.no_grad()
    def predict(self, x: np.ndarray, per_member: bool = False) -> np.ndarray:
        xt = torch.as_tensor((x - self.mean) / self.scale, dtype=torch.float32)
        total = None
        for (weights, biases), valid in zip(self.snapshots, self.slot_valid):
            w = [t.cpu() for t in weights]
            b = [t.cpu() for t in biases]
            out = []
            for start in range(0, len(xt), 65536):
                chunk = xt[start:start + 65536]
                out.append(self.loss.score(self.loss.forward(w, b, chunk), chunk.unsqueeze(0)))
            p = torch.cat(out, dim=1) * valid[:, None]
            total = p if total is None else total + p
        per = (total / self.slot_valid.sum(0)[:, None]).numpy()
        return per if per_member else per.mean(0)


def make_train_step(model: MLPEnsemble, optimizer: torch.optim.Optimizer, xt: torch.Tensor, yt: torch.Tensor,
                    wt: torch.Tensor, precision: str, graphed: bool, loss: str = "classification",
                    noise: "EpochNoise | None" = None):
    """The engine's step on per-member batches ``idx`` of shape (members, batch), and its loss.

    Returns ``(step, summed_loss)``: ``step(idx)`` trains and returns each member's weighted mean
    loss; ``summed_loss(idx)`` only evaluates, returning each member's sum of weighted losses and
    sum of weights (validation adds these over chunks). benchmarks/throughput.py times this step.
    ``noise`` gives a loss that draws (a VAE's latent point) its numbers for the training events.
    """
    spec = LOSSES[loss]

    def summed_loss(idx: torch.Tensor, eps: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x = xt[idx]
        with autocast(precision, xt.device):
            out = spec.forward(list(model.weights), list(model.biases), x, eps)
        w = wt[idx]
        return (spec.per_event(out, x, yt[idx]) * w).sum(1), w.sum(1)

    def train_step(idx: torch.Tensor) -> torch.Tensor:
        total, weight = summed_loss(idx, noise(idx) if noise is not None else None)
        loss = total / weight
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimizer.step()
        return loss.detach()

    return GraphedStep(train_step, graphed), summed_loss


class EpochNoise:
    """Each member's standard-normal numbers for its own events in one epoch (a VAE's latent draws).

    Why per member and event rather than one ``torch.randn`` per step: a member's draws then come from its own
    generator, seeded by its seed and the epoch, for its own events (rows counted from its group's first), so member
    m of a batched model is the network trained alone, and a resumed job draws what it would have drawn. The
    numbers live in one buffer that a captured CUDA graph reads in place; an event drawn twice in an epoch (a short
    group's extra draws) gets the same numbers both times.
    """

    def __init__(self, seeds: list[int], sizes: list[int], offsets: list[int], dim: int, device: torch.device):
        self.seeds, self.sizes, self.dim, self.device = list(seeds), list(sizes), int(dim), device
        self.table = torch.zeros(len(seeds), max(sizes), self.dim, device=device)
        self.offset = torch.as_tensor(offsets, device=device)[:, None]
        self.members = torch.arange(len(seeds), device=device)[:, None]

    def draw(self, epoch: int) -> None:
        for m, (seed, size) in enumerate(zip(self.seeds, self.sizes)):
            gen = member_generator(seed * 2_000_003 + 7 * epoch + 3, self.device if self.device.type == "cuda"
                                   else "cpu")
            self.table[m, :size] = torch.randn(size, self.dim, generator=gen, device=gen.device).to(self.device)

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        return self.table[self.members, (idx - self.offset).clamp(0, self.table.shape[1] - 1)]


@dataclass
class TrainingGroup:
    """The training set and member seeds of one ensemble (one fold); groups can share a batched model."""

    x: np.ndarray
    y: np.ndarray
    sample_weight: np.ndarray | None
    member_seeds: list[int]
    name: str = ""


def train_ensemble(
    x: np.ndarray,
    y: np.ndarray,
    sample_weight: np.ndarray | None,
    settings: NNSettings,
    member_seeds: list[int],
    checkpoint: str | os.PathLike | None = None,
    log: Callable[[str], None] = print,
) -> TrainedEnsemble:
    """Train ``len(member_seeds)`` MLPs on (x, y) with balanced class weights; resume if possible."""
    return train_groups([TrainingGroup(x, y, sample_weight, member_seeds)], settings, checkpoint=checkpoint,
                        log=log)[0]


def train_groups(
    groups: list[TrainingGroup],
    settings: NNSettings,
    epoch_events: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    log: Callable[[str], None] = print,
    loss: str = "classification",
) -> list[TrainedEnsemble]:
    """Train the ensembles of several training sets (e.g. the k folds of a job) as one batched model.

    ``loss`` (``LOSSES``): "classification" (binary cross-entropy of the labels, classes balanced),
    "reconstruction" (an autoencoder of the inputs, ``y`` unused, events weighted by their own weights) or "vae"
    (a variational autoencoder, likewise).

    A GPU runs 10 members at a tenth of the speed of 200 (docs/benchmarks.md), so the folds of a
    job train together. Every member draws ``epoch_events`` events per epoch (default: the largest
    group's training split): one pass over its own training split, then extra draws of its own
    events. Members of all groups thus take the same steps, and a group's result depends only on
    its own data, seeds and ``epoch_events``, not on which groups share the model. Each group is
    standardised with its own mean and scale, and validated on its own split.
    """
    if not groups:
        raise ValueError("train_groups: no training groups given")
    if loss not in LOSSES:
        raise ValueError(f"train_groups: unknown loss {loss!r}; expected one of {list(LOSSES)}")
    torch.set_num_threads(max(1, int(settings.threads)))
    device = resolve_device(settings.device)
    data = [_prepare_group(g, settings, LOSSES[loss].labelled) for g in groups]
    longest = max(d["n_train"] for d in data)
    epoch_events = longest if epoch_events is None else int(epoch_events)
    if epoch_events < longest:
        raise ValueError(f"epoch_events={epoch_events} is shorter than the largest training split ({longest} events)")

    # all groups' events in one tensor, plus one zero-weight event that pads the shorter validation splits
    n_in = data[0]["x"].shape[1]
    xt = torch.as_tensor(np.concatenate([d["x"] for d in data] + [np.zeros((1, n_in), np.float32)]), device=device)
    yt = torch.as_tensor(np.concatenate([d["y"] for d in data] + [np.zeros(1, np.float32)]), device=device)
    wt = torch.as_tensor(np.concatenate([d["w"] for d in data] + [np.zeros(1, np.float32)]), device=device)
    pad = len(xt) - 1
    member_seeds = [int(s) for g in groups for s in g.member_seeds]
    train_sizes, train_rows, val_rows = [], [], []
    offset = 0
    for g, d in zip(groups, data):
        for s in g.member_seeds:
            split = torch.randperm(d["n"], generator=member_generator(s * 7919 + 1)) + offset
            train_rows.append(split[:d["n_train"]])
            val_rows.append(split[d["n_train"]:])
            train_sizes.append(d["n_train"])
        offset += d["n"]
    train_idx = _padded(train_rows, pad).to(device)
    val_idx = _padded(val_rows, pad).to(device)
    bounds = np.cumsum([0] + [len(g.member_seeds) for g in groups])

    spec = LOSSES[loss]
    model = MLPEnsemble(n_in, list(settings.hidden), member_seeds,
                        layers=spec.layers(n_in, list(settings.hidden))).to(device)
    graphed = use_graphs(settings.cuda_graphs, device)
    optimizer = adam(model.parameters(), settings.learning_rate, device, graphed)
    n_members = len(member_seeds)
    slots = max(1, settings.n_best)
    best_loss = torch.full((slots, n_members), float("inf"))
    best = [[p.detach().clone() for p in model.weights] for _ in range(slots)], \
           [[p.detach().clone() for p in model.biases] for _ in range(slots)]
    history = {"train_loss": [], "val_loss": []}
    start_epoch = 0
    # the number of epochs is not part of the identity: a run may be extended from its checkpoint
    tunables = asdict(settings) | dict.fromkeys(EXECUTION_ONLY) | {"epochs": None}
    extra = (tunables, [list(g.member_seeds) for g in groups], epoch_events)
    if loss != "classification":  # a classifier's checkpoints keep the identity they had
        extra = (extra, loss)
    ident = content_hash(*(a for d in data for a in (d["x"], d["y"], d["w"])), extra=extra)

    state = ckpt.load(checkpoint, ident, log, map_location=device)
    if state is not None:
        own = state["slidescan"]
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer_states"][0])
        if graphed:
            keep_rate_on_device(optimizer, device)
        best_loss = own["best_loss"]
        best = ([[t.to(device) for t in s] for s in own["best_weights"]],
                [[t.to(device) for t in s] for s in own["best_biases"]])
        history = own["history"]
        start_epoch = min(state["epoch"], settings.epochs)
        log(joblog.resumed(checkpoint, start_epoch))

    arange_m = torch.arange(n_members, device=device)[:, None]
    noise = None
    if spec.noise_dim(list(settings.hidden)):
        sizes = [d["n"] for g, d in zip(groups, data) for _ in g.member_seeds]
        offsets = [int(o) for g, o in zip(groups, np.cumsum([0] + [d["n"] for d in data])) for _ in g.member_seeds]
        noise = EpochNoise(member_seeds, sizes, offsets, spec.noise_dim(list(settings.hidden)), device)
    step, summed_loss = make_train_step(model, optimizer, xt, yt, wt, settings.precision, graphed, loss, noise)
    chunk = max(1024, VALIDATION_ROWS // n_members)  # bounds the validation pass's memory
    n_val = val_idx.shape[1]
    for epoch in range(start_epoch, settings.epochs):
        t0 = time.time()
        perms = member_permutations([s * 1_000_003 + epoch for s in member_seeds], train_sizes, epoch_events, device)
        order = train_idx[arange_m, perms]
        if noise is not None:
            noise.draw(epoch)
        total = torch.zeros(n_members, device=device)
        n_batches = 0
        for start in range(0, epoch_events, settings.batch_size):
            total += step(order[:, start:start + settings.batch_size])
            n_batches += 1
        with torch.no_grad():
            sums = [summed_loss(val_idx[:, s:s + chunk]) for s in range(0, n_val, chunk)]
            val = sum(loss for loss, _ in sums) / sum(weight for _, weight in sums)
        val_cpu = val.cpu()
        history["train_loss"].append((total / n_batches).cpu().tolist())
        history["val_loss"].append(val_cpu.tolist())
        _keep_best(model, best, best_loss, val_cpu)
        per_group = ""
        if len(groups) > 1:
            per_group = " [" + ", ".join(f"{g.name or i}: {float(val_cpu[a:b].mean()):.5f}"
                                         for i, (g, a, b) in enumerate(zip(groups, bounds[:-1], bounds[1:]))) + "]"
        log(joblog.epoch(epoch + 1, settings.epochs, f"train loss {float(total.mean()) / n_batches:.5f} "
                         f"val loss {float(val_cpu.mean()):.5f}{per_group}", time.time() - t0))
        if checkpoint:
            step_count = optimizer.state[model.weights[0]].get("step", 0) if optimizer.state else 0
            ckpt.save(checkpoint, ident, {"best_weights": best[0], "best_biases": best[1], "best_loss": best_loss,
                                          "history": history},
                      epoch + 1, model.state_dict(), optimizer, global_step=int(step_count))

    if settings.n_best > 0:
        snapshots = list(zip(*best))
        valid = torch.isfinite(best_loss)
    else:
        snapshots = [([p.detach() for p in model.weights], [p.detach() for p in model.biases])]
        valid = torch.ones(1, n_members, dtype=torch.bool)
    return [TrainedEnsemble([([w[a:b] for w in ws], [c[a:b] for c in bs]) for ws, bs in snapshots], valid[:, a:b],
                            d["mean"], d["scale"],
                            {key: [row[a:b] for row in rows] for key, rows in history.items()}, loss)
            for d, a, b in zip(data, bounds[:-1], bounds[1:])]


def _prepare_group(group: TrainingGroup, settings: NNSettings, labelled: bool = True) -> dict:
    """A group's standardised inputs, labels, weights (balanced between the classes when ``labelled``, else the
    events' own, mean 1) and split sizes."""
    x = np.asarray(group.x, np.float32)
    y = np.asarray(group.y, np.float32)
    n = len(x)
    n_train = n_train_events(n, settings)
    if n_train < 2:
        raise ValueError(f"training set{' ' + group.name if group.name else ''} of {n} events is too small "
                         "for a validation split")
    mean, scale = x.mean(0), x.std(0) + 1e-8
    if labelled:
        w = balanced_weights(y, group.sample_weight).astype(np.float32)
    else:
        w = np.ones(n) if group.sample_weight is None else np.asarray(group.sample_weight, float)
        if not (np.isfinite(w).all() and (w >= 0).all() and w.sum() > 0):
            raise ValueError(f"training set{' ' + group.name if group.name else ''}: weights must be finite, >= 0 "
                             "and not all 0")
        w = (w / w.mean()).astype(np.float32)
    return {"x": (x - mean) / scale, "y": y, "w": w, "mean": mean, "scale": scale, "n": n, "n_train": n_train}


def _padded(rows: list[torch.Tensor], pad: int) -> torch.Tensor:
    """Rows of different lengths as one (rows, longest) tensor, filled up with index ``pad``."""
    out = torch.full((len(rows), max(len(r) for r in rows)), pad, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def _keep_best(model: MLPEnsemble, best, best_loss: torch.Tensor, val: torch.Tensor) -> None:
    """Per member, replace the worst of the kept epochs if this epoch's validation loss is lower.

    Vectorised over members (a few copies per kept slot, however many members the job has).
    """
    members = torch.arange(best_loss.shape[1])
    worst = best_loss.argmax(0)
    improved = val < best_loss[worst, members]
    for slot in range(best_loss.shape[0]):
        chosen = improved & (worst == slot)
        if not bool(chosen.any()):
            continue
        best_loss[slot, chosen] = val[chosen]
        for store, params in zip(best, (model.weights, model.biases)):
            for t, p in zip(store[slot], params):
                mask = chosen.to(t.device)
                t[mask] = p.detach()[mask].to(t.dtype)
