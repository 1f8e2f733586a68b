"""Blob upload sessions: bytes hashed as they stream in, held in one buffer.

One sha256 object per session is fed each chunk as it arrives, so completing
an upload costs no second pass over the data (a sha512 digest, rare, is the
exception). A chunk is applied whole or not at all: if the body breaks off or
its length is wrong, the buffer and the hash go back to where they were.

Storing a large body costs about as much as hashing it (the stored copy lands
in fresh memory), so past the first read the hashing runs on a helper thread
while the request's thread stores: hashlib releases the GIL on large updates.
A request does not wait for its own hashing; whoever reads the hash does.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import uuid
from typing import IO, Iterator, Optional, Tuple

from .errors import RegistryError

READ_SIZE = 1024 * 1024
HASH_QUEUE_DEPTH = 2  # chunks read ahead of the hashing, at most
MAX_SPARE_BUFFERS = 16


class Upload:
    def __init__(self, name: str) -> None:
        self.id = str(uuid.uuid4())
        self.name = name
        self.buffer = bytearray()
        self.hash = SessionHash()
        # Chunks of one session are applied one at a time, in arrival order.
        self.lock = threading.Lock()

    @property
    def size(self) -> int:
        return len(self.buffer)

    def truncate(self, size: int) -> None:
        """Forget what arrived past ``size`` (a chunk that failed); rare, so the hash is redone."""
        del self.buffer[size:]
        self.hash.restart(memoryview(self.buffer))

    def append(self, stream: IO[bytes], expected_length: Optional[int] = None, limit: Optional[int] = None) -> int:
        """Read ``stream`` to its end into the session; return the bytes added.

        ``limit`` caps the session's size: a chunk that would pass it is refused
        (413 SIZE_INVALID) before it is read when its length is declared, else
        as soon as it crosses the limit.
        """
        start = len(self.buffer)
        if limit is not None and expected_length is not None and start + expected_length > limit:
            raise too_large(start + expected_length, limit)
        try:
            try:
                for chunk, spare in read_chunks(stream, expected_length):
                    self.hash.update(chunk, spare)
                    self.buffer += chunk
                    if limit is not None and len(self.buffer) > limit:
                        raise too_large(len(self.buffer), limit)
            finally:
                self.hash.end_of_request()
            received = len(self.buffer) - start
            if expected_length is not None and received != expected_length:
                raise RegistryError(
                    "SIZE_INVALID",
                    f"the chunk declared {expected_length} bytes but {received} arrived",
                    detail={"expected": expected_length, "received": received},
                )
        except BaseException:
            self.truncate(start)
            raise
        return received

    def digest(self, algorithm: str) -> str:
        if algorithm == "sha256":
            return f"sha256:{self.hash.hexdigest()}"
        return f"{algorithm}:{hashlib.new(algorithm, self.buffer).hexdigest()}"

    def content(self) -> memoryview:
        """The uploaded bytes, read-only and uncopied; the buffer can no longer grow."""
        return memoryview(self.buffer).toreadonly()

    def range_header(self) -> str:
        # The reference answers "0-0" for an empty session, "0-<last byte>" otherwise.
        return f"0-{max(self.size - 1, 0)}"


def too_large(size: int, limit: int) -> RegistryError:
    return RegistryError(
        "SIZE_INVALID",
        f"the upload would hold {size} bytes, over this registry's max_blob_size of {limit}",
        status=413,
        detail={"limit": limit},
    )


# Read buffers, shared by all sessions: a buffer comes back here once hashed.
_spare_buffers: "queue.SimpleQueue[bytearray]" = queue.SimpleQueue()


def read_chunks(stream: IO[bytes], expected_length: Optional[int]) -> Iterator[Tuple[memoryview, Optional[bytearray]]]:
    """The stream's bytes as (chunk, spare buffer holding it or None), up to READ_SIZE each.

    A body that may be small is first read plainly, so it costs no buffer; the
    rest are read into spare buffers, saving a copy per read and fresh memory
    for each.
    """
    readinto = getattr(stream, "readinto", None)  # PEP 3333 promises only read()
    if readinto is None or expected_length is None or expected_length <= READ_SIZE:
        first = stream.read(READ_SIZE)
        if not first:
            return
        yield memoryview(first), None
    while readinto is None:
        chunk = stream.read(READ_SIZE)
        if not chunk:
            return
        yield memoryview(chunk), None
    while True:
        try:
            spare = _spare_buffers.get_nowait()
        except queue.Empty:
            spare = bytearray(READ_SIZE)
        count = readinto(spare)
        if not count:
            _release(spare)
            return
        yield memoryview(spare)[:count], spare


def _release(spare: bytearray) -> None:
    if _spare_buffers.qsize() < MAX_SPARE_BUFFERS:
        _spare_buffers.put(spare)


class SessionHash:
    """An upload session's sha256, fed in arrival order.

    Chunks held in spare buffers are hashed by a helper thread, one per
    request; each helper starts by waiting for the one before, so order holds
    without the request waiting. Reading the hash waits for every helper.
    """

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._helper: Optional[threading.Thread] = None  # the newest, maybe still hashing
        self._chunks: "Optional[queue.Queue[Optional[Tuple[memoryview, Optional[bytearray]]]]]" = None

    def update(self, chunk: memoryview, spare: Optional[bytearray]) -> None:
        if spare is None and self._chunks is None and not (self._helper and self._helper.is_alive()):
            self._hash.update(chunk)  # a small body, or the start of one: no thread needed
            return
        if self._chunks is None:
            self._chunks = queue.Queue(HASH_QUEUE_DEPTH)
            self._helper = threading.Thread(
                target=self._hash_chunks, args=(self._chunks, self._helper), name="fakeregistry-hash", daemon=True
            )
            self._helper.start()
        self._chunks.put((chunk, spare))

    def end_of_request(self) -> None:
        """No more chunks from this request; its helper finishes on its own."""
        if self._chunks is not None:
            self._chunks.put(None)
            self._chunks = None

    def _hash_chunks(
        self,
        chunks: "queue.Queue[Optional[Tuple[memoryview, Optional[bytearray]]]]",
        previous: Optional[threading.Thread],
    ) -> None:
        if previous is not None:
            previous.join()
        while (item := chunks.get()) is not None:
            chunk, spare = item
            self._hash.update(chunk)
            if spare is not None:
                chunk.release()
                _release(spare)

    def wait(self) -> None:
        if self._helper is not None:
            self._helper.join()
            self._helper = None

    def hexdigest(self) -> str:
        self.wait()
        return self._hash.hexdigest()

    def restart(self, data: memoryview) -> None:
        self.wait()
        self._hash = hashlib.sha256(data)
