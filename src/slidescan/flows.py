"""Conditional density estimation for CATHODE: a zuko masked autoregressive flow p(x | mjj).

The flow is trained on sideband events and sampled inside the signal region (arXiv:2109.00546).
Features are mapped to an unbounded space by a clamped logit of a min-max scaling with a margin,
then standardised: a clamp, not the raw logit, so no event can become inf or NaN, and samples
mapped back always lie inside the (widened) range seen in training.

As in CATHODE, training keeps the ``n_best`` epochs of lowest validation loss and treats them as
an equal-weight mixture: samples are drawn from each in turn and ``log_prob`` averages densities.
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .cudagraph import GraphedStep, adam, keep_rate_on_device, set_learning_rate, use_graphs
from .ensemble import member_generator
from .io import atomic_path, content_hash
from .settings import EXECUTION_ONLY, from_config
from .train import resolve_device


@dataclass
class FlowSettings:
    """Flow settings; defaults are the published CATHODE ones (15 MADE blocks of 128, batch 256, 100 epochs)."""

    transforms: int = 15
    hidden: list[int] = field(default_factory=lambda: [128])
    epochs: int = 100
    batch_size: int = 256
    learning_rate: float = 1e-4
    # "cosine": decay the learning rate to zero over the training (per step); lets large batches
    # with a larger rate reach the published setting's likelihood in fewer epochs (docs/benchmarks.md)
    lr_schedule: str = "constant"
    validation_fraction: float = 0.2
    # mixture of the n_best epochs of lowest validation loss (CATHODE: 10); 1 is the best epoch alone
    n_best: int = 10
    # train on at most this many sideband events (a random subset); 0 uses all
    max_train_events: int = 0
    # SR samples per SR data event; the samples get weight 1/oversampling
    oversampling: float = 4.0
    # on CUDA, replay each training step as one captured CUDA graph (slidescan.cudagraph)
    cuda_graphs: bool = True
    device: str = "auto"
    threads: int = 1

    @classmethod
    def from_config(cls, config: dict | None) -> "FlowSettings":
        settings = from_config(cls, config, "flow")
        if settings.n_best < 1 or settings.epochs < 1 or settings.oversampling <= 0:
            raise ValueError(f"flow: need n_best >= 1, epochs >= 1 and oversampling > 0, got {asdict(settings)}")
        if settings.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"flow.lr_schedule: expected 'constant' or 'cosine', got {settings.lr_schedule!r}")
        return settings


LOGIT_EPS = 1e-6


@dataclass
class Preprocessor:
    """x -> standardised clamped logit of a min-max scaling; mjj -> standardised condition."""

    lo: np.ndarray
    hi: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    m_mean: float
    m_std: float

    @classmethod
    def fit(cls, x: np.ndarray, mjj: np.ndarray, margin: float = 0.05) -> "Preprocessor":
        lo, hi = x.min(0), x.max(0)
        span = np.where(hi > lo, hi - lo, 1.0)
        pre = cls(lo - margin * span, hi + margin * span, np.zeros(x.shape[1]), np.ones(x.shape[1]),
                  float(mjj.mean()), float(mjj.std() or 1.0))
        z = pre._logit(x)
        pre.mean, pre.std = z.mean(0), z.std(0) + 1e-8
        return pre

    def _logit(self, x: np.ndarray) -> np.ndarray:
        u = np.clip((x - self.lo) / (self.hi - self.lo), LOGIT_EPS, 1 - LOGIT_EPS)
        return np.log(u) - np.log1p(-u)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return (self._logit(x) - self.mean) / self.std

    def log_jacobian(self, x: np.ndarray) -> np.ndarray:
        """log |dz/dx| summed over features, for densities in the original feature space."""
        u = np.clip((x - self.lo) / (self.hi - self.lo), LOGIT_EPS, 1 - LOGIT_EPS)
        return (-np.log(u) - np.log1p(-u) - np.log(self.hi - self.lo) - np.log(self.std)).sum(1)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        from scipy.special import expit

        u = expit(z * self.std + self.mean)
        return self.lo + u * (self.hi - self.lo)

    def condition(self, mjj: np.ndarray) -> np.ndarray:
        return ((np.asarray(mjj, float) - self.m_mean) / self.m_std)[:, None]


def build_flow(n_features: int, settings: FlowSettings) -> torch.nn.Module:
    import zuko

    flow = zuko.flows.MAF(n_features, 1, transforms=settings.transforms, hidden_features=list(settings.hidden))
    # Start every transform with scale 1 (zero the scale outputs of each MADE; the shifts keep their random
    # init, so gradients flow from the first step). zuko's random init lets each affine layer scale by up
    # to e^6.9: stacked 15 deep (the published setting), some ordinary events started at an NLL of 1e27
    # and the training never recovered (benchmark seed 1, docs/benchmarks.md).
    with torch.no_grad():
        for transform in flow.transform.transforms:
            last = transform.hyper[-1]
            n_params = last.weight.shape[0] // n_features  # (shift, scale) per feature, interleaved
            last.weight[n_params - 1::n_params].zero_()
            last.bias[n_params - 1::n_params].zero_()
    return flow


class TrainedFlow:
    """An equal-weight mixture of the kept epochs' flows, in the original feature space."""

    def __init__(self, states: list[dict], settings: FlowSettings, pre: Preprocessor, n_features: int,
                 history: dict, best_epochs: list[int], validation_index: np.ndarray):
        self.settings, self.pre, self.history, self.best_epochs = settings, pre, history, best_epochs
        # events held out of training: the honest sample for closure tests
        self.validation_index = validation_index
        # sampling runs where training ran: on a GPU it is seconds, on one CPU core about a minute
        self.device = resolve_device(settings.device)
        self.flows = []
        for state in states:
            flow = build_flow(n_features, settings)
            flow.load_state_dict(state)
            self.flows.append(flow.to(self.device).eval())

    @property
    def best_val_loss(self) -> float:
        return float(min(self.history["val_loss"]))

    @torch.no_grad()
    def log_prob(self, x: np.ndarray, mjj: np.ndarray) -> np.ndarray:
        z = torch.as_tensor(self.pre.forward(x), dtype=torch.float32, device=self.device)
        c = torch.as_tensor(self.pre.condition(mjj), dtype=torch.float32, device=self.device)
        per_flow = torch.stack([flow(c).log_prob(z) for flow in self.flows])
        mixture = torch.logsumexp(per_flow, 0) - math.log(len(self.flows))
        return mixture.double().cpu().numpy() + self.pre.log_jacobian(x)

    @torch.no_grad()
    def sample(self, mjj: np.ndarray, seed: int) -> np.ndarray:
        """One sample of x for each mjj value; the mixture's members take turns."""
        mjj = np.asarray(mjj, float)
        c = torch.as_tensor(self.pre.condition(mjj), dtype=torch.float32, device=self.device)
        z = torch.empty(len(mjj), len(self.pre.lo), device=self.device)
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(int(seed) % (2**63))
            for i, flow in enumerate(self.flows):
                rows = torch.arange(i, len(mjj), len(self.flows), device=self.device)
                for start in range(0, len(rows), 100_000):
                    chunk = rows[start:start + 100_000]
                    z[chunk] = flow(c[chunk]).sample()
        return self.pre.inverse(z.double().cpu().numpy())


def train_flow(x: np.ndarray, mjj: np.ndarray, settings: FlowSettings, seed: int,
               checkpoint: str | os.PathLike | None = None, log: Callable[[str], None] = print) -> TrainedFlow:
    """Fit p(x | mjj) by maximum likelihood, keeping the ``n_best`` epochs of lowest validation loss.

    Per-epoch checkpoints (Lightning layout plus our own state) let a killed job resume exactly.
    """
    torch.set_num_threads(max(1, int(settings.threads)))
    device = resolve_device(settings.device)
    x = np.asarray(x, float)
    mjj = np.asarray(mjj, float)
    if len(x) != len(mjj) or x.ndim != 2:
        raise ValueError(f"flow training: x must be (events, features) with one mjj per event, got {x.shape}, {mjj.shape}")
    if not np.all(np.isfinite(x)) or not np.all(np.isfinite(mjj)):
        raise ValueError("flow training: features or mjj contain inf or NaN")
    n = len(x)
    n_val = max(1, int(round(settings.validation_fraction * n)))
    if n - n_val < settings.batch_size:
        raise ValueError(f"flow training: {n} sideband events are too few for batch size {settings.batch_size}")
    order = np.random.default_rng(seed % (2**63)).permutation(n)
    train_idx, val_idx = order[n_val:], order[:n_val]
    pre = Preprocessor.fit(x[train_idx], mjj[train_idx])
    z = torch.as_tensor(pre.forward(x), dtype=torch.float32, device=device)
    c = torch.as_tensor(pre.condition(mjj), dtype=torch.float32, device=device)
    z_train, c_train = z[train_idx], c[train_idx]
    z_val, c_val = z[val_idx], c[val_idx]

    torch.manual_seed(int(seed) % (2**63))
    flow = build_flow(x.shape[1], settings).to(device)
    graphed = use_graphs(settings.cuda_graphs, device)
    optimizer = adam(flow.parameters(), settings.learning_rate, device, graphed)
    n_train = len(train_idx)
    steps_per_epoch = -(-n_train // settings.batch_size)
    cosine = settings.lr_schedule == "cosine"
    total_steps = settings.epochs * steps_per_epoch
    history = {"train_loss": [], "val_loss": []}
    kept: list[tuple[float, int, dict]] = []  # (val loss, epoch, state on the CPU)
    start_epoch = 0
    # a cosine schedule depends on the number of epochs; a constant rate may be extended from a checkpoint
    extendable = {} if cosine else {"epochs": None}
    ident = content_hash(x, mjj, extra=(asdict(settings) | dict.fromkeys(EXECUTION_ONLY) | extendable, seed))
    ckpt_path = Path(checkpoint) if checkpoint else None
    if ckpt_path and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        own = state.get("slidescan", {})
        if own.get("fingerprint") == ident:
            flow.load_state_dict(state["state_dict"])
            optimizer.load_state_dict(state["optimizer_states"][0])
            if graphed:
                keep_rate_on_device(optimizer, device)
            kept, history = own["kept"], own["history"]
            start_epoch = min(state["epoch"], settings.epochs)
            log(f"resumed flow from checkpoint {ckpt_path} after epoch {start_epoch}")
        else:
            log(f"checkpoint {ckpt_path} belongs to other data or settings; starting fresh")

    def train_step(idx: torch.Tensor) -> torch.Tensor:
        loss = -flow(c_train[idx]).log_prob(z_train[idx]).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    step = GraphedStep(train_step, graphed)
    for epoch in range(start_epoch, settings.epochs):
        t0 = time.time()
        perm = torch.randperm(n_train, generator=member_generator(seed * 1_000_003 + epoch)).to(device)
        flow.train()
        total, n_batches = torch.zeros((), device=device), 0
        for start in range(0, n_train, settings.batch_size):
            if cosine:  # closed form, set between steps: a captured step reads the rate from the device
                done = epoch * steps_per_epoch + n_batches
                set_learning_rate(optimizer, 0.5 * settings.learning_rate * (1 + math.cos(math.pi * done / total_steps)))
            total += step(perm[start:start + settings.batch_size])
            n_batches += 1
        flow.eval()
        with torch.no_grad():
            nll = torch.cat([-flow(c_val[s:s + 65536]).log_prob(z_val[s:s + 65536]) for s in range(0, n_val, 65536)])
        infinite = int((~torch.isfinite(nll)).sum())
        val = float(nll.sum()) / n_val if not infinite else math.inf
        train_nll = float(total) / n_batches
        if not math.isfinite(train_nll):
            raise FloatingPointError(f"flow training: training loss is {train_nll} at epoch {epoch + 1}; "
                                     "lower flow.learning_rate")
        history["train_loss"].append(train_nll)
        history["val_loss"].append(val)
        if infinite:
            # deep stacks can push a rare tail event past float32's range; such an epoch is no density
            log(f"flow: epoch {epoch + 1} not kept: {infinite} of {n_val} validation events have no finite density")
        else:
            kept.append((val, epoch + 1, {k: v.detach().cpu().clone() for k, v in flow.state_dict().items()}))
            kept = sorted(kept, key=lambda item: item[0])[:settings.n_best]
        log(f"flow epoch {epoch + 1}/{settings.epochs}: train nll {train_nll:.4f} val nll {val:.4f} "
            f"({time.time() - t0:.2f} s)")
        if ckpt_path:
            _save_checkpoint(ckpt_path, ident, epoch + 1, flow, optimizer, kept, history)

    if not kept:
        raise FloatingPointError(f"flow training: no epoch of {settings.epochs} gave every validation event a finite "
                                 "density; lower flow.learning_rate")
    best_epochs = [epoch for _, epoch, _ in kept]
    log(f"flow: best validation nll {min(history['val_loss']):.4f}; mixture of epochs {best_epochs}")
    return TrainedFlow([copy.deepcopy(s) for _, _, s in kept], settings, pre, x.shape[1], history, best_epochs,
                       np.sort(val_idx))


def _save_checkpoint(path: Path, ident, epoch, flow, optimizer, kept, history) -> None:
    # the learning rate follows from the epoch (closed-form schedule): no scheduler state to save
    state = {"epoch": epoch, "global_step": 0, "state_dict": flow.state_dict(),
             "optimizer_states": [optimizer.state_dict()], "lr_schedulers": [],
             "slidescan": {"fingerprint": ident, "kept": kept, "history": history}}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def sample_sr_mjj(sr_mjj: np.ndarray, n: int, lo: float, hi: float, seed: int) -> np.ndarray:
    """``n`` mjj values from a Gaussian KDE of the SR data's mjj, kept inside [lo, hi)."""
    from scipy.stats import gaussian_kde

    if len(sr_mjj) < 2:
        raise ValueError(f"SR {lo:g}-{hi:g}: {len(sr_mjj)} events are too few for a density estimate of mjj")
    kde = gaussian_kde(sr_mjj)
    generator = np.random.default_rng(seed)
    out = np.empty(0)
    while len(out) < n:
        draw = kde.resample(2 * (n - len(out)) + 100, seed=generator)[0]
        out = np.concatenate([out, draw[(draw >= lo) & (draw < hi)]])
    return out[:n]
