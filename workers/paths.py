"""Where eventguard keeps local state (jars, broker data, generated keys, logs)."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path | None:
    """The source checkout this package runs from, if it runs from one."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").exists() else None


def cache_dir() -> Path:
    override = os.environ.get("EVENTGUARD_CACHE_DIR")
    if override:
        return Path(override)
    root = project_root()
    return root / ".cache" if root else Path.home() / ".cache" / "eventguard"
