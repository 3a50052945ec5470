"""Shared fixtures: small seeded samples and settings sized for fast tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bqx.config import Settings
from bqx.sample import generate


@pytest.fixture(scope="session")
def bars_2d() -> dict[str, pd.DataFrame]:
    """Two trading days of three pairs (2,880 bars each)."""
    return generate(("eurusd", "usdjpy", "eurjpy"), days=2, seed=7)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture()
def sample_dir(tmp_path: Path) -> Path:
    from bqx.sample import write_sample

    write_sample(tmp_path / "bars", ("eurusd", "gbpusd"), days=1, seed=3)
    return tmp_path / "bars"
