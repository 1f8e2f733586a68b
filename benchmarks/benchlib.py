"""What the benchmark scripts share: naming the machine, PASS/FAIL verdicts, a WSGI start_response."""

from __future__ import annotations

import platform
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


class StartResponse:
    """A minimal WSGI ``start_response`` that remembers the status and headers."""

    __slots__ = ("status", "headers")

    def __init__(self) -> None:
        self.status = ""
        self.headers: List[Tuple[str, str]] = []

    def __call__(self, status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        self.status = status
        self.headers = headers
        return _write

    def header(self, name: str) -> Optional[str]:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


def _write(data: bytes) -> None:  # the legacy write() callable; fakeregistry never uses it
    raise AssertionError("unexpected write() call")


def call_and_drain(app: Callable[..., Iterable[bytes]], environ: Dict[str, Any], start_response: StartResponse) -> None:
    """Call a WSGI app with a fresh copy of ``environ`` (the app writes into it), read the body, close it."""
    body = app(environ.copy(), start_response)
    for _ in body:
        pass
    close = getattr(body, "close", None)
    if close is not None:
        close()
