"""The request journal: what the client asked, and what it was answered.

Every request is recorded when it arrives; its status and error code when the
answer is ready; the bytes sent and the duration once the body is sent. The
``Journal`` filters records and asserts on them with failure messages that
list the similar requests it did see.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import IO, Any, Dict, Iterable, Iterator, List, Optional
from urllib.parse import parse_qsl

from werkzeug.datastructures import Headers, MultiDict

CRITERIA = ("route", "method", "repository", "reference", "status", "error", "fault", "user")


@dataclass
class RequestRecord:
    method: str
    path: str
    query: str
    route: Optional[str]  # the reference registry's route name; None when no route took the path
    repository: Optional[str]
    reference: Optional[str]  # manifest tag or digest, or blob or subject digest
    upload_id: Optional[str]
    headers: Headers  # the request's headers
    status: int = 0  # 0 until the answer is ready
    error: Optional[str] = None  # the spec error code answered, if any
    bytes_received: int = 0
    bytes_sent: int = 0
    duration: Optional[float] = None  # seconds until the whole answer was sent
    fault: Optional[str] = None  # the id of the injected fault that shaped the answer
    user: Optional[str] = None  # who the request authenticated as
    scopes: List[str] = field(default_factory=list)  # token endpoint: the scopes asked for...
    granted: List[str] = field(default_factory=list)  # ...and those granted
    response_headers: Headers = field(default_factory=Headers, repr=False)  # the answer's headers
    started: float = field(default_factory=time.perf_counter, repr=False)

    @property
    def args(self) -> MultiDict[str, str]:
        """The query parameters, decoded (``record.args["digest"]``)."""
        return MultiDict(parse_qsl(self.query, keep_blank_values=True))

    def matches(self, **criteria: Any) -> bool:
        return all(value is None or getattr(self, key) == value for key, value in criteria.items())

    def describe(self) -> str:
        query = f"?{self.query}" if self.query else ""
        route = self.route or "no route"
        answer = f"{self.status} {self.error}" if self.error else str(self.status)
        injected = f" (fault {self.fault})" if self.fault else ""
        return f"{self.method} {self.path}{query} [{route}] -> {answer}{injected}"

    def as_json(self) -> Dict[str, Any]:
        skip = ("headers", "response_headers", "started")
        fields = {key: value for key, value in vars(self).items() if key not in skip}
        return {**fields, "headers": dict(self.headers), "response_headers": dict(self.response_headers)}


class Journal(List[RequestRecord]):
    """``reg.requests``: the records in arrival order, with filters and assertions.

    With a ``limit``, only the latest records are kept (a long-running server's memory stays bounded).
    """

    def __init__(self, limit: Optional[int] = None) -> None:
        super().__init__()
        self.limit = limit

    def record(self, record: RequestRecord) -> None:
        self.append(record)
        if self.limit is not None and len(self) > self.limit + self.limit // 10:
            del self[: len(self) - self.limit]  # in batches, so trimming stays cheap per request

    def filter(
        self,
        route: Optional[str] = None,
        method: Optional[str] = None,
        repository: Optional[str] = None,
        reference: Optional[str] = None,
        status: Optional[int] = None,
        error: Optional[str] = None,
        fault: Optional[str] = None,
        user: Optional[str] = None,
    ) -> List[RequestRecord]:
        """The records matching every criterion given (None matches anything)."""
        criteria: Dict[str, Any] = dict(route=route, method=method, repository=repository, reference=reference)
        criteria.update(status=status, error=error, fault=fault, user=user)
        return [record for record in list(self) if record.matches(**criteria)]

    def assert_called(self, times: Optional[int] = None, **criteria: Any) -> List[RequestRecord]:
        """Assert that requests matching ``criteria`` were made: ``times`` of them, or at least one."""
        _check_criteria(criteria)
        found = self.filter(**criteria)
        if (times is None and not found) or (times is not None and len(found) != times):
            expected = "at least one request" if times is None else f"{times} request{'s' * (times != 1)}"
            message = f"expected {expected} matching {_format(criteria)}, saw {len(found)}"
            raise AssertionError(message + self._seen(criteria))
        return found

    def assert_not_called(self, **criteria: Any) -> None:
        self.assert_called(times=0, **criteria)

    def _seen(self, criteria: Dict[str, Any]) -> str:
        given = {key: value for key, value in criteria.items() if value is not None}
        similar = [r for r in list(self) if any(getattr(r, key) == value for key, value in given.items())]
        shown, label = (similar, "similar requests") if similar else (list(self), "requests")
        if not shown:
            return "; no requests at all were made"
        lines = "\n".join(f"  {record.describe()}" for record in shown[-20:])
        more = f" (the last 20 of {len(shown)})" if len(shown) > 20 else ""
        return f"; {label}{more}:\n{lines}"


def _check_criteria(criteria: Dict[str, Any]) -> None:
    unknown = set(criteria) - set(CRITERIA)
    if unknown:
        raise TypeError(f"unknown criteria {sorted(unknown)}; use {', '.join(CRITERIA)}")


def _format(criteria: Dict[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in criteria.items() if value is not None) or "anything"


class CountingInput:
    """Wraps ``wsgi.input`` to count the bytes the registry read from it."""

    def __init__(self, stream: IO[bytes], record: RequestRecord) -> None:
        self.stream = stream
        self.record = record
        if hasattr(stream, "readinto"):  # keep the fast path visible to readers
            self.readinto = self._readinto

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.record.bytes_received += len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        data = self.stream.readline(size)
        self.record.bytes_received += len(data)
        return data

    def _readinto(self, buffer: Any) -> int:
        count = self.stream.readinto(buffer) or 0  # type: ignore[attr-defined]
        self.record.bytes_received += count
        return count


class CountingBody:
    """Wraps a WSGI response body to count the bytes sent; the record's duration ends with the body."""

    def __init__(self, body: Iterable[bytes], record: RequestRecord) -> None:
        self.body = body
        self.record = record

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.body:
            self.record.bytes_sent += len(chunk)
            yield chunk
        self._finish()

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self._finish()

    def _finish(self) -> None:
        if self.record.duration is None:
            self.record.duration = time.perf_counter() - self.record.started
