"""A real daemon on 127.0.0.1 (discovery off) for the core tests."""

import helpers
import pytest


@pytest.fixture
async def daemon(tmp_path):
    d = await helpers.start_daemon(tmp_path / "home")
    try:
        yield d
    finally:
        await d.stop()
