"""A real `specedit api` process on a free loopback port, driven by the official client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.api_server import ApiServer, free_port, running_api_server

__all__ = ["ApiServer", "free_port"]

API_KEY = "test-key-not-secret"
KEY_ENV = "SPECEDIT_TEST_API_KEY"
MAX_QUEUE = 1
MAX_BODY = 64 * 1024
# Short deadlines and a small cap, so that test_limits.py can provoke each one quickly. A
# request sent whole (as every other test sends one) meets them on any machine.
HEADER_TIMEOUT = 4  # long enough that sockets the cap test opens outlive its request
BODY_TIMEOUT = 3
MAX_CONNECTIONS = 8


@pytest.fixture(scope="session")
def api_server(tiny_chat_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[ApiServer]:
    log = tmp_path_factory.mktemp("api") / "server.log"
    with running_api_server(tiny_chat_model_dir, log, {KEY_ENV: API_KEY},
                            ["--api-key-env", KEY_ENV, "--max-queue", str(MAX_QUEUE),
                             "--max-body-bytes", str(MAX_BODY),
                             "--header-timeout", str(HEADER_TIMEOUT),
                             "--body-timeout", str(BODY_TIMEOUT),
                             "--max-connections", str(MAX_CONNECTIONS)]) as server:
        yield server
    assert server.process.returncode is not None
