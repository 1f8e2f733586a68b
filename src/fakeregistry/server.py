"""Serving a registry on a real socket, from background threads.

For clients that are not in-process: skopeo, crane, oras, aiohttp code,
subprocesses. ``RegistryServer.app`` can be swapped while the server runs, so
one listening socket can serve a fresh registry to each test.

The HTTP server is cheroot (CherryPy's pure-Python WSGI server), chosen by
measurement over werkzeug's threaded server and waitress
(``benchmarks/bench_server.py``), and adapted here for a registry's clients:

* HTTP/1.1 keep-alive; idle connections wait in a selector, not in a thread.
* Worker threads are added on demand, so a slow client (or many of them, or a
  fault's ``delay``) holds one thread and never stops the others being served.
* Request bodies stream to the app: ``Content-Length`` bodies and
  ``Transfer-Encoding: chunked`` ones (de-chunked, ``wsgi.input_terminated``
  set) both offer ``readinto``, so a blob is read into the registry's buffers
  without copies. A body the app left unread is drained before the answer
  (or, past ``DRAIN_LIMIT``, the connection is closed), so the next request on
  a kept-alive connection is never read from the middle of the last one's.
* Injected faults that cut the connection (``disconnect``, ``truncate``) do:
  ``environ["werkzeug.socket"]`` is the connection's socket, as on werkzeug's
  server, which ``faults.drop_connection`` shuts down.
* TLS with ``tls=``: the handshake runs in the worker thread, not in the
  accepting loop, so a client that connects and says nothing delays nobody.
  On a plain-HTTP port, a TLS ClientHello (skopeo tries HTTPS first) is
  answered at once with a plain-text 400 and the connection closed.
* Requests reach the app as on werkzeug's server: ``PATH_INFO`` fully
  decoded (``%2F`` too), absolute request targets accepted.
* Quiet: no line per request (the registry keeps a journal); a client's
  mistakes and hang-ups are logged at debug level.
* ``stop()`` closes the socket and every connection, gives requests under
  way ``SHUTDOWN_GRACE`` to finish, cuts the rest, and ends every thread.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import socket
import ssl
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Type, Union
from urllib.parse import unquote_to_bytes, urlsplit

from cheroot import server as cheroot_server
from cheroot import wsgi as cheroot_wsgi
from cheroot.makefile import MakeFile, StreamWriter
from cheroot.ssl import Adapter
from cheroot.workers import threadpool
from werkzeug.exceptions import BadRequest, ClientDisconnected

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from .tls import TLSFiles

log = logging.getLogger("fakeregistry.server")

MIN_THREADS = 4  # started with the server; more are added while all are busy
MAX_THREADS = 256  # past this many requests at once, the next ones queue
# Seconds a connection may stay silent, mid-request or idle between requests: longer than the 90 s
# Go clients keep idle connections, so they close them first, never the server under a request.
TIMEOUT = 120.0
SHUTDOWN_GRACE = 1.0  # seconds stop() lets requests under way finish before cutting their connections
DRAIN_LIMIT = 64 * 1024 * 1024  # an unread request body up to this size is read and dropped to keep the connection
SCRATCH_SIZE = 1024 * 1024
DIRECT_WRITE = 64 * 1024  # response pieces this big skip cheroot's write buffer
TLS_RECORD = b"\x16"  # the first byte of a TLS handshake record


def _plain_answer(text: str) -> bytes:
    body = text.encode() + b"\n"
    head = (
        f"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
    )
    return head.encode() + b"\r\n" + body


HTTPS_TO_HTTP = _plain_answer("This port speaks plain HTTP, not HTTPS: use an http:// URL.")
HTTP_TO_HTTPS = _plain_answer("This port speaks HTTPS, not plain HTTP: use an https:// URL.")


# Request bodies


class RequestBody:
    """``wsgi.input`` for a body of ``Content-Length`` bytes: reads stop there; ``readinto`` copies nothing.

    A body that ends early (the client went away) raises werkzeug's
    ``ClientDisconnected``, as werkzeug's own ``LimitedStream`` does, so the
    registry answers the same over a socket as in-process.
    """

    def __init__(self, rfile: Any, sock: socket.socket, length: int) -> None:
        self._rfile = rfile
        self._fill = _fill(rfile, sock)
        self.remaining = length  # cheroot reads what is left of a body, before answering, by this name
        self.broken = False

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")[: self.remaining]
        if not view:
            return 0
        count: int = _read(self, self._fill, view)  # fills the view unless the stream ends
        self.remaining -= count
        if count < len(view):
            raise self._short()
        return count

    def read(self, size: Optional[int] = -1) -> bytes:
        if size is None or size < 0 or size > self.remaining:
            size = self.remaining
        if size == 0:
            return b""
        data: bytes = _read(self, self._rfile.read, size)
        self.remaining -= len(data)
        if len(data) < size:
            raise self._short()
        return data

    def readline(self, size: Optional[int] = -1) -> bytes:
        if size is None or size < 0 or size > self.remaining:
            size = self.remaining
        if size == 0:
            return b""
        data: bytes = _read(self, self._rfile.readline, size)
        self.remaining -= len(data)
        if not data:
            raise self._short()
        return data

    def _short(self) -> ClientDisconnected:
        self.broken = True
        return ClientDisconnected(f"the request body ended {self.remaining} bytes before its Content-Length")

    def readlines(self, hint: int = -1) -> List[bytes]:
        return list(_lines(self, hint))

    def __iter__(self) -> Iterator[bytes]:
        return _lines(self, -1)

    def drain(self, limit: int) -> bool:
        """Read and drop what the app left unread, up to ``limit`` bytes; whether the body is now complete."""
        if self.remaining > limit or self.broken:
            return False
        scratch = bytearray(min(self.remaining, SCRATCH_SIZE))
        try:
            while self.remaining:
                self.readinto(scratch)
        except ClientDisconnected:
            return False
        return True


class ChunkedRequestBody:
    """``wsgi.input`` for a ``Transfer-Encoding: chunked`` body, de-chunked as it is read (trailers dropped).

    A body cut short or malformed raises werkzeug's ``ClientDisconnected`` or
    ``BadRequest``, which the registry answers as a client's mistake (400).
    """

    def __init__(self, rfile: Any, sock: socket.socket) -> None:
        self._rfile = rfile
        self._fill = _fill(rfile, sock)
        self._left = 0  # bytes left in the current chunk
        self.done = False  # the last chunk (and the trailers) have been read
        self.broken = False

    def _next_chunk(self) -> None:
        line: bytes = _read(self, self._rfile.readline, 4096)
        if not line.endswith(b"\n"):
            raise self._broken(ClientDisconnected("the chunked request body ended before its last chunk"))
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)  # a size, then perhaps ;extensions
        except ValueError:
            raise self._broken(BadRequest(f"malformed chunk size {line[:40]!r} in a chunked request body")) from None
        if size < 0:
            raise self._broken(BadRequest("negative chunk size in a chunked request body"))
        if size == 0:
            while True:  # trailers, up to the empty line
                trailer: bytes = _read(self, self._rfile.readline, 65536)
                if not trailer.endswith(b"\n"):
                    raise self._broken(ClientDisconnected("the chunked request body ended in its trailers"))
                if trailer in (b"\r\n", b"\n"):
                    break
            self.done = True
        self._left = size

    def _end_chunk(self) -> None:
        if _read(self, self._rfile.read, 2) != b"\r\n":
            raise self._broken(BadRequest("a chunk of the chunked request body does not end with CRLF"))

    def _broken(self, error: Exception) -> Exception:
        self.broken = True
        self.done = True
        return error

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        written = 0
        while written < len(view) and not self.done:
            if self._left == 0:
                self._next_chunk()
                continue
            wanted = min(self._left, len(view) - written)
            count: int = _read(self, self._fill, view[written : written + wanted])
            if count == 0:
                raise self._broken(ClientDisconnected("the chunked request body ended in the middle of a chunk"))
            written += count
            self._left -= count
            if self._left == 0:
                self._end_chunk()
        return written

    def read(self, size: Optional[int] = -1) -> bytes:
        if size is not None and size >= 0:
            buffer = bytearray(size)
            return bytes(memoryview(buffer)[: self.readinto(buffer)])
        pieces = []
        while not self.done:
            pieces.append(self.read(SCRATCH_SIZE))
        return b"".join(pieces)

    def readline(self, size: Optional[int] = -1) -> bytes:
        line = bytearray()
        while not self.done and (size is None or size < 0 or len(line) < size):
            if self._left == 0:
                self._next_chunk()
                continue
            wanted = self._left if size is None or size < 0 else min(self._left, size - len(line))
            piece: bytes = _read(self, self._rfile.readline, wanted)
            if not piece:
                raise self._broken(ClientDisconnected("the chunked request body ended in the middle of a chunk"))
            line += piece
            self._left -= len(piece)
            if self._left == 0:
                self._end_chunk()
            if piece.endswith(b"\n"):
                break
        return bytes(line)

    def readlines(self, hint: int = -1) -> List[bytes]:
        return list(_lines(self, hint))

    def __iter__(self) -> Iterator[bytes]:
        return _lines(self, -1)

    def drain(self, limit: int) -> bool:
        """Read and drop what the app left unread, up to ``limit`` bytes; whether the body is now complete."""
        scratch = bytearray(SCRATCH_SIZE)
        try:
            while not self.done and limit > 0:
                limit -= self.readinto(scratch)
        except BadRequest:  # ClientDisconnected too
            pass
        return self.done and not self.broken


def _fill(rfile: Any, sock: socket.socket) -> Callable[[memoryview], int]:
    """A ``readinto`` that fills the view unless the stream ends: what ``rfile`` holds, then the socket's bytes.

    Past what cheroot's reader has buffered, bytes go from the socket straight
    into the view: cheroot's reader is ``_pyio.BufferedReader``, pure Python,
    whose ``readinto`` costs more per call and can even fail ("lvalue and
    rvalue have different structures") when a read is served partly from its
    buffer, partly not.
    """

    def fill(view: memoryview) -> int:
        written = 0
        if rfile.has_data():
            written = rfile.readinto1(view)  # from its buffer only
        while written < len(view):
            count = sock.recv_into(view[written:])
            if not count:
                break
            written += count
        return written

    return fill


def _read(body: Union[RequestBody, "ChunkedRequestBody"], read: Any, argument: Any) -> Any:
    """``read(argument)`` on the connection; a timeout or reset there is the client's: ``ClientDisconnected``."""
    try:
        return read(argument)
    except OSError as error:
        body.broken = True
        raise ClientDisconnected(f"the request body could not be read: {error}") from None


def _lines(body: Union[RequestBody, ChunkedRequestBody], hint: int) -> Iterator[bytes]:
    total = 0
    while True:
        line = body.readline()
        if not line:
            return
        yield line
        total += len(line)
        if 0 < hint <= total:
            return


# cheroot, adapted


class _Gateway(cheroot_wsgi.Gateway_10):
    """The WSGI gateway: streaming bodies, the connection's socket for faults, quiet hang-ups."""

    body: Union[RequestBody, ChunkedRequestBody]

    def get_environ(self) -> Dict[str, Any]:  # type: ignore[override]  # cheroot's stub says None
        environ: Dict[str, Any] = super().get_environ()  # type: ignore[no-untyped-call]
        request = self.req
        if request.chunked_read:
            self.body = ChunkedRequestBody(request.conn.rfile, request.conn.socket)
        else:  # cheroot has checked the Content-Length already
            self.body = RequestBody(request.conn.rfile, request.conn.socket, int(environ.get("CONTENT_LENGTH") or 0))
        request.rfile = self.body  # what cheroot drains by, too
        environ["PATH_INFO"] = _path_info(request.uri)
        environ["wsgi.input"] = self.body
        environ["wsgi.input_terminated"] = True  # both kinds end where the body ends
        # The socket, under the name werkzeug's server gives it: faults.drop_connection shuts it down.
        environ["werkzeug.socket"] = request.conn.socket
        return environ

    def respond(self) -> None:
        request = self.req
        try:
            response = request.server.wsgi_app(self.env, self.start_response)
            try:
                for chunk in response:
                    if chunk:
                        self.write(chunk)
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()
            if not request.sent_headers:
                self._settle_body()
                request.ensure_headers_sent()
        except ConnectionError as error:
            # An injected fault cutting the connection, or the client hanging up: nothing more to send.
            log.debug("connection from %s ended: %s", request.conn.remote_addr, error)
            _shut(request.conn.socket)
            request.close_connection = True
            request.chunked_write = False  # no closing chunk: a cut answer must look cut
            request.ready = False  # nor a status line, if none was sent
        except BaseException:
            request.close_connection = True
            raise

    def write(self, chunk: bytes) -> None:
        if not self.req.sent_headers:
            self._settle_body()
        super().write(chunk)

    def _settle_body(self) -> None:
        """Before the answer starts: finish reading the request body, or give up the connection after it."""
        if not self.body.drain(DRAIN_LIMIT):
            self.req.close_connection = True


def _path_info(target: bytes) -> str:
    """``PATH_INFO`` as werkzeug's server (and test client) give it: every escape decoded, ``%2F`` too.

    cheroot keeps ``%2F`` encoded; the registry must see ``/v2/a/manifests/sha256:a%2Fb``
    as ``.../sha256:a/b`` over a socket exactly as it does in-process.
    """
    path = target.split(b"?", 1)[0] if target.startswith(b"/") else urlsplit(target).path  # origin or absolute form
    return unquote_to_bytes(path).decode("latin-1") or "/"


class _Request(cheroot_server.HTTPRequest):
    """A request; its target may be absolute (``PATCH http://host/v2/...``), as HTTP/1.1 servers must accept."""

    def __init__(self, server: Any, conn: Any, proxy_mode: bool = True, strict_mode: bool = True) -> None:
        super().__init__(server, conn, proxy_mode=proxy_mode, strict_mode=strict_mode)


class _Writer(StreamWriter):
    """cheroot's socket writer, but a big piece (a blob's) goes to the socket as it is, not copied into a buffer."""

    def __init__(self, sock: socket.socket, bufsize: int) -> None:
        super().__init__(sock, "wb", bufsize)
        self._socket = sock

    def write(self, b: Any) -> int:
        if len(b) < DIRECT_WRITE:
            return int(super().write(b))  # type: ignore[no-untyped-call]
        self.flush()
        self._socket.sendall(b)
        self.bytes_written += len(b)
        return len(b)


class _Connection(cheroot_server.HTTPConnection):
    """A connection: TLS handshake (or, on a plain port, a ClientHello's answer) before the first request."""

    RequestHandlerClass = _Request
    greeted = False

    def __init__(self, server: Any, sock: socket.socket, makefile: Any = MakeFile) -> None:
        super().__init__(server, sock, makefile)
        self.wfile = _Writer(sock, self.wbufsize)

    def communicate(self) -> bool:
        if not self.greeted:
            self.greeted = True
            if not self._greet():
                return False
        return bool(super().communicate())  # type: ignore[no-untyped-call]

    def _greet(self) -> bool:
        """Whether to go on to read requests from this new connection."""
        connection = self.socket
        try:
            if isinstance(connection, ssl.SSLSocket):
                try:
                    connection.do_handshake()
                except ssl.SSLError as error:
                    if getattr(error, "reason", None) == "HTTP_REQUEST":  # plain HTTP on the TLS port
                        socket.socket.sendall(connection, HTTP_TO_HTTPS)
                    raise
                return True
            if self.rfile.peek(1)[:1] == TLS_RECORD:  # a ClientHello on the plain port
                self.wfile.write(HTTPS_TO_HTTP)
                return False
            return True
        except OSError as error:  # the client went away, timed out, or failed the handshake
            log.debug("connection from %s closed before a request: %r", self.remote_addr, error)
            return False


class _TLSAdapter(Adapter):
    """TLS from an ``ssl.SSLContext``; the handshake waits for the worker thread (see ``_Connection``)."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(None, None)
        self.context = context

    def bind(self, sock: socket.socket) -> socket.socket:
        return sock

    def wrap(self, sock: socket.socket) -> Tuple[ssl.SSLSocket, Dict[str, str]]:
        wrapped = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return wrapped, {"wsgi.url_scheme": "https", "HTTPS": "on"}

    def get_environ(self) -> Dict[str, str]:
        return {}

    def makefile(self, sock: socket.socket, mode: str = "r", bufsize: int = io.DEFAULT_BUFFER_SIZE) -> Any:
        return MakeFile(sock, mode, bufsize)


class _Pool(threadpool.ThreadPool):
    """cheroot's worker pool, grown while every worker is busy; its threads are daemons, and stop in bounded time."""

    def __init__(self, server: Any, min: int, max: int) -> None:
        super().__init__(server, min=min, max=max)
        self._grow_lock = threading.Lock()
        self._started = False

    def start(self) -> None:
        pass  # cheroot starts the pool when it binds; RegistryServer.start() does, with start_workers()

    def start_workers(self) -> None:
        if not self._started:
            self._started = True
            self.grow(self.min)

    def grow(self, amount: int) -> None:
        with self._grow_lock:
            threads: List[threadpool.WorkerThread] = self._threads  # type: ignore[attr-defined]
            for _ in range(max(0, min(amount, self.max - len(threads)))):
                worker = threadpool.WorkerThread(self.server)  # type: ignore[no-untyped-call]
                worker.name = f"fakeregistry-worker-{len(threads) + 1}"
                worker.daemon = True
                worker.start()
                threads.append(worker)

    def put(self, obj: Any) -> None:
        if self.idle <= self.qsize + 1:  # keep a worker free for whoever comes next
            self.grow(1)
        super().put(obj)

    def stop(self, timeout: Any = SHUTDOWN_GRACE) -> None:
        threads: List[threadpool.WorkerThread] = self._threads  # type: ignore[attr-defined]
        deadline = time.monotonic() + (timeout or 0)
        while any(worker.conn is not None for worker in threads) and time.monotonic() < deadline:
            time.sleep(0.01)  # requests under way get a moment to finish
        for worker in threads:
            connection = worker.conn
            if connection is not None:  # then their connections are cut, so no read or write blocks
                _shut(connection.socket)
        super().stop(timeout)


class _Server(cheroot_wsgi.Server):
    ConnectionClass = _Connection
    keep_alive_conn_limit = 1000  # idle kept-alive connections; cheroot's default is 10
    expiration_interval = 0.1  # the selector's timeout: how long stop() may wait for it

    def __init__(self, address: Tuple[str, int], app: "WSGIApplication", timeout: float) -> None:
        super().__init__(
            address, app, numthreads=MIN_THREADS, max=MAX_THREADS, request_queue_size=128, server_name=address[0]
        )
        self.gateway = _Gateway
        self.timeout = timeout
        self.shutdown_timeout = SHUTDOWN_GRACE
        self.requests = _Pool(self, min=MIN_THREADS, max=MAX_THREADS)

    def error_log(self, msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
        # cheroot's complaints are about clients (bad requests, hang-ups, failed handshakes) but for ERRORs.
        log.log(logging.ERROR if level >= logging.ERROR else logging.DEBUG, "%s", msg, exc_info=traceback)


def _shut(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


# The server


class RegistryServer:
    """A WSGI app (normally a ``FakeRegistry``) on ``host:port``, served from background threads.

    ``tls=True`` serves HTTPS with a throwaway CA and a certificate for
    ``localhost``, ``127.0.0.1``, ``::1`` and ``host``, in a temporary
    directory removed by ``stop()``; ``tls="some/dir"`` keeps them there (and
    reuses them next time); a ``TLSFiles`` from ``fakeregistry.tls.make_certificates``
    is used as it is. ``ca_file`` is the CA for clients to trust.

    >>> from fakeregistry import FakeRegistry
    >>> with RegistryServer(FakeRegistry()) as server:
    ...     server.url.startswith("http://127.0.0.1:")
    True
    """

    def __init__(
        self,
        app: "WSGIApplication",
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls: Union[bool, str, "os.PathLike[str]", "TLSFiles"] = False,
        timeout: float = TIMEOUT,
    ) -> None:
        self.app = app
        self.tls: Optional[TLSFiles] = None
        self._temporary: Optional[str] = None  # a certificate directory of our own, removed by stop()
        self._thread: Optional[threading.Thread] = None
        self._stopped = False
        self._host = host
        self._server = _Server((host, port), self._dispatch, timeout)
        if tls is not False:
            from .tls import TLSFiles, make_certificates

            if isinstance(tls, TLSFiles):
                self.tls = tls
            else:
                self.tls = make_certificates(None if tls is True else tls, [host])
                if tls is True:
                    self._temporary = str(self.tls.directory)
            self._server.ssl_adapter = _TLSAdapter(self.tls.server_context())
        try:
            self._server.prepare()  # binds now, so the port is known before start()
        except BaseException:
            self._remove_certificates()
            raise

    @property
    def port(self) -> int:
        return int(self._server.bind_addr[1])

    @property
    def host(self) -> str:
        """``host:port``, ready for image references such as ``f"{server.host}/team/app:v1"``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{host}:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def ca_file(self) -> Optional[str]:
        """The CA certificate (PEM) a client trusts to talk to this server over TLS; None without TLS."""
        return str(self.tls.ca_file) if self.tls is not None else None

    def _dispatch(self, environ: "WSGIEnvironment", start_response: "StartResponse") -> Iterable[bytes]:
        return self.app(environ, start_response)

    def start(self) -> "RegistryServer":
        if self._thread is None and not self._stopped:
            self._server.requests.start_workers()
            self._thread = threading.Thread(target=self._server.serve, name="fakeregistry-server", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: close the socket and every connection; requests under way get a second to finish."""
        if self._stopped:
            return
        self._stopped = True
        self._server.stop()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self._remove_certificates()

    def _remove_certificates(self) -> None:
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = None

    def __enter__(self) -> "RegistryServer":
        return self.start()

    def __exit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], trace: Optional[TracebackType]
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<RegistryServer {self.url}>"


def serve(
    app: "WSGIApplication",
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    tls: Union[bool, str, "os.PathLike[str]", "TLSFiles"] = False,
) -> RegistryServer:
    """Serve ``app`` on a loopback socket: ``with fakeregistry.serve(reg) as server: server.url``."""
    return RegistryServer(app, host, port, tls=tls)
