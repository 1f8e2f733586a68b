"""Serving ``requests`` calls in-process: a requests-mock matcher around the WSGI app.

Bodies stream both ways: the request body is handed to the app as its
``wsgi.input`` (bytes, files and generators alike, without joining), and the
response body is read from the app's iterable as the client reads it.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any, Iterable, Iterator, List, Optional, Tuple
from urllib.parse import urlsplit

import requests
from requests_mock import create_response
from urllib3 import HTTPHeaderDict
from urllib3.exceptions import ProtocolError
from werkzeug.test import EnvironBuilder

from .auth import other_host

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication
    from requests_mock.request import _RequestObjectProxy

DEFAULT_PORTS = {"http": 80, "https": 443}


class RequestsMatcher:
    """``mocker.add_matcher(RequestsMatcher(registry))``: answers requests to ``registry.host``."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def reset(self) -> None:
        """requests-mock's ``Mocker.reset_mock()`` calls this on every matcher; there is nothing to forget."""

    def __call__(self, request: "_RequestObjectProxy") -> Optional["requests.Response"]:
        url = urlsplit(str(request.url))
        host = host_of(url.scheme, url.netloc)
        registry_host = host_of("http", self.registry.host)
        if host not in (registry_host, other_host(registry_host, "storage"), other_host(registry_host, "auth")):
            return None
        try:
            return call_wsgi(self.registry, request, url.scheme, url.netloc, url.path, url.query)
        except ConnectionError as error:  # an injected dropped connection, as requests reports one
            raise requests.ConnectionError(error, request=request) from error


def host_of(scheme: str, netloc: str) -> str:
    """``host[:port]``, lower-cased, without the scheme's default port."""
    url = urlsplit(f"{scheme}://{netloc}")
    host = (url.hostname or "").lower()
    return host if url.port in (None, DEFAULT_PORTS.get(scheme)) else f"{host}:{url.port}"


def call_wsgi(
    app: "WSGIApplication", request: "_RequestObjectProxy", scheme: str, netloc: str, path: str, query: str
) -> "requests.Response":
    headers = [
        (key, value if isinstance(value, str) else value.decode("latin-1")) for key, value in request.headers.items()
    ]
    environ = EnvironBuilder(
        path=path or "/",
        base_url=f"{scheme}://{netloc}",
        query_string=query,
        method=request.method or "GET",
        headers=headers,
    ).get_environ()
    # The body is the client's, as sent: not the builder's idea of it (it re-encodes forms, drops lengths).
    environ["wsgi.input"], chunked = request_stream(request.body)
    environ.pop("CONTENT_LENGTH", None)
    length = request.headers.get("Content-Length")
    if length is not None:
        environ["CONTENT_LENGTH"] = str(length)
    elif chunked:  # no length: the app reads to the end of the stream
        environ["wsgi.input_terminated"] = True

    answer: List[Any] = []

    def start_response(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Any:
        answer[:] = [status, headers]
        return lambda data: None  # the legacy write() callable; this app never uses it

    body = app(environ, start_response)
    status, headers = answer
    code, _, reason = status.partition(" ")
    return create_response(
        request,
        status_code=int(code),
        reason=reason,
        headers=HTTPHeaderDict(headers),  # keeps repeated headers apart
        body=IterableStream(body),
    )


def request_stream(body: Any) -> Tuple[Any, bool]:
    """The request body as a readable stream, and whether it comes without a length."""
    if body is None:
        return io.BytesIO(), False
    if isinstance(body, str):
        body = body.encode("latin-1")  # as http.client sends a str body
    if isinstance(body, (bytes, bytearray, memoryview)):
        return io.BytesIO(body), False
    if hasattr(body, "read"):
        return body, False
    return IterableStream(body), True  # a generator: requests sends it chunked


class IterableStream(io.RawIOBase):
    """A readable stream over an iterable of bytes: a chunked request body, or a WSGI response body.

    At the end of the iterable its ``close()`` is called, as WSGI requires of a response body.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.iterable = chunks
        self.chunks: Optional[Iterator[bytes]] = iter(chunks)
        self.pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.pending:
            try:
                chunk = next(self.chunks, None) if self.chunks is not None else None
            except ConnectionError as error:  # an injected cut: as urllib3 reports a broken body
                raise ProtocolError("Connection broken: the registry closed the connection", error) from error
            if chunk is None:
                self.finish()
                return 0
            self.pending = memoryview(chunk.encode() if isinstance(chunk, str) else chunk)
        count = min(len(buffer), len(self.pending))
        buffer[:count] = self.pending[:count]
        self.pending = self.pending[count:]
        return count

    def finish(self) -> None:
        if self.chunks is not None:
            self.chunks = None
            close = getattr(self.iterable, "close", None)
            if close is not None:
                close()

    def close(self) -> None:
        self.finish()
        super().close()
