"""Failure injection: rules that make matching requests fail, deterministically.

A ``Fault`` says which requests it takes (route, method, repository glob,
reference; ``times``, ``after``, ``every``, ``probability`` with ``seed``) and
what happens to them: an error answer in the registry's own dialect, a delay,
a redirect, a dropped connection, or a body that is cut short, corrupted or
sent slowly. The first active fault that takes a request applies to it.
"""

from __future__ import annotations

import fnmatch
import itertools
import math
import random
import socket
import threading
import time
from dataclasses import dataclass, field, fields
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Type, Union

from werkzeug.wsgi import ClosingIterator

from .auth import Authenticator, challenge
from .errors import ERROR_CODES, RegistryError
from .routing import ROUTE_NAMES, Route
from .store import Store

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment
    from werkzeug.wrappers import Request

# The spec code each status speaks, unless the fault names one.
STATUS_CODES = {401: "UNAUTHORIZED", 403: "DENIED", 405: "UNSUPPORTED", 416: "RANGE_INVALID", 429: "TOOMANYREQUESTS"}
STATUS_CODES[503] = "UNAVAILABLE"
NOT_FOUND_CODES = {
    "blob": "BLOB_UNKNOWN",
    "manifest": "MANIFEST_UNKNOWN",
    "blob-upload-chunk": "BLOB_UPLOAD_UNKNOWN",
    "referrers": "MANIFEST_UNKNOWN",
}
AUTH_SCHEMES = ("bearer", "basic")
_ids = itertools.count(1)


class DropConnection(ConnectionAbortedError):
    """Raised to end the connection without an answer (or in the middle of one)."""


@dataclass(eq=False)
class Fault:
    """One injected failure. Build it with ``FakeRegistry.inject``; the fields are its options."""

    route: str = "*"
    # which requests
    method: Union[str, Sequence[str], None] = None
    repository: Optional[str] = None  # a glob: "team/*"
    reference: Optional[str] = None  # a tag or digest
    times: Optional[int] = 1  # None: every match, until removed
    after: int = 0  # let this many matching requests through first
    every: Optional[int] = None  # then take every n-th one
    probability: Optional[float] = None  # then take each with this probability...
    seed: int = 0  # ...from a generator seeded with this, so runs repeat
    # what happens to them
    status: Optional[int] = None
    error: Optional[str] = None  # a spec error code; by default the status's own
    message: Optional[str] = None
    retry_after: Optional[float] = None  # seconds, for 429 and 503
    auth_challenge: Union[bool, str] = False  # True, "bearer" or "basic": a 401 with a challenge
    drop_upload: bool = False  # the upload session is really gone
    delay: Optional[float] = None  # seconds before answering
    redirect: bool = False  # blob GET: 307 to a second URL the fake serves
    disconnect: bool = False  # close the connection without an answer
    truncate: Optional[int] = None  # close the connection after this many body bytes
    corrupt: bool = False  # flip a byte of the body, so the digest no longer matches
    bytes_per_second: Optional[float] = None  # send the body slowly
    # state
    id: str = field(default_factory=lambda: str(next(_ids)))
    hits: int = 0
    seen: int = 0  # matching requests so far, taken or not
    _remove: Optional[Callable[["Fault"], None]] = field(default=None, repr=False)
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_fault(self)
        self._random = random.Random(self.seed)

    @property
    def active(self) -> bool:
        return self.times is None or self.hits < self.times

    def takes(self, route: Route, method: str) -> bool:
        """Whether this fault applies to the request; counts it. Call under the fault list's lock."""
        if not self.active or not self._matches(route, method):
            return False
        self.seen += 1
        eligible = self.seen - self.after
        if eligible <= 0 or (self.every is not None and eligible % self.every != 0):
            return False
        if self.probability is not None and self._random.random() >= self.probability:
            return False
        self.hits += 1
        return True

    def _matches(self, route: Route, method: str) -> bool:
        if self.route == "*":
            # "*" is the registry API: the token endpoint and storage only when named.
            if route.name in ("token", "storage"):
                return False
        elif self.route != route.name:
            return False
        # A fault whose action cannot apply to the request leaves it alone, and stays for one it can.
        if self.redirect and (route.name != "blob" or method not in ("GET", "HEAD")):
            return False
        if self.drop_upload and "upload_id" not in route.args:
            return False
        if self.method is not None:
            methods = {self.method} if isinstance(self.method, str) else set(self.method)
            if method not in {m.upper() for m in methods}:
                return False
        if self.repository is not None and not fnmatch.fnmatchcase(route.repository or "", self.repository):
            return False
        return self.reference is None or self.reference == route.reference

    def error_code(self, route: Route) -> Optional[str]:
        """The spec code of the error answer, or None when the fault answers no error."""
        if self.auth_challenge:
            return self.error or "UNAUTHORIZED"
        if self.status is None:
            return self.error
        if self.error:
            return self.error
        if self.status == 404:
            return NOT_FOUND_CODES.get(route.name or "", "NAME_UNKNOWN")
        return STATUS_CODES.get(self.status, "UNKNOWN")

    def remove(self) -> None:
        if self._remove is not None:
            self._remove(self)

    def __enter__(self) -> "Fault":
        return self

    def __exit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], trace: Optional[TracebackType]
    ) -> None:
        self.remove()

    def as_json(self) -> Dict[str, Any]:
        document = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
        if isinstance(self.method, (list, tuple)):
            document["method"] = list(self.method)
        # Options left at "off" are omitted; times=None ("every match") is not an "off".
        return {k: v for k, v in document.items() if k == "times" or (v is not None and v is not False)}


# What ``inject`` (and the command line, and the control API) accept.
OPTION_NAMES = tuple(f.name for f in fields(Fault) if f.init and f.name not in ("id", "hits", "seen", "_remove"))


def check_fault(fault: Fault) -> None:
    """Reject options that cannot work, with a message that says why."""
    methods = [fault.method] if isinstance(fault.method, str) else fault.method
    if methods is not None and (
        not isinstance(methods, (list, tuple)) or not all(isinstance(m, str) and m.isalpha() for m in methods)
    ):
        raise ValueError(f"method must be an HTTP method or a list of them, not {fault.method!r}")
    for name in ("route", "repository", "reference", "error", "message"):
        value = getattr(fault, name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be a string, not {value!r}")
    for name in ("drop_upload", "redirect", "disconnect", "corrupt"):
        if not isinstance(getattr(fault, name), bool):
            raise ValueError(f"{name} must be true or false, not {getattr(fault, name)!r}")
    if not isinstance(fault.seed, int) or isinstance(fault.seed, bool):
        raise ValueError(f"seed must be an integer, not {fault.seed!r}")
    if fault.after is None:
        raise ValueError("after must be a non-negative integer, not None")
    if fault.route != "*" and fault.route not in ROUTE_NAMES:
        raise ValueError(f"unknown route {fault.route!r}; use one of {', '.join(ROUTE_NAMES)} or '*'")
    if fault.error is not None and fault.error not in ERROR_CODES:
        raise ValueError(f"unknown error code {fault.error!r}; use one of {', '.join(ERROR_CODES)}")
    if fault.status is not None and (not isinstance(fault.status, int) or not 400 <= fault.status <= 599):
        raise ValueError(f"status must be a 4xx or 5xx, not {fault.status}")
    if not isinstance(fault.auth_challenge, bool) and fault.auth_challenge not in AUTH_SCHEMES:
        raise ValueError(f"auth_challenge takes True, 'bearer' or 'basic', not {fault.auth_challenge!r}")
    for name in ("times", "after", "every", "truncate"):
        value = getattr(fault, name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
    if fault.every == 0:
        raise ValueError("every must be 1 or more")
    if fault.probability is not None and not 0 <= fault.probability <= 1:
        raise ValueError(f"probability must be between 0 and 1, not {fault.probability}")
    for name in ("delay", "retry_after", "bytes_per_second"):
        value = getattr(fault, name)
        if value is not None and (not isinstance(value, (int, float)) or value < 0):
            raise ValueError(f"{name} must be a non-negative number of seconds, not {value!r}")
    if fault.bytes_per_second == 0:
        raise ValueError("bytes_per_second must be more than 0")
    if fault.redirect and fault.route not in ("blob", "*"):
        raise ValueError("redirect applies to blob GETs: use route 'blob'")


class FaultList:
    """The registry's faults, in the order they were added; safe across server threads."""

    def __init__(self) -> None:
        self._faults: List[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        fault._remove = self.remove
        with self._lock:
            self._faults.append(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)

    def remove_id(self, fault_id: str) -> bool:
        with self._lock:
            for fault in self._faults:
                if fault.id == fault_id:
                    self._faults.remove(fault)
                    return True
        return False

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def __iter__(self) -> Iterator[Fault]:
        with self._lock:
            return iter(list(self._faults))

    def __len__(self) -> int:
        return len(self._faults)

    def take(self, route: Route, request: "Request") -> Optional[Fault]:
        """The first fault that takes this request, if any; the faults after it do not see it."""
        if not self._faults:  # the common case, without the lock
            return None
        with self._lock:
            return next((fault for fault in self._faults if fault.takes(route, request.method)), None)


# Body wrappers: what a fault does to an answer already under way.


def drop_connection(environ: "WSGIEnvironment") -> None:
    """On a socket server, shut the socket, so the client sees the connection end at once.

    fakeregistry's server, like werkzeug's, puts it in ``environ["werkzeug.socket"]``; in-process there is none.
    """
    connection = environ.get("werkzeug.socket")
    if connection is not None:
        try:
            connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def truncated(body: Iterable[bytes], limit: int, environ: "WSGIEnvironment") -> Iterator[bytes]:
    sent = 0
    for chunk in body:
        if sent + len(chunk) >= limit:
            yield chunk[: limit - sent]
            drop_connection(environ)
            raise DropConnection(f"fakeregistry fault: connection closed after {limit} body bytes")
        sent += len(chunk)
        yield chunk


def corrupted(body: Iterable[bytes]) -> Iterator[bytes]:
    flipped = False
    for chunk in body:
        if not flipped and chunk:
            chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
            flipped = True
        yield chunk


def slowed(body: Iterable[bytes], bytes_per_second: float) -> Iterator[bytes]:
    piece = max(1, int(bytes_per_second / 10))  # ten pieces a second
    for chunk in body:
        for start in range(0, len(chunk), piece):
            part = chunk[start : start + piece]
            time.sleep(len(part) / bytes_per_second)
            yield part


def body_faults(fault: Fault, body: Iterable[bytes], environ: "WSGIEnvironment") -> Iterable[bytes]:
    """The answer's body as the fault sends it: corrupted, slowed, cut short (in that order)."""
    changed = body
    if fault.corrupt:
        changed = corrupted(changed)
    if fault.bytes_per_second is not None:
        changed = slowed(changed, fault.bytes_per_second)
    if fault.truncate is not None:
        changed = truncated(changed, fault.truncate, environ)
    if changed is body:
        return body
    close = getattr(body, "close", None)
    return ClosingIterator(changed, [close] if close is not None else None)


def fault_error(fault: Fault, request: "Request", route: Route, store: Store, auth: Authenticator) -> RegistryError:
    """The fault's answer, in the registry's dialect: the headers the spec pairs with the status."""
    code = fault.error_code(route)
    assert code is not None
    status = 401 if fault.auth_challenge else fault.status or ERROR_CODES[code][0]
    headers: Dict[str, str] = {}
    if status == 401 and auth.mode is not None:
        headers["WWW-Authenticate"] = auth.challenge(request, route)  # the one the registry really uses
    elif status == 401:  # a 401 always carries a challenge (RFC 9110)
        scheme = fault.auth_challenge if isinstance(fault.auth_challenge, str) else "bearer"
        headers["WWW-Authenticate"] = challenge(scheme, request, route)
    if fault.retry_after is not None:
        headers["Retry-After"] = str(math.ceil(fault.retry_after))  # delay-seconds: a whole number (RFC 9110)
    upload = store.find_upload(route.repository, route.args.get("upload_id"))
    if upload is not None and status == 416:
        # Where the client can resume.
        headers["Range"] = upload.range_header()
        headers["Location"] = f"{request.host_url}v2/{upload.name}/blobs/uploads/{upload.id}"
        headers["Docker-Upload-UUID"] = upload.id
    if route.name == "blob" and status == 416 and route.reference in store.blobs:
        headers["Content-Range"] = f"bytes */{len(store.blobs[route.reference])}"
    message = fault.message or f"{ERROR_CODES.get(code, ERROR_CODES['UNKNOWN'])[1]} (injected by fakeregistry)"
    return RegistryError(code, message, status=status, headers=headers, detail={"fault": fault.id})


TEXT_OPTIONS = frozenset({"route", "method", "repository", "reference", "error", "message"})


def parse_fault_spec(spec: str) -> Dict[str, Any]:
    """``ROUTE[:METHOD][:STATUS][:key=value...]`` as ``inject`` options.

    ``blob-upload-chunk:PATCH:416:times=1``, ``blob:GET:delay=0.5:times=none``,
    ``manifest:auth_challenge=true``, ``manifest:reference=sha256:ab...:status=404``.
    Values read as none, true/false, numbers, or strings; a digest's colon is kept.
    """
    route, *parts = spec.split(":")
    options: Dict[str, Any] = {"route": route}
    key = None
    for part in parts:
        if key is None and part.isalpha() and part.isupper():
            options["method"] = part
        elif key is None and part.isdigit() and len(part) == 3:
            options["status"] = int(part)
        elif "=" in part:
            key, value = part.split("=", 1)
            if key not in OPTION_NAMES:
                raise ValueError(f"unknown fault option {key!r} in {spec!r}; known: {', '.join(OPTION_NAMES)}")
            options[key] = value
        elif key is not None:  # the rest of a value that holds a colon (a digest)
            options[key] += f":{part}"
        else:
            raise ValueError(f"cannot read {part!r} in fault {spec!r}: expected METHOD, STATUS or key=value")
    return {key: value if key in TEXT_OPTIONS else _spec_value(value) for key, value in options.items()}


def _spec_value(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    lowered = value.lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value
