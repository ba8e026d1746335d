import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The LHCO files beside the checkout (../shared/data), or $SLIDESCAN_SHARED_DATA."""
    return Path(os.environ.get("SLIDESCAN_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def lhco_sr_dir() -> Path:
    path = shared_data_dir() / "lhco_rd_sr"
    if not path.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the shared LHCO data at {path}")
        pytest.skip(f"real LHCO signal-region files not found at {path} (set SLIDESCAN_SHARED_DATA)")
    return path

