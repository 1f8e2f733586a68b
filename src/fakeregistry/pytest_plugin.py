"""pytest fixtures: ``fake_registry`` (in-process) and ``fake_registry_server`` (a loopback socket).

Registered through the ``pytest11`` entry point, so installing fakeregistry is
enough. Nothing beyond pytest is imported until a fixture is used.

Defaults are changed by overriding the small config fixtures in a project's
``conftest.py``: ``fake_registry_options`` (constructor options for every
test), ``fake_registry_host`` (the in-process host name) and
``fake_registry_server_address`` (where the socket server listens). One test
changes them with ``@pytest.mark.fake_registry(**options)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterator, Tuple

import pytest

if TYPE_CHECKING:
    from .registry import FakeRegistry
    from .server import RegistryServer


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fake_registry(**options): FakeRegistry options (delete_enabled, ...) for this test's "
        "fake_registry or fake_registry_server",
    )


@pytest.fixture
def fake_registry_options() -> Dict[str, Any]:
    """Constructor options for every test's registry; override in conftest.py to change them."""
    return {}


@pytest.fixture
def fake_registry_host() -> str:
    """The host ``fake_registry`` answers for in-process (http and https)."""
    return "registry.test"


@pytest.fixture(scope="session")
def fake_registry_server_address() -> Tuple[str, int]:
    """Where ``fake_registry_server`` listens: loopback, a free port."""
    return ("127.0.0.1", 0)


def _options(request: pytest.FixtureRequest, defaults: Dict[str, Any]) -> Dict[str, Any]:
    options = dict(defaults)
    for marker in reversed(list(request.node.iter_markers("fake_registry"))):  # the closest marker wins
        if marker.args:
            raise TypeError("@pytest.mark.fake_registry takes keyword options only, e.g. delete_enabled=False")
        options.update(marker.kwargs)
    return options


@pytest.fixture
def fake_registry(
    request: pytest.FixtureRequest, fake_registry_options: Dict[str, Any], fake_registry_host: str
) -> Iterator["FakeRegistry"]:
    """A fresh registry; ``requests`` calls to ``fake_registry.url`` are served in-process."""
    from .registry import FakeRegistry

    registry = FakeRegistry(host=fake_registry_host, **_options(request, fake_registry_options))
    if "requests_mock" in request.fixturenames:
        # The test mocks requests itself: join its mocker rather than nest another one.
        registry.mock_requests(request.getfixturevalue("requests_mock"))
        yield registry
    else:
        with registry.mock_requests():
            yield registry
    registry.check_internal_errors()


@pytest.fixture(scope="session")
def _fake_registry_socket(fake_registry_server_address: Tuple[str, int]) -> Iterator["RegistryServer"]:
    from .registry import FakeRegistry
    from .server import RegistryServer

    host, port = fake_registry_server_address
    with RegistryServer(FakeRegistry(), host, port) as server:
        yield server


@pytest.fixture
def fake_registry_server(
    request: pytest.FixtureRequest, _fake_registry_socket: "RegistryServer", fake_registry_options: Dict[str, Any]
) -> Iterator["FakeRegistry"]:
    """A fresh registry on a real socket: ``.url`` is ``http://127.0.0.1:<port>``, ``.host`` is ``127.0.0.1:<port>``."""
    from .registry import FakeRegistry

    registry = FakeRegistry(host=_fake_registry_socket.host, **_options(request, fake_registry_options))
    _fake_registry_socket.app = registry
    try:
        yield registry
    finally:
        _fake_registry_socket.app = FakeRegistry()  # whatever arrives late lands in a throwaway registry
    registry.check_internal_errors()
