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

from .cudagraph import GraphedStep, adam, keep_rate_on_device, use_graphs
from .ensemble import MLPEnsemble, apply_mlp, member_generator, member_permutations
from .io import atomic_path, content_hash
from .methods import balanced_weights
from .settings import EXECUTION_ONLY, from_config


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
    # "32" or "bf16-mixed" (Lightning's names): bf16 autocast of the matmuls, losses in float32
    precision: str = "32"
    # on CUDA, replay each training step as one captured CUDA graph (slidescan.cudagraph)
    cuda_graphs: bool = True
    device: str = "auto"
    threads: int = 1

    @classmethod
    def from_config(cls, config: dict | None) -> "NNSettings":
        settings = from_config(cls, config, "classifier.nn")
        settings.precision = str(settings.precision)  # YAML reads `precision: 32` as a number
        if settings.precision not in PRECISIONS:
            raise ValueError(f"classifier.nn.precision: expected one of {sorted(PRECISIONS)}, got {settings.precision!r}")
        return settings


PRECISIONS = {"32": None, "bf16-mixed": torch.bfloat16}


def autocast(precision: str, device: torch.device):
    """The autocast context of a precision setting (a no-op for "32")."""
    dtype = PRECISIONS[precision]
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


# member-events per validation chunk: 4M rows of 64 floats are 1 GiB per layer
VALIDATION_ROWS = 4_194_304


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


def make_train_step(model: MLPEnsemble, optimizer: torch.optim.Optimizer, xt: torch.Tensor, yt: torch.Tensor,
                    wt: torch.Tensor, precision: str, graphed: bool):
    """The engine's step on per-member batches ``idx`` of shape (members, batch), and its loss.

    Returns ``(step, weighted_loss)``: ``step(idx)`` trains and returns each member's loss;
    ``weighted_loss(idx)`` only evaluates it (validation). benchmarks/throughput.py times this step.
    """
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")

    def weighted_loss(idx: torch.Tensor) -> torch.Tensor:
        with autocast(precision, xt.device):
            logits = model(xt[idx])
        w = wt[idx]
        return (loss_fn(logits.float(), yt[idx]) * w).sum(1) / w.sum(1)

    def train_step(idx: torch.Tensor) -> torch.Tensor:
        loss = weighted_loss(idx)
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimizer.step()
        return loss.detach()

    return GraphedStep(train_step, graphed), weighted_loss


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
    ident = content_hash(x, y, weights, extra=(asdict(settings) | dict.fromkeys(EXECUTION_ONLY) | {"epochs": None},
                                              member_seeds))

    ckpt_path = Path(checkpoint) if checkpoint else None
    if ckpt_path and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        own = state.get("slidescan", {})
        if own.get("fingerprint") == ident:
            model.load_state_dict(state["state_dict"])
            optimizer.load_state_dict(state["optimizer_states"][0])
            if graphed:
                keep_rate_on_device(optimizer, device)
            best_loss = own["best_loss"]
            best = ([[t.to(device) for t in s] for s in own["best_weights"]],
                    [[t.to(device) for t in s] for s in own["best_biases"]])
            history = own["history"]
            start_epoch = min(state["epoch"], settings.epochs)
            log(f"resumed from checkpoint {ckpt_path} after epoch {start_epoch}")
        else:
            log(f"checkpoint {ckpt_path} belongs to other data or settings; starting fresh")

    arange_m = torch.arange(n_members, device=device)[:, None]
    step, weighted_loss = make_train_step(model, optimizer, xt, yt, wt, settings.precision, graphed)
    chunk = max(1024, VALIDATION_ROWS // n_members)  # bounds the validation pass's memory
    for epoch in range(start_epoch, settings.epochs):
        t0 = time.time()
        perms = member_permutations([s * 1_000_003 + epoch for s in member_seeds], n_train, device)
        order = train_idx[arange_m, perms]
        total = torch.zeros(n_members, device=device)
        n_batches = 0
        for start in range(0, n_train, settings.batch_size):
            total += step(order[:, start:start + settings.batch_size])
            n_batches += 1
        with torch.no_grad():
            val = torch.stack([weighted_loss(val_idx[:, s:s + chunk]) * val_idx[:, s:s + chunk].shape[1]
                               for s in range(0, n_val, chunk)]).sum(0) / n_val
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
