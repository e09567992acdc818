"""The registry of library fixes: pinned versions, source digests, and the refusal to start."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from workers.kafka import fixes

ROOT = Path(__file__).resolve().parents[3]


def refusal(setup: str) -> subprocess.CompletedProcess[str]:
    """`fixes.install()` in a fresh interpreter, after `setup`."""
    code = f"{setup}\nfrom workers.kafka import fixes\nfixes.install()\nprint('installed')"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)


def test_the_installed_libraries_are_the_ones_the_fixes_were_checked_against() -> None:
    assert fixes.mismatch() is None
    fixes.install()
    fixes.install()  # idempotent


def test_the_pins_are_the_ones_in_pyproject() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = {}
    for dep in deps:
        found = re.fullmatch(r"([\w-]+)(\[[\w,]+\])?==([\w.]+)", dep)
        if found:
            pinned[found[1]] = found[3]
    assert {name: pinned.get(name) for name in fixes.PINNED} == fixes.PINNED


def test_another_version_is_refused_in_one_line() -> None:
    got = refusal("import importlib.metadata as m\n"
                  "real = m.version\n"
                  "m.version = lambda name: '0.15.4' if name == 'faust-streaming' else real(name)")
    assert got.returncode == 1
    assert got.stdout == ""
    assert got.stderr == (
        "eventguard: faust-streaming 0.15.4 is installed, but the fixes in "
        "workers/kafka/fixes.py were checked against faust-streaming 0.15.3, "
        "mode-streaming 0.7.1, aiokafka 0.14.0; re-check each fix there against the installed "
        "code and update PINNED and pyproject.toml, or install the pinned versions\n")


def test_a_changed_library_function_is_refused_in_one_line() -> None:
    target = "faust.tables.recovery:Recovery._seek_offsets"
    got = refusal("from workers.kafka import fixes\n"
                  "[fix] = [f for f in fixes.FIXES if "
                  f"{target!r} in f.library]\n"
                  f"fix.library[{target!r}] = '0' * 16")
    assert got.returncode == 1
    assert got.stderr == (
        f"eventguard: the source of {target} is not the one the fix "
        "workers.kafka.quiet_recovery:QuietRecovery._seek_offsets in workers/kafka/fixes.py "
        "was checked against (pinned: faust-streaming 0.15.3, mode-streaming 0.7.1, "
        "aiokafka 0.14.0); re-check the fix and update its digest there, or reinstall the "
        "pinned versions\n")



def test_every_fix_says_upstream_and_when_it_can_go() -> None:
    for fix in fixes.FIXES:
        module, _, qualname = fix.ours.partition(":")
        obj: object = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        obj = getattr(obj, "fun", obj)  # a mode Service.task: its method's docstring
        doc = obj.__doc__ or ""
        assert "Upstream" in doc and "Remove" in doc, f"{fix.ours}: {doc!r}"
        assert fix.upstream and fix.remove_when and fix.library, fix.ours
