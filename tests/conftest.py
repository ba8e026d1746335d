import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# the files that take longest (seconds of one worker in a CI-like run, 2026-12-03): they start first, so that
# the two workers end together instead of one running the SLURM scans alone at the end
LONGEST_FIRST = ("test_slurm.py",  # 570
                 "test_workflow.py",  # 590
                 "test_plugins.py",  # 300
                 "test_reliability.py")  # 340


def pytest_collection_modifyitems(items):
    def rank(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within a file, and of the other files, is kept


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

