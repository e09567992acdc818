"""The soak runs on the chaos suite's fixtures: the broker, and a stack on its own prefix."""

import pytest

from tests.chaos.conftest import chaos_bootstrap, chaos_stack  # noqa: F401  (fixtures)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "soak: membership and key changes for a long time (make soak)")
