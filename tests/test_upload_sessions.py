"""Upload sessions below HTTP: hashing that overlaps storing, rollback, concurrency."""

import hashlib
import io
import random
import threading

import pytest

from fakeregistry.errors import RegistryError
from fakeregistry.uploads import READ_SIZE, Upload

DATA = random.Random(7).randbytes(5 * READ_SIZE + 12345)


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class ReadOnlyStream:
    """A WSGI input with read() only, as PEP 3333 promises."""

    def __init__(self, data):
        self.data = io.BytesIO(data)

    def read(self, size=-1):
        return self.data.read(size)


class BreaksAfter(io.RawIOBase):
    """A body that ends with an error after ``limit`` bytes, like a dropped connection."""

    def __init__(self, data, limit):
        self.data = io.BytesIO(data[:limit])

    def readable(self):
        return True

    def readinto(self, buffer):
        count = self.data.readinto(buffer)
        if not count:
            raise ConnectionResetError("peer went away")
        return count


@pytest.mark.parametrize("with_length", [True, False])
def test_large_chunks_of_any_size_hash_right(with_length):
    upload = Upload("team/app")
    cuts = [0, 10, READ_SIZE, 3 * READ_SIZE + 7, 3 * READ_SIZE + 8, len(DATA)]
    for start, end in zip(cuts, cuts[1:]):
        chunk = DATA[start:end]
        upload.append(io.BytesIO(chunk), len(chunk) if with_length else None)
    assert upload.digest("sha256") == sha256(DATA)
    assert upload.content() == DATA


def test_stream_without_readinto():
    upload = Upload("team/app")
    upload.append(ReadOnlyStream(DATA), len(DATA))
    assert upload.digest("sha256") == sha256(DATA)


def test_a_body_that_breaks_off_mid_way_is_rolled_back():
    upload = Upload("team/app")
    upload.append(io.BytesIO(DATA[:100]), 100)
    with pytest.raises(ConnectionResetError):
        upload.append(BreaksAfter(DATA[100:], 3 * READ_SIZE), len(DATA) - 100)
    assert upload.size == 100
    upload.append(io.BytesIO(DATA[100:]), len(DATA) - 100)
    assert upload.digest("sha256") == sha256(DATA)


def test_a_body_of_the_wrong_length_is_rolled_back():
    upload = Upload("team/app")
    with pytest.raises(RegistryError) as raised:
        upload.append(io.BytesIO(DATA), len(DATA) + 1)
    assert raised.value.code == "SIZE_INVALID"
    assert upload.size == 0
    assert upload.digest("sha256") == sha256(b"")


def test_truncate_recomputes_the_hash():
    upload = Upload("team/app")
    upload.append(io.BytesIO(DATA), len(DATA))
    upload.truncate(READ_SIZE)
    assert upload.digest("sha256") == sha256(DATA[:READ_SIZE])


def test_sha512_digest():
    upload = Upload("team/app")
    upload.append(io.BytesIO(DATA), len(DATA))
    assert upload.digest("sha512") == "sha512:" + hashlib.sha512(DATA).hexdigest()


def test_concurrent_sessions_share_read_buffers_safely():
    payloads = [random.Random(seed).randbytes(4 * READ_SIZE + seed) for seed in range(6)]
    results = {}

    def push(index):
        upload = Upload("team/app")
        data = payloads[index]
        for start in range(0, len(data), 3 * READ_SIZE // 2):
            chunk = data[start : start + 3 * READ_SIZE // 2]
            upload.append(io.BytesIO(chunk), len(chunk))
        results[index] = upload.digest("sha256")

    threads = [threading.Thread(target=push, args=(i,)) for i in range(len(payloads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == {i: sha256(data) for i, data in enumerate(payloads)}


def test_no_hashing_thread_outlives_a_completed_upload():
    upload = Upload("team/app")
    for _ in range(3):
        upload.append(io.BytesIO(DATA), len(DATA))
    upload.digest("sha256")
    assert not [t for t in threading.enumerate() if t.name == "fakeregistry-hash"]
