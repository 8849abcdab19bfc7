"""Test-wide rules: no network (a socket guard, offline hubs), and artefacts collected in one folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

try:  # before transformers probes for it: the CPU test environment's torchvision shim only patches a first import
    import torchvision  # noqa: F401
except ImportError:
    pass

from tests.netguard import netguard

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DIFFUSERS_OFFLINE": "1",
               "HF_DATASETS_OFFLINE": "1", "REMASKABLE_ALLOW_DOWNLOAD": "0"}
os.environ.update(OFFLINE_ENV)
netguard.install()

ARTIFACTS = Path(os.environ.get("REMASKABLE_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"))


@pytest.fixture(autouse=True)
def _no_network_attempts():
    before = len(netguard.ATTEMPTS)
    yield
    attempts = netguard.ATTEMPTS[before:]
    assert not attempts, f"the test tried to reach the network: {attempts}"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
