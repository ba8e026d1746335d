"""The ``lightning`` backend: a user's own LightningModule, trained by a Lightning ``Trainer``.

For classifiers that do not vectorise into the ``nn`` engine (a graph network, a transformer, a
model from another project). The module is named by its import path in the config and built as
``Module(n_features=..., **module_args)`` for each ensemble member; the Trainer runs with the
accelerator chosen automatically, the configured precision, a checkpoint per epoch, and resumes a
killed fold with ``ckpt_path="last"``. Members train one after another, each with its own seed,
split and shuffle. The checkpoints of a fold live in a directory named by the fingerprint of its
data and settings, so a changed fold never resumes a foreign model. ``slidescan.examples.lightning_mlp``
shows what a module must provide.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import joblog
from ..io import content_hash
from ..settings import Settings, section_schema, tunables
from . import register_backend
from .base import Backend, balanced_weights, one_group


@dataclass(frozen=True)
class LightningSettings(Settings):
    section = "classifier.lightning"
    schema = section_schema("""
description: a user's own LightningModule trained by a Lightning Trainer (see slidescan.examples.lightning_mlp)
properties:
  module:
    type: string
    default: "slidescan.examples.lightning_mlp:WeightedMLP"
    description: "the LightningModule class: package.module:Class, or path/to/file.py:Class (relative to the working directory)"
  module_args: {type: object, default: {}, description: "keyword arguments of the module's constructor, besides n_features"}
  members: {type: integer, minimum: 1, default: 5}
  epochs: {type: integer, minimum: 1, default: 20}
  batch_size: {type: integer, minimum: 1, default: 256}
  validation_fraction: {type: number, exclusiveMinimum: 0, exclusiveMaximum: 1, default: 0.2}
  precision: {enum: ["32", 32, "bf16-mixed", "16-mixed"], default: "32", description: "Lightning's Trainer precision"}
  accelerator: {type: string, default: auto, description: "Lightning's accelerator: auto, cpu, gpu"}
  devices: {type: [integer, string], default: 1, description: "devices per member's Trainer"}
  threads: {type: integer, minimum: 1, default: 1}
""")

    module: str
    module_args: dict
    members: int
    epochs: int
    batch_size: int
    validation_fraction: float
    precision: str
    accelerator: str
    devices: int | str
    threads: int

    def __post_init__(self):
        object.__setattr__(self, "precision", str(self.precision))


def load_module_class(path: str):
    """``package.module:Class`` or ``file.py:Class`` -> the class, with an error that names the setting."""
    where, _, name = path.rpartition(":")
    if not where or not name:
        raise ValueError(f"classifier.lightning.module: expected 'package.module:Class' or 'file.py:Class', got {path!r}")
    if where.endswith(".py"):
        file = Path(where).resolve()
        if not file.exists():
            raise FileNotFoundError(f"classifier.lightning.module: no such file {file}")
        spec = importlib.util.spec_from_file_location(f"slidescan_lightning_{file.stem}", file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    if not hasattr(module, name):
        raise AttributeError(f"classifier.lightning.module: {where} has no {name!r}")
    return getattr(module, name)


class LightningEnsemble:
    """The members' mean probability; ``history`` per epoch and member."""

    def __init__(self, modules: list, mean: np.ndarray, scale: np.ndarray, history: dict):
        self.modules, self.mean, self.scale, self.history = modules, mean, scale, history

    def predict(self, x: np.ndarray, per_member: bool = False) -> np.ndarray:
        import torch

        xt = torch.as_tensor((np.asarray(x, float) - self.mean) / self.scale, dtype=torch.float32)
        per = []
        with torch.no_grad():
            for module in self.modules:
                out = [torch.sigmoid(module(xt[s:s + 65536]).reshape(-1)) for s in range(0, len(xt), 65536)]
                per.append(torch.cat(out).numpy())
        per = np.stack(per)
        return per if per_member else per.mean(0)


def resume_point(directory: Path | None) -> Path | None:
    """The checkpoint a member resumes from: ``last.ckpt``, or where that link dangles, the newest epoch kept.

    Why not ``last.ckpt`` alone: Lightning's ModelCheckpoint (save_top_k=1, save_last="link") saves the new epoch,
    removes the previous one, then relinks ``last.ckpt``; a job killed between the removal and the link leaves it
    pointing at nothing, and the member would start over although its newest epoch is saved whole (it was written
    before the removal). Seen once in the test suite under load."""
    if directory is None:
        return None
    last = directory / "last.ckpt"
    if last.exists():
        return last
    if not last.is_symlink():
        # no link yet: the first epoch's save may have been cut off mid-write, so nothing is known to be whole
        return None
    kept = sorted(directory.glob("epoch=*.ckpt"), key=lambda p: p.stat().st_mtime)
    return kept[-1] if kept else None


def _history_callback(log, member: int, epochs: int, last: Path | None):
    import lightning as L

    class History(L.Callback):
        """Per-epoch losses in the fold's log, kept in the checkpoint so a resumed member keeps them."""

        def __init__(self):
            self.train, self.val, self.t0 = [], [], time.time()

        def on_train_epoch_start(self, trainer, module):
            self.t0 = time.time()

        def on_train_epoch_end(self, trainer, module):
            metrics = trainer.callback_metrics
            train = float(metrics.get("train_loss", float("nan")))
            val = float(metrics.get("val_loss", float("nan")))
            self.train.append(train)
            self.val.append(val)
            log(joblog.epoch(trainer.current_epoch + 1, epochs, f"member {member}: train loss {train:.5f} "
                             f"val loss {val:.5f}", time.time() - self.t0))

        def state_dict(self):
            return {"train": self.train, "val": self.val}

        def load_state_dict(self, state):  # called when the Trainer resumes from the member's last checkpoint
            self.train, self.val = list(state["train"]), list(state["val"])
            log(joblog.resumed(last, len(self.val), f"member {member}"))

    return History()


class LightningBackend(Backend):
    name = "lightning"
    description = "a user's LightningModule (Lightning Trainer)"
    settings_type = LightningSettings

    def configure(self, config: dict):
        # fail when the scan is parsed, not in its first fold job
        if importlib.util.find_spec("lightning") is None:
            raise ModuleNotFoundError("the lightning backend needs the lightning package: "
                                      "pip install 'slidescan[lightning]' (or pip install lightning)")
        return super().configure(config)

    def tunables(self, settings) -> dict:
        # where and on how many devices it trains does not change what it computes
        return {k: v for k, v in tunables(settings).items() if k not in ("accelerator", "devices")}

    def fit(self, settings, groups, checkpoint, log, epoch_key=None):
        import lightning as L
        import torch
        from lightning.pytorch.callbacks import ModelCheckpoint
        from lightning.pytorch.plugins.environments import LightningEnvironment
        from torch.utils.data import DataLoader, TensorDataset

        ts, seeds, _ = one_group(self.name, groups)
        # Lightning's banner lines ("GPU available: ...", tips) would fill every fold log
        logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
        torch.set_num_threads(max(1, int(settings.threads)))
        module_class = load_module_class(settings.module)
        x = np.asarray(ts.x, float)
        mean, scale = x.mean(0), x.std(0) + 1e-8
        w = balanced_weights(np.asarray(ts.y), ts.weight)
        ident = content_hash(x, np.asarray(ts.y, float), w, extra=(self.tunables(settings), list(seeds)))
        root = Path(checkpoint).with_name(f"{Path(checkpoint).stem}-{ident[:16]}") if checkpoint else None
        tensors = [torch.as_tensor((x - mean) / scale, dtype=torch.float32),
                   torch.as_tensor(ts.y, dtype=torch.float32), torch.as_tensor(w, dtype=torch.float32)]
        n = len(x)
        n_val = max(1, int(round(settings.validation_fraction * n)))
        modules, histories = [], []
        for member, seed in enumerate(seeds):
            L.seed_everything(int(seed) % (2**32), verbose=False)
            order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed) % (2**63)))
            train, val = order[n_val:], order[:n_val]
            loaders = [DataLoader(TensorDataset(*(t[idx] for t in tensors)), batch_size=settings.batch_size,
                                  shuffle=shuffle, generator=torch.Generator().manual_seed(int(seed) % (2**63)))
                       for idx, shuffle in ((train, True), (val, False))]
            module = module_class(n_features=x.shape[1], **settings.module_args)
            last = resume_point(root / f"member{member}" if root is not None else None)
            history = _history_callback(log, member, settings.epochs, last)
            callbacks = [history]
            if root is not None:
                # the newest epoch kept (save_top_k=1 with no monitor), last.ckpt a link to it: what ckpt_path="last" finds
                callbacks.append(ModelCheckpoint(dirpath=root / f"member{member}", save_last="link", save_top_k=1,
                                                 every_n_epochs=1))
            trainer = L.Trainer(max_epochs=settings.epochs, accelerator=settings.accelerator, devices=settings.devices,
                                precision=settings.precision, logger=False, enable_progress_bar=False,
                                enable_model_summary=False, num_sanity_val_steps=0, callbacks=callbacks,
                                plugins=[LightningEnvironment()], default_root_dir=root or ".")
            trainer.fit(module, *loaders, ckpt_path=str(last) if last is not None else None)
            modules.append(module.to("cpu").eval())
            histories.append(history)
        epochs = min(len(h.val) for h in histories)
        history = {"train_loss": [[h.train[e] for h in histories] for e in range(epochs)],
                   "val_loss": [[h.val[e] for h in histories] for e in range(epochs)]}
        return [LightningEnsemble(modules, mean, scale, history)]


register_backend(LightningBackend())
