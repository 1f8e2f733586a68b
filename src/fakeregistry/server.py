"""Serving a registry on a real socket, from a background thread.

For clients that are not in-process: skopeo, crane, oras, aiohttp code,
subprocesses. ``RegistryServer.app`` can be swapped while the server runs, so
one listening socket can serve a fresh registry to each test.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any, Iterable, Optional, Type

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


log = logging.getLogger("fakeregistry.server")


class QuietRequestHandler(WSGIRequestHandler):
    """werkzeug's handler without a log line per request (the registry keeps a journal).

    Malformed requests (skopeo's TLS handshake on the plain-HTTP port, say) are
    logged at debug level only: they are the client's doing, and answered 400.
    """

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass

    def log_error(self, format: str, *args: Any) -> None:
        log.debug("%s: " + format, self.address_string(), *args)


class RegistryServer:
    """A WSGI app (normally a ``FakeRegistry``) on ``host:port``, served by a thread per connection.

    >>> from fakeregistry import FakeRegistry
    >>> with RegistryServer(FakeRegistry()) as server:
    ...     server.url.startswith("http://127.0.0.1:")
    True
    """

    def __init__(self, app: "WSGIApplication", host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._server: BaseWSGIServer = make_server(
            host, port, self._dispatch, threaded=True, request_handler=QuietRequestHandler
        )
        self._thread: Optional[threading.Thread] = None

    @property
    def port(self) -> int:
        return self._server.server_port

    @property
    def host(self) -> str:
        """``host:port``, ready for image references such as ``f"{server.host}/team/app:v1"``."""
        return f"{self._server.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def _dispatch(self, environ: "WSGIEnvironment", start_response: "StartResponse") -> Iterable[bytes]:
        return self.app(environ, start_response)

    def start(self) -> "RegistryServer":
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fakeregistry-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> "RegistryServer":
        return self.start()

    def __exit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], trace: Optional[TracebackType]
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<RegistryServer {self.url}>"


def serve(app: "WSGIApplication", host: str = "127.0.0.1", port: int = 0) -> RegistryServer:
    """Serve ``app`` on a loopback socket: ``with fakeregistry.serve(reg) as server: server.url``."""
    return RegistryServer(app, host, port)
