"""Fault injection for tests that run real processes (see sitecustomize.py here)."""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent


def env(**faults: str) -> dict[str, str]:
    """The environment of a process that gets these faults (EG_FAULT_<NAME>=value)."""
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, **{f"EG_FAULT_{k.upper()}": v for k, v in faults.items()}}
