"""Shared fixtures for fakeregistry's own tests."""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass
from typing import Iterator

import pytest
from werkzeug.serving import make_server
from werkzeug.test import Client

from fakeregistry import FakeRegistry

pytest_plugins = ["pytester"]


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def client(registry: FakeRegistry) -> Client:
    return Client(registry)


@dataclass
class LiveServer:
    registry: FakeRegistry
    host: str  # 127.0.0.1:<port>

    @property
    def url(self) -> str:
        return f"http://{self.host}"


@pytest.fixture
def live_server(registry: FakeRegistry) -> Iterator[LiveServer]:
    """The registry on a real loopback socket, for clients that are not in-process."""
    server = make_server("127.0.0.1", 0, registry, threaded=True)
    # shutdown() waits out the poll interval: the default 0.5 s would be paid by every test.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield LiveServer(registry, f"127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def require_tool(name: str) -> str:
    """The tool's path; skip when absent, unless CI asked that absent tools fail."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (make test installs it: apt-get install {name})"
        if os.environ.get("FAKEREGISTRY_REQUIRE_TOOLS"):
            pytest.fail(message)
        pytest.skip(message)
    return path
