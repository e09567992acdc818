"""The package tree keeps the architecture: the worker knows neither the HTTP edge nor the
local dev stack, the ingest does not know the worker, and the decision core (workers/auth/)
needs nothing but the standard library, pyjwt, cryptography and orjson.

Imports are read with ast, not executed, so every import counts, also one inside a function
or behind TYPE_CHECKING; importing `a.b.c` also runs the packages `a` and `a.b`.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections import deque
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "workers"
WORKER = ("workers.app", "workers.faust_app", "workers.agents", "workers.kafka")
WORKER_ONLY = ("workers.app", "workers.agents")
USAGE = ("workers.usage_app", "workers.usage_agents")
INGEST = ("workers.ingest",)
DEV_STACK = ("workers.devstack", "workers.cli")
AUTH_MAY_IMPORT = {"jwt", "cryptography", "orjson", *sys.stdlib_module_names}

Edge = tuple[str, str, int]  # (importing module, its file, line)


def modules(package: Path) -> dict[str, Path]:
    """Module name -> file, for every module of the package at `package`."""
    found = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, int]]:
    """What the module imports (absolute names, submodules resolved), with line numbers."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name if path.name == "__init__.py" else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}".rstrip(".")
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in known else base, node.lineno))
    return found


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def forbidden_chains(package: Path, roots: tuple[str, ...], banned: tuple[str, ...]
                     ) -> list[str]:
    """Each banned module that the roots reach, as the chain of imports that reaches it."""
    known = modules(package)
    came_from: dict[str, Edge | None] = {m: None for m in known if within(m, roots)}
    queue = deque(sorted(came_from))
    chains = []
    while queue:
        current = queue.popleft()
        for imported, line in imports(current, known[current], known):
            if imported in came_from:
                continue
            edge = (current, str(known[current].relative_to(package.parent)), line)
            if within(imported, banned):
                came_from[imported] = edge
                chains.append(_chain(imported, came_from))
                continue
            parts = imported.split(".")
            # `import a.b.c` runs a/__init__.py and a/b/__init__.py first.
            for target in (".".join(parts[:n]) for n in range(1, len(parts) + 1)):
                if target in known and target not in came_from:
                    came_from[target] = edge
                    queue.append(target)
    return chains


def _chain(target: str, came_from: dict[str, Edge | None]) -> str:
    lines = []
    while (edge := came_from[target]) is not None:
        lines.append(f"{edge[1]}:{edge[2]} imports {target}")
        target = edge[0]
    return "\n    " + "\n    ".join(reversed(lines))


def outside_imports(package: Path, inside: str, allowed: set[str]) -> list[str]:
    known = modules(package)
    return [f"{known[m].relative_to(package.parent)}:{line} imports {imported}"
            for m in sorted(known) if within(m, (inside,))
            for imported, line in imports(m, known[m], known)
            if not within(imported, (inside,)) and imported.split(".")[0] not in allowed]


def test_the_worker_imports_neither_the_ingest_nor_the_dev_stack() -> None:
    chains = forbidden_chains(PACKAGE, WORKER, (*INGEST, *DEV_STACK))
    assert not chains, ("the worker must know neither the HTTP edge nor the dev stack:"
                        + "".join(chains))


def test_the_worker_and_the_usage_process_do_not_import_each_other() -> None:
    """Usage runs apart so that nothing in it can stop a decision: sharing a module that
    holds a Faust app would build that app in both processes."""
    chains = forbidden_chains(PACKAGE, WORKER, USAGE)
    chains += forbidden_chains(PACKAGE, USAGE, (*WORKER_ONLY, *INGEST, *DEV_STACK))
    assert not chains, "the worker and the usage process must stay apart:" + "".join(chains)


def test_the_running_usage_process_loads_no_worker_agent() -> None:
    code = ("import sys; from workers.usage_app import app; app.discover(); "
            "print(' '.join(m for m in sys.modules if m.startswith('workers.')))")
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"}  # nothing connects
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    loaded = done.stdout.split()
    assert "workers.usage_agents.tally" in loaded and "workers.usage_agents.pages" in loaded
    assert not [m for m in loaded
                if within(m, (*WORKER_ONLY, *INGEST, *DEV_STACK, "workers.bench"))]


def test_the_running_worker_loads_neither_the_ingest_nor_the_dev_stack() -> None:
    """Faust's autodiscovery imports by scanning packages, which the ast walk cannot see."""
    code = ("import sys; from workers.app import app; app.discover(); "
            "print(' '.join(m for m in sys.modules if m.startswith('workers.')))")
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"}  # nothing connects
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    loaded = done.stdout.split()
    assert "workers.agents.authorize" in loaded
    assert not [m for m in loaded if within(m, (*INGEST, *DEV_STACK, *USAGE, "workers.bench"))]


def test_the_ingest_imports_neither_the_worker_nor_the_dev_stack() -> None:
    chains = forbidden_chains(PACKAGE, INGEST, (*WORKER_ONLY, *USAGE, *DEV_STACK))
    assert not chains, ("the ingest must know neither the worker nor the dev stack:"
                        + "".join(chains))


def test_the_decision_core_imports_only_itself_and_its_libraries() -> None:
    found = outside_imports(PACKAGE, "workers.auth", AUTH_MAY_IMPORT)
    assert not found, "workers/auth/ is pure: no Kafka, no I/O, no other package:\n    " + \
        "\n    ".join(found)


def test_a_forbidden_import_is_shown_with_its_chain(tmp_path: Path) -> None:
    pkg = tmp_path / "workers"
    for name, text in {"__init__": "", "app": "from . import shared\n",
                       "shared": "import os\n\ndef f():\n    from workers.devstack import b\n",
                       "devstack/__init__": "", "devstack/b": ""}.items():
        (pkg / f"{name}.py").parent.mkdir(parents=True, exist_ok=True)
        (pkg / f"{name}.py").write_text(text)
    assert forbidden_chains(pkg, ("workers.app",), DEV_STACK) == [
        "\n    workers/app.py:1 imports workers.shared"
        "\n    workers/shared.py:4 imports workers.devstack.b"]
