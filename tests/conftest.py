"""Shared test settings: small thread count for reproducible CPU timings, data folder fixture."""

from __future__ import annotations

from pathlib import Path

import pytest

TEST_DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def test_data_dir() -> Path:
    """Folder of small real samples shipped with the tests (see tests/data/*/SOURCE.md)."""
    return TEST_DATA
