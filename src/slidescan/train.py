"""Training loop of the vectorised MLP ensemble, with per-epoch checkpoints and resume.

Data stay on the device as whole tensors (no per-sample DataLoader). Every member draws its own
train/validation split and its own shuffled batches from generators seeded by its seed and the
epoch, so a member's result does not depend on which other members share the job, and a job
resumed from a checkpoint continues exactly where it stopped.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .ensemble import MLPEnsemble, apply_mlp, member_generator
from .io import atomic_path, content_hash
from .methods import balanced_weights
from .settings import from_config


@dataclass
class NNSettings:
    """Classifier training settings; defaults follow the CATHODE classifier (arXiv:2109.00546)."""

    hidden: list[int] = field(default_factory=lambda: [64, 64, 64])
    members: int = 10
    epochs: int = 100
    batch_size: int = 128
    learning_rate: float = 1e-3
    validation_fraction: float = 0.2
    # average the predictions of each member's n_best epochs of lowest validation loss; 0: last epoch
    n_best: int = 0
    device: str = "auto"
    threads: int = 1

    @classmethod
    def from_config(cls, config: dict | None) -> "NNSettings":
        return from_config(cls, config, "classifier.nn")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class TrainedEnsemble:
    """The selected parameters of every member; ``predict`` averages over epochs and members."""

    def __init__(self, snapshots: list[tuple[list[torch.Tensor], list[torch.Tensor]]], slot_valid: torch.Tensor,
                 mean: np.ndarray, scale: np.ndarray, history: dict):
        self.snapshots = snapshots
        self.slot_valid = slot_valid  # (slots, members) bool
        self.mean, self.scale = mean, scale
        self.history = history

    @torch.no_grad()
    def predict(self, x: np.ndarray, per_member: bool = False) -> np.ndarray:
        xt = torch.as_tensor((x - self.mean) / self.scale, dtype=torch.float32)
        total = None
        for (weights, biases), valid in zip(self.snapshots, self.slot_valid):
            w = [t.cpu() for t in weights]
            b = [t.cpu() for t in biases]
            out = []
            for start in range(0, len(xt), 65536):
                out.append(torch.sigmoid(apply_mlp(w, b, xt[start:start + 65536])))
            p = torch.cat(out, dim=1) * valid[:, None]
            total = p if total is None else total + p
        per = (total / self.slot_valid.sum(0)[:, None]).numpy()
        return per if per_member else per.mean(0)


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
    torch.set_num_threads(max(1, int(settings.threads)))
    device = resolve_device(settings.device)
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.float32)
    weights = balanced_weights(y, sample_weight).astype(np.float32)
    mean, scale = x.mean(0), x.std(0) + 1e-8
    n = len(x)
    n_val = max(1, int(round(settings.validation_fraction * n)))
    n_train = n - n_val
    if n_train < 2:
        raise ValueError(f"training set of {n} events is too small for a validation split")

    xt = torch.as_tensor((x - mean) / scale, device=device)
    yt = torch.as_tensor(y, device=device)
    wt = torch.as_tensor(weights, device=device)
    splits = torch.stack([torch.randperm(n, generator=member_generator(s * 7919 + 1)) for s in member_seeds]).to(device)
    train_idx, val_idx = splits[:, :n_train], splits[:, n_train:]

    model = MLPEnsemble(x.shape[1], list(settings.hidden), member_seeds).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    n_members = len(member_seeds)
    slots = max(1, settings.n_best)
    best_loss = torch.full((slots, n_members), float("inf"))
    best = [[p.detach().clone() for p in model.weights] for _ in range(slots)], \
           [[p.detach().clone() for p in model.biases] for _ in range(slots)]
    history = {"train_loss": [], "val_loss": []}
    start_epoch = 0
    # the number of epochs is not part of the identity: a run may be extended from its checkpoint
    ident = content_hash(x, y, weights, extra=(asdict(settings) | {"device": None, "threads": None, "epochs": None},
                                              member_seeds))

    ckpt_path = Path(checkpoint) if checkpoint else None
    if ckpt_path and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        own = state.get("slidescan", {})
        if own.get("fingerprint") == ident:
            model.load_state_dict(state["state_dict"])
            optimizer.load_state_dict(state["optimizer_states"][0])
            best_loss = own["best_loss"]
            best = ([[t.to(device) for t in s] for s in own["best_weights"]],
                    [[t.to(device) for t in s] for s in own["best_biases"]])
            history = own["history"]
            start_epoch = min(state["epoch"], settings.epochs)
            log(f"resumed from checkpoint {ckpt_path} after epoch {start_epoch}")
        else:
            log(f"checkpoint {ckpt_path} belongs to other data or settings; starting fresh")

    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")
    arange_m = torch.arange(n_members, device=device)[:, None]

    def weighted_loss(idx: torch.Tensor, params=None) -> torch.Tensor:
        logits = model(xt[idx]) if params is None else apply_mlp(*params, xt[idx])
        w = wt[idx]
        return (loss_fn(logits, yt[idx]) * w).sum(1) / w.sum(1)

    for epoch in range(start_epoch, settings.epochs):
        t0 = time.time()
        perms = torch.stack([
            torch.randperm(n_train, generator=member_generator(s * 1_000_003 + epoch)) for s in member_seeds
        ]).to(device)
        order = train_idx[arange_m, perms]
        total = torch.zeros(n_members, device=device)
        n_batches = 0
        for start in range(0, n_train, settings.batch_size):
            idx = order[:, start:start + settings.batch_size]
            loss = weighted_loss(idx)
            optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()
            optimizer.step()
            total += loss.detach()
            n_batches += 1
        with torch.no_grad():
            val = torch.stack([weighted_loss(val_idx[:, s:s + 65536]) * val_idx[:, s:s + 65536].shape[1]
                               for s in range(0, n_val, 65536)]).sum(0) / n_val
        val_cpu = val.cpu()
        history["train_loss"].append((total / n_batches).cpu().tolist())
        history["val_loss"].append(val_cpu.tolist())
        _keep_best(model, best, best_loss, val_cpu)
        log(f"epoch {epoch + 1}/{settings.epochs}: train loss {float(total.mean()) / n_batches:.5f} "
            f"val loss {float(val_cpu.mean()):.5f} ({time.time() - t0:.2f} s)")
        if ckpt_path:
            _save_checkpoint(ckpt_path, ident, epoch + 1, model, optimizer, best, best_loss, history)

    if settings.n_best > 0:
        snapshots = list(zip(*best))
        valid = torch.isfinite(best_loss)
    else:
        snapshots = [([p.detach() for p in model.weights], [p.detach() for p in model.biases])]
        valid = torch.ones(1, n_members, dtype=torch.bool)
    return TrainedEnsemble(snapshots, valid, mean, scale, history)


def _keep_best(model: MLPEnsemble, best, best_loss: torch.Tensor, val: torch.Tensor) -> None:
    """Per member, replace the worst of the kept epochs if this epoch's validation loss is lower."""
    worst = best_loss.argmax(0)
    for m in range(best_loss.shape[1]):
        slot = int(worst[m])
        if val[m] < best_loss[slot, m]:
            best_loss[slot, m] = val[m]
            for store, params in zip(best, (model.weights, model.biases)):
                for t, p in zip(store[slot], params):
                    t[m] = p.detach()[m]


def _save_checkpoint(path: Path, ident, epoch, model, optimizer, best, best_loss, history) -> None:
    """Lightning's checkpoint layout (state_dict, optimizer_states, epoch, global_step), plus our own state."""
    state = {
        "epoch": epoch, "global_step": int(optimizer.state[model.weights[0]].get("step", 0)) if optimizer.state else 0,
        "state_dict": model.state_dict(), "optimizer_states": [optimizer.state_dict()], "lr_schedulers": [],
        "slidescan": {"fingerprint": ident, "best_weights": best[0], "best_biases": best[1], "best_loss": best_loss,
                      "history": history},
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
