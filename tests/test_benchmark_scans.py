"""The scans that benchmarks/fullscale.py builds are valid before a (GPU) session spends its time on them."""

import importlib.util
from copy import deepcopy

import pytest

from slidescan.config import deep_update, read_yaml, validate
from slidescan.data import SyntheticModel, generate_background
from slidescan.seeds import rng
from slidescan.settings import ScanSettings
from slidescan.windows import check_windows

from conftest import REPO


def _fullscale():
    spec = importlib.util.spec_from_file_location("fullscale", REPO / "benchmarks" / "fullscale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _settings(overlay: dict) -> ScanSettings:
    config = deep_update(deepcopy(read_yaml(REPO / "config" / "config.yaml")), overlay)
    return ScanSettings.from_config(validate(config, source="fullscale overlay"))


@pytest.mark.parametrize("scale", ["cpu", "full"])
def test_fullscale_windows_fit_the_synthetic_data_and_slices_select(scale):
    """A window whose sidebands leave the synthetic mjj range (2.5-6 TeV) stops the scan at its first job; this
    happened once to the benchmark's grid (SR from 3.0 TeV), after a session had planned its GPU time on it."""
    fullscale = _fullscale()
    settings = _settings(fullscale.overlay(scale, "cpu"))
    assert len(settings.windows) == 10
    assert any(w.sr_lo == pytest.approx(3.3) and w.sr_hi == pytest.approx(3.7) for w in settings.windows)
    background = generate_background(100_000, SyntheticModel.from_config({}), rng(1, "fullscale-test"))
    check_windows(list(settings.windows), background, settings.min_events, scale)

    sliced = _settings(fullscale.overlay(scale, "cpu", seeds=1, pack="scan", injections=[0],
                                         windows=(3.3, 3.5)))
    assert [(w.sr_lo, w.sr_hi) for w in sliced.windows] == [(3.3, 3.7), (3.5, 3.9)]
    assert list(sliced.injections) == [0] and list(sliced.seeds) == [1]
    assert sliced.packing.models == "scan"
    with pytest.raises(SystemExit, match=r"--injections \[7\]: the .* scale injects"):
        fullscale.overlay(scale, "cpu", injections=[7])
