"""Testing a client's retry logic with injected faults.

A registry can refuse a chunk of a blob upload with ``416 Range Not
Satisfiable`` (its copy of the upload and the client's disagree), or throttle
a client with ``429 Too Many Requests`` and a ``Retry-After`` header. Both are
hard to provoke from a real registry on demand; ``fake_registry.inject_*``
makes the next matching request answer exactly that, once, and the journal
(``fake_registry.requests``) shows afterwards what the client did about it.

Below are two chunked-upload clients built on ``requests``: a naive one that
gives up on the first error, and a correct one that resumes from the offset
the registry reports and honours ``Retry-After``. Their tests run against the
``fake_registry`` fixture, which serves ``requests`` calls to
``fake_registry.url`` (http://registry.test) in-process.
"""

import hashlib
import time
from typing import Any, Callable, List, Tuple
from urllib.parse import urljoin

import pytest
import requests

REPO = "team/app"
CHUNK_SIZE = 4096
# Three chunks: 0-4095, 4096-8191 and a short last one, 8192-10239.
DATA = bytes(range(256)) * 40


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- the naive client ----------------------------------------------------------------------------


def naive_push(base_url: str, repository: str, data: bytes, chunk_size: int = CHUNK_SIZE) -> str:
    """POST to open an upload, PATCH each chunk with its Content-Range, PUT ?digest= to finish.

    Any error answer raises ``requests.HTTPError``: a throttled or refused chunk
    ends the upload, although the registry told the client how to carry on.
    """
    started = requests.post(f"{base_url}/v2/{repository}/blobs/uploads/", timeout=10)
    started.raise_for_status()
    location = urljoin(base_url, started.headers["Location"])
    for offset in range(0, len(data), chunk_size):
        chunk = data[offset : offset + chunk_size]
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
        }
        answer = requests.patch(location, data=chunk, headers=headers, timeout=10)
        answer.raise_for_status()
        location = urljoin(location, answer.headers["Location"])  # the next request goes where the registry says
    finished = requests.put(location, params={"digest": digest_of(data)}, timeout=10)
    finished.raise_for_status()
    return digest_of(data)


# --- the correct client --------------------------------------------------------------------------


class UploadFailed(Exception):
    pass


class ResumingUploader:
    """A chunked uploader that recovers from the two answers a registry uses to steer clients.

    - ``416`` on a chunk: the registry's ``Range`` header (``0-<last byte it holds>``)
      says where the upload really stands; carry on from the byte after it, at
      the ``Location`` the 416 gave.
    - ``429`` (or ``503``) with ``Retry-After``: wait that many seconds and send
      the same request again.

    ``sleep`` is a parameter so tests can record the waits instead of waiting.
    """

    def __init__(
        self,
        base_url: str,
        *,
        chunk_size: int = CHUNK_SIZE,
        max_attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url
        self.chunk_size = chunk_size
        self.max_attempts = max_attempts
        self.sleep = sleep

    def push(self, repository: str, data: bytes) -> str:
        digest = digest_of(data)
        started = self._send("POST", f"{self.base_url}/v2/{repository}/blobs/uploads/")
        location = urljoin(self.base_url, started.headers["Location"])
        offset = 0
        for _ in range(self.max_attempts * (len(data) // self.chunk_size + 1)):  # never loop forever
            if offset >= len(data):
                break
            chunk = data[offset : offset + self.chunk_size]
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
            }
            answer = self._send("PATCH", location, data=chunk, headers=headers, accept=(202, 416))
            # Always continue at the Location of the latest answer (registries may change it).
            location = urljoin(location, answer.headers.get("Location", location))
            if answer.status_code == 416:
                offset = self.resume_offset(answer)
            else:
                offset += len(chunk)
        else:
            raise UploadFailed(f"the upload did not complete after {self.max_attempts} attempts per chunk")
        self._send("PUT", location, params={"digest": digest})
        return digest

    @staticmethod
    def resume_offset(answer: requests.Response) -> int:
        """The first byte the registry does not have, from its ``Range: 0-<end>`` header.

        The end is inclusive. An empty upload also reads ``0-0`` (a registry
        cannot say "nothing" in this header), so ``0-0`` is taken as empty:
        right unless the first chunk was a single byte.
        """
        start, _, end = answer.headers["Range"].partition("-")
        if start != "0" or not end.isdigit():
            raise UploadFailed(f"cannot resume from Range {answer.headers['Range']!r}")
        return 0 if end == "0" else int(end) + 1

    def _send(
        self, method: str, url: str, accept: Tuple[int, ...] = (200, 201, 202, 204), **options: Any
    ) -> requests.Response:
        """One request, sent again after a 429 or 503 once ``Retry-After`` seconds have passed."""
        for _ in range(self.max_attempts):
            answer = requests.request(method, url, timeout=10, **options)
            if answer.status_code in (429, 503):
                self.sleep(retry_after(answer))
                continue
            if answer.status_code not in accept:
                answer.raise_for_status()
                raise UploadFailed(f"{method} {url}: unexpected {answer.status_code}")
            return answer
        raise UploadFailed(f"{method} {url}: still throttled after {self.max_attempts} attempts")


def retry_after(answer: requests.Response, default: float = 1.0) -> float:
    """``Retry-After`` in seconds (this client does not handle the HTTP-date form)."""
    try:
        return max(0.0, float(answer.headers["Retry-After"]))
    except (KeyError, ValueError):
        return default


# --- tests: the naive client fails ---------------------------------------------------------------


def test_naive_client_works_when_nothing_goes_wrong(fake_registry):
    digest = naive_push(fake_registry.url, REPO, DATA)

    assert fake_registry.get_blob(REPO, digest) == DATA


def test_naive_client_gives_up_on_a_refused_chunk(fake_registry):
    # after=1: the first chunk goes through, the second is answered 416 RANGE_INVALID.
    fake_registry.inject_chunk_range_error(after=1)

    with pytest.raises(requests.HTTPError) as raised:
        naive_push(fake_registry.url, REPO, DATA)

    assert raised.value.response.status_code == 416
    # The answer said where to resume; the naive client did not listen.
    assert raised.value.response.headers["Range"] == f"0-{CHUNK_SIZE - 1}"
    with pytest.raises(KeyError):
        fake_registry.get_blob(REPO, digest_of(DATA))


def test_naive_client_gives_up_when_throttled(fake_registry):
    fake_registry.inject_throttling(route="blob-upload-chunk", method="PATCH", retry_after=2, after=1)

    with pytest.raises(requests.HTTPError) as raised:
        naive_push(fake_registry.url, REPO, DATA)

    assert raised.value.response.status_code == 429
    assert raised.value.response.json()["errors"][0]["code"] == "TOOMANYREQUESTS"


# --- tests: the correct client recovers ----------------------------------------------------------


def patches(fake_registry) -> List[Tuple[str, int]]:
    """(Content-Range sent, status answered) for each PATCH, from the journal."""
    return [(r.headers["Content-Range"], r.status) for r in fake_registry.requests.filter(method="PATCH")]


def test_resumes_at_the_offset_the_registry_reports(fake_registry):
    fault = fake_registry.inject_chunk_range_error(after=1)

    digest = ResumingUploader(fake_registry.url).push(REPO, DATA)

    assert fake_registry.get_blob(REPO, digest) == DATA
    # The journal tells the story: the second chunk was refused, the 416's Range
    # said the registry holds bytes 0-4095, and the client went on from 4096 in
    # the same session: no new POST, no chunk sent from 0 again.
    assert patches(fake_registry) == [
        ("0-4095", 202),
        ("4096-8191", 416),
        ("4096-8191", 202),
        ("8192-10239", 202),
    ]
    fake_registry.requests.assert_called(times=1, route="blob-upload", method="POST")
    refused = fake_registry.requests.filter(status=416)
    assert [record.fault for record in refused] == [fault.id]  # the 416 was the injected one
    assert fault.hits == 1


def test_a_416_on_the_first_chunk_restarts_at_zero(fake_registry):
    # The session is empty, so its Range reads "0-0": resume from byte 0.
    fake_registry.inject_chunk_range_error()

    digest = ResumingUploader(fake_registry.url).push(REPO, DATA)

    assert fake_registry.get_blob(REPO, digest) == DATA
    assert patches(fake_registry)[:2] == [("0-4095", 416), ("0-4095", 202)]


def test_waits_retry_after_then_retries_once(fake_registry):
    waits: List[float] = []
    fault = fake_registry.inject_throttling(route="blob-upload-chunk", method="PATCH", retry_after=2, after=1)

    # A fake sleep: the test records the wait instead of spending two seconds on it.
    digest = ResumingUploader(fake_registry.url, sleep=waits.append).push(REPO, DATA)

    assert fake_registry.get_blob(REPO, digest) == DATA
    assert waits == [2.0]  # exactly what Retry-After said
    # Retried exactly once, with the same chunk.
    assert patches(fake_registry) == [
        ("0-4095", 202),
        ("4096-8191", 429),
        ("4096-8191", 202),
        ("8192-10239", 202),
    ]
    (throttled,) = fake_registry.requests.filter(status=429)
    assert (throttled.error, throttled.fault) == ("TOOMANYREQUESTS", fault.id)


def test_retries_at_once_on_retry_after_zero(fake_registry):
    # With the real time.sleep: Retry-After is whole seconds (RFC 9110), so 0 keeps the test fast.
    fault = fake_registry.inject_throttling(route="blob-upload", retry_after=0)

    ResumingUploader(fake_registry.url).push(REPO, DATA)

    assert fake_registry.requests.filter(fault=fault.id)[0].response_headers["Retry-After"] == "0"
    assert [r.status for r in fake_registry.requests.filter(route="blob-upload")] == [429, 202]


def test_both_faults_in_one_upload(fake_registry):
    # Faults apply in the order they were added; each takes one request here.
    waits: List[float] = []
    fake_registry.inject_throttling(route="blob-upload-chunk", method="PATCH", retry_after=1)
    fake_registry.inject_chunk_range_error(after=1)

    digest = ResumingUploader(fake_registry.url, sleep=waits.append).push(REPO, DATA)

    assert fake_registry.get_blob(REPO, digest) == DATA
    assert waits == [1.0]
    assert [status for _, status in patches(fake_registry)] == [429, 202, 416, 202, 202]


def test_gives_up_when_the_registry_keeps_refusing(fake_registry):
    # times=None: every PATCH is refused until the fault is removed. A correct
    # client still ends, with an error, instead of looping for ever.
    fake_registry.inject_chunk_range_error(times=None)

    with pytest.raises(UploadFailed):
        ResumingUploader(fake_registry.url, max_attempts=3).push(REPO, DATA)


def test_gives_up_when_throttled_for_ever(fake_registry):
    waits: List[float] = []
    fake_registry.inject_throttling(route="blob-upload", retry_after=1, times=None)

    with pytest.raises(UploadFailed, match="still throttled"):
        ResumingUploader(fake_registry.url, max_attempts=3, sleep=waits.append).push(REPO, DATA)

    assert waits == [1.0, 1.0, 1.0]
