"""Connecting to the project's Docker engine (started by sandbox_images/engine.sh). The `docker` SDK is
imported lazily so the project imports without it."""

from __future__ import annotations

import os
from typing import Any

DEFAULT_DOCKER_HOST = "unix:///var/run/safety-sandbox/docker.sock"
START_HINT = "run sandbox_images/engine.sh first to start the engine (`eval \"$(bash sandbox_images/engine.sh)\"`)"
API_TIMEOUT_S = 60


class EngineUnavailable(RuntimeError):
    """No Docker engine answers (or the SDK is missing); the message says how to fix it."""


def docker_host() -> str:
    return os.environ.get("DOCKER_HOST", DEFAULT_DOCKER_HOST)


def connect() -> Any:
    """A `docker.DockerClient` for the engine at $DOCKER_HOST (default: our socket), checked with a ping."""
    try:
        import docker
    except ImportError as exc:
        raise EngineUnavailable("the docker SDK is not installed: pip install 'docker>=7'") from exc
    host = docker_host()
    try:
        client = docker.DockerClient(base_url=host, timeout=API_TIMEOUT_S)
        client.ping()
    except docker.errors.DockerException as exc:
        raise EngineUnavailable(f"no Docker engine answers at {host} ({exc}); {START_HINT}") from exc
    except OSError as exc:  # e.g. requests' ConnectionError on a dead socket
        raise EngineUnavailable(f"no Docker engine answers at {host} ({exc}); {START_HINT}") from exc
    return client
