"""The lightning backend: a user's LightningModule through the training stage, resumed after a SIGKILL."""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from slidescan.backends.lightning import LightningSettings, load_module_class
from slidescan.io import read_table
from slidescan.layout import Layout, PseudoExperiment
from slidescan.settings import ScanSettings
from slidescan.stages.data import make_injection, prepare_data, split_window

CONFIG = {
    "scan": "lightning",
    "data": {"source": "synthetic", "seed": 2,
             "synthetic": {"n_background": 20000, "signal_pool": 500, "reference_background": 20000,
                           "reference_signal": 1000}},
    "injections": [300], "folds": {"k": 2}, "methods": ["idealized-lightning"],
    "windows": {"first_sr_lo": 3.3, "last_sr_lo": 3.3, "sr_width": 0.4, "step": 0.2, "sb_width": 0.6},
    "classifier": {"lightning": {"members": 1, "epochs": 40, "batch_size": 64, "module_args": {"hidden": [16]}}},
}
E = PseudoExperiment(300, 1)

TRAIN = """
import sys, yaml
from slidescan.layout import Layout
from slidescan.settings import ScanSettings
from slidescan.stages.train import train
config = yaml.safe_load(open(sys.argv[1]))
train(ScanSettings.from_config(config), Layout(sys.argv[2]), "w00", "idealized-lightning", 300,
      log=lambda s: print(s, flush=True))
"""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    settings = ScanSettings.from_config(CONFIG)
    layout = Layout(tmp_path_factory.mktemp("lightning"))
    prepare_data(settings, layout.events())
    make_injection(settings, layout.events(), E, layout.injected(E))
    split_window(settings, layout.injected(E), layout.events(), "w00", layout.split("w00", E))
    return layout


def test_the_module_is_named_by_its_import_path(tmp_path):
    assert load_module_class(LightningSettings.from_config({}).module).__name__ == "WeightedMLP"
    with pytest.raises(ValueError, match=r"classifier.lightning.module: expected 'package.module:Class'"):
        load_module_class("slidescan.examples.lightning_mlp")
    with pytest.raises(FileNotFoundError, match="classifier.lightning.module: no such file"):
        load_module_class(f"{tmp_path}/nope.py:Net")
    with pytest.raises(AttributeError, match="has no 'Nope'"):
        load_module_class("slidescan.examples.lightning_mlp:Nope")


def test_a_scan_naming_the_backend_without_lightning_installed_stops_when_it_is_parsed(monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "lightning" else real(name, *a))
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'slidescan\[lightning\]'"):
        ScanSettings.from_config(CONFIG)


def test_a_killed_fold_resumes_from_lightnings_last_checkpoint(inputs, tmp_path):
    import yaml

    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    (tmp_path / "train.py").write_text(TRAIN)
    command = [sys.executable, str(tmp_path / "train.py"), str(tmp_path / "config.yaml"), str(inputs.root)]
    fold_log = inputs.fold_log("w00", "idealized-lightning", E, 0)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        seen = 0
        for _ in range(1200):  # 2 minutes at most
            text = fold_log.read_text() if fold_log.exists() else ""
            seen = len(re.findall(r"^epoch \d+/40: member 0", text, re.M))
            if seen >= 3:
                break
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert seen >= 3 and proc.returncode == -signal.SIGKILL
    assert not inputs.fold("w00", "idealized-lightning", E, 0).exists()
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    log = fold_log.read_text()
    resumed = re.search(r"^resumed member 0 from checkpoint (\S+) after epoch (\d+)$", log, re.M)
    assert resumed, log[-2000:]
    after = int(resumed.group(2))
    # every epoch that had finished at the kill is kept, bar at most the last one (logged before its checkpoint)
    # last.ckpt, or the newest epoch kept where the kill left that link dangling (backends.lightning.resume_point)
    assert after >= seen - 1 and re.search(r"member0/(last|epoch=\d+-step=\d+)\.ckpt$", resumed.group(1))
    epochs = [int(e) for e in re.findall(r"^epoch (\d+)/40: member 0", log.split(resumed.group(0))[1], re.M)]
    assert epochs == list(range(after + 1, 41))
    scores = read_table(inputs.scores("w00", "idealized-lightning", E), "scores")
    assert np.isfinite(scores["score"]).all() and len(read_table(inputs.fold("w00", "idealized-lightning", E, 0),
                                                                 "history")) == 40


def test_a_member_killed_while_lightning_relinks_its_last_checkpoint_resumes_from_its_newest_epoch(tmp_path):
    """Lightning removes the previous epoch before it relinks last.ckpt: a kill in between leaves the link
    dangling, and the member resumes from the newest epoch saved, not from scratch."""
    from slidescan.backends.lightning import resume_point

    member = tmp_path / "member0"
    member.mkdir()
    assert resume_point(member) is None and resume_point(None) is None
    (member / "epoch=0-step=10.ckpt").write_bytes(b"0")  # the first save, killed before its link: maybe cut off
    assert resume_point(member) is None
    (member / "epoch=0-step=10.ckpt").unlink()
    (member / "epoch=2-step=30.ckpt").write_bytes(b"2")
    os.utime(member / "epoch=2-step=30.ckpt", (1, 1))
    (member / "epoch=3-step=40.ckpt").write_bytes(b"3")
    (member / "last.ckpt").symlink_to("epoch=1-step=20.ckpt")  # removed before the relink
    assert resume_point(member) == member / "epoch=3-step=40.ckpt"
    (member / "last.ckpt").unlink()
    (member / "last.ckpt").symlink_to("epoch=3-step=40.ckpt")
    assert resume_point(member) == member / "last.ckpt"
