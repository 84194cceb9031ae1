"""Helpers shared by the test suites: fixtures' building blocks, never tests themselves."""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest


def require_executable(name: str) -> str:
    """The path of ``name``; skip the test where it is missing, but fail in CI (``CI`` set)."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed")
    return path


def unavailable(reason: str) -> NoReturn:
    """Skip on a developer's machine; in CI a missing service is a failure, not a skip."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)
