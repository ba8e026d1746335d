"""An example LightningModule for the ``lightning`` classifier backend: a weighted-BCE MLP.

The backend calls ``Module(n_features=..., **module_args)`` and trains it with a Lightning
``Trainer`` on batches ``(x, y, weight)``: standardised features, labels 0/1 and per-event weights
(the classes balanced). What a module must do:

- ``forward(x)`` returns one logit per event (shape ``(batch,)`` or ``(batch, 1)``);
- ``training_step`` and ``validation_step`` log ``train_loss`` and ``val_loss`` (the backend's
  epoch lines and loss curves read them);
- ``configure_optimizers`` as usual.

Use your own with ``classifier.lightning.module: my_package.my_module:MyModule`` (or
``path/to/file.py:MyModule``) and its arguments in ``classifier.lightning.module_args``.
"""

from __future__ import annotations

import lightning as L
import torch
from torch import nn


class WeightedMLP(L.LightningModule):
    def __init__(self, n_features: int, hidden: list[int] = (64, 64, 64), learning_rate: float = 1e-3):
        super().__init__()
        self.save_hyperparameters()
        layers, width = [], n_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        self.learning_rate = learning_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)

    def _loss(self, batch) -> torch.Tensor:
        x, y, w = batch
        losses = nn.functional.binary_cross_entropy_with_logits(self(x), y, reduction="none")
        return (losses * w).sum() / w.sum()

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._loss(batch), on_step=False, on_epoch=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.learning_rate)
