"""Blob upload sessions: bytes hashed as they stream in, held in one buffer.

One sha256 object per session is fed each chunk as it arrives, so completing
an upload costs no second pass over the data (a sha512 digest, rare, is the
exception). A chunk is applied whole or not at all: if the body breaks off or
its length is wrong, the buffer and the hash go back to where they were.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from typing import BinaryIO, Optional, Tuple

from .errors import RegistryError

READ_SIZE = 1024 * 1024


class Upload:
    def __init__(self, name: str) -> None:
        self.id = str(uuid.uuid4())
        self.name = name
        self.buffer = bytearray()
        self.hasher = hashlib.sha256()
        # Chunks of one session are applied one at a time, in arrival order.
        self.lock = threading.Lock()

    @property
    def size(self) -> int:
        return len(self.buffer)

    def checkpoint(self) -> Tuple[int, "hashlib._Hash"]:
        return len(self.buffer), self.hasher.copy()

    def restore(self, checkpoint: Tuple[int, "hashlib._Hash"]) -> None:
        size, hasher = checkpoint
        del self.buffer[size:]
        self.hasher = hasher

    def append(self, stream: BinaryIO, expected_length: Optional[int] = None) -> int:
        """Read ``stream`` to its end into the session; return the bytes added."""
        checkpoint = self.checkpoint()
        try:
            while True:
                chunk = stream.read(READ_SIZE)
                if not chunk:
                    break
                self.hasher.update(chunk)
                self.buffer += chunk
            received = len(self.buffer) - checkpoint[0]
            if expected_length is not None and received != expected_length:
                raise RegistryError(
                    "SIZE_INVALID",
                    f"the chunk declared {expected_length} bytes but {received} arrived",
                    detail={"expected": expected_length, "received": received},
                )
        except BaseException:
            self.restore(checkpoint)
            raise
        return received

    def digest(self, algorithm: str) -> str:
        if algorithm == "sha256":
            return f"sha256:{self.hasher.hexdigest()}"
        return f"{algorithm}:{hashlib.new(algorithm, self.buffer).hexdigest()}"

    def content(self) -> memoryview:
        """The uploaded bytes, read-only and uncopied; the buffer can no longer grow."""
        return memoryview(self.buffer).toreadonly()

    def range_header(self) -> str:
        # The reference answers "0-0" for an empty session, "0-<last byte>" otherwise.
        return f"0-{max(self.size - 1, 0)}"
