"""Shared fixtures."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def docker_engine():
    """A client of the project's Docker engine, with the base image built. Starts the engine when it is not
    running; fails (never skips) when it cannot."""
    from sandbox_images.base_image import ensure_base_image
    from sandbox_images.engine import EngineUnavailable, connect

    try:
        client = connect()
    except EngineUnavailable:
        # A fresh machine: start the project's engine (as .ci/run does) so `python -m pytest` works alone.
        started = subprocess.run(["bash", str(REPO / "sandbox_images" / "engine.sh")], capture_output=True, text=True)
        try:
            client = connect()
        except EngineUnavailable as exc:
            pytest.fail(f"no Docker engine for the docker tests and sandbox_images/engine.sh could not start one "
                        f"({exc}):\n{started.stderr[-2000:]}")
    ensure_base_image(client)
    yield client
    client.close()


@pytest.fixture
def docker_provider(docker_engine):
    """A Docker provider of the test's own, so its containers can be told apart from the shared one's."""
    from envs.sandbox.docker import DockerProvider

    own = DockerProvider()
    yield own
    own.shutdown()
