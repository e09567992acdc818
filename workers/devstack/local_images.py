"""The images the compose file names, built here when no registry can serve them.

Recipes: deploy/local-images/ (its README says why they exist and what each provides).
Each step is skipped when its image is already in our engine. The eventguard image is
built from the project's own Dockerfile, with wheels made on the host: pip in a container
cannot trust the intercepted TLS of these machines, and no CA bundle goes into an image.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from workers.devstack import broker
from workers.devstack.docker_engine import Engine, home, run_logged

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "deploy" / "local-images"
BASE = "eventguard-local/debian:bookworm"
STAND_INS = {"python:3.11-slim": "python", "apache/kafka:3.9.1": "kafka",
             "prom/prometheus:v2.55.1": "prometheus"}
EVENTGUARD = "eventguard:latest"


def present(engine: Engine, tag: str) -> bool:
    return engine.docker("image", "inspect", tag, check=False).returncode == 0


def base(engine: Engine) -> str:
    """A minimal Debian bookworm, made with mmdebstrap and imported."""
    if present(engine, BASE):
        return "cached"
    tar = home() / "bookworm-minbase.tar"
    log = home() / "images.log"
    tar.unlink(missing_ok=True)
    run_logged(["mmdebstrap", "--variant=minbase", "--quiet", "bookworm", str(tar)], log,
               "mmdebstrap (a Debian base for the stand-in images)")
    run_logged(["docker", "import", str(tar), BASE], log, f"docker import {BASE}", engine.env)
    tar.unlink()
    return "built"


def stand_in(engine: Engine, tag: str) -> str:
    if present(engine, tag):
        return "cached"
    recipe = RECIPES / STAND_INS[tag]
    context = home() / "context" / STAND_INS[tag]
    shutil.rmtree(context, ignore_errors=True)
    shutil.copytree(recipe, context)
    if STAND_INS[tag] == "kafka":
        shutil.copytree(broker.lib_dir(), context / "libs")
        shutil.copy(ROOT / "workers" / "devstack" / "log4j.properties", context)
    run_logged(["docker", "build", "-q", "-t", tag, str(context)], home() / "images.log",
               f"building the stand-in {tag}", engine.env)
    shutil.rmtree(context, ignore_errors=True)
    return "built"


def eventguard(engine: Engine) -> None:
    """The project's Dockerfile on a copy of the tracked files, with host-built wheels.
    Rebuilt every time: it is the code under test."""
    context = home() / "context" / "eventguard"
    shutil.rmtree(context, ignore_errors=True)
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, context / name)
    log = home() / "images.log"
    wheels = context / "wheels"
    run_logged([sys.executable, "-m", "pip", "wheel", "-q", "-w", str(wheels), str(context)],
               log, "pip wheel (the eventguard image's packages, on the host)")
    run_logged([sys.executable, "-m", "pip", "download", "-q", "-d", str(wheels),
                "setuptools>=61", "wheel"], log, "pip download (the build backend)")
    run_logged(["docker", "build", "-q", "-t", EVENTGUARD, "--build-arg", "PIP_NO_INDEX=1",
                "--build-arg", "PIP_FIND_LINKS=/src/wheels", str(context)], log,
               "building the eventguard image", engine.env)
    # The build stage and the image this one replaces are left untagged: without this the
    # engine's data would grow by about 400 MB a run.
    engine.docker("image", "prune", "-f")


def build_all(engine: Engine, step: Callable[[str, Callable[[], object]], None]) -> None:
    """Every image the compose file needs; `step(name, fn)` times and prints each."""
    step("base image (mmdebstrap)", lambda: base(engine))
    for tag in STAND_INS:
        step(f"stand-in {tag}", lambda tag=tag: stand_in(engine, tag))  # type: ignore[misc]
    step("eventguard image", lambda: eventguard(engine))
