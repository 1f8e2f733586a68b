#!/usr/bin/env python3
"""Reference benchmark: fakeregistry's server against the reference registry, side by side, over loopback.

Three servers, each a subprocess on 127.0.0.1, get the same workload from the
same client in one run: ``fakeregistry serve --port 0`` (the command line
only, so whatever socket server it ships is measured), and Debian's
``docker-registry`` (distribution 2.8) twice, with filesystem storage on
tmpfs (the registry:2 default, its root under /dev/shm) and with in-memory
storage.

    python benchmarks/bench_reference.py            # full run: 200 images, 256 MiB blob, about two minutes
    python benchmarks/bench_reference.py --quick    # smoke run: 50 images, 32 MiB blob, under 20 seconds

The client is ``http.client`` with one keep-alive connection per client; the
concurrent figures use one client process per connection (``--client-mode``).
See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import multiprocessing
import os
import platform
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from benchlib import cpu_name

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "src")

MiB = 1024 * 1024
MB = 1_000_000  # throughput is reported in MB/s (10**6 bytes per second)
HOST = "127.0.0.1"
LAYER_SIZE = 4096
SEND_PIECE = MiB  # big bodies go to the socket in pieces this big, so a deadline can cut them off
READ_PIECE = MiB  # and come back in pieces this big
REQUEST_TIMEOUT = 60.0  # seconds a small request may take before the run calls it an error
PHASE_TIMEOUT = 300.0  # seconds a whole small-image phase may take
START_TIMEOUT = 30.0  # seconds a server may take to answer GET /v2/

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MANIFEST_ACCEPT = f"{OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json"

FAKE = "fakeregistry"
REFERENCES = {"filesystem": "reference-fs", "inmemory": "reference-mem"}
LABELS = {FAKE: "fakeregistry", "reference-fs": "ref-fs (tmpfs)", "reference-mem": "ref-inmemory"}


class BenchError(RuntimeError):
    pass


# --------------------------------------------------------------------------- servers (subprocesses)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def answers(port: int) -> bool:
    """Whether GET /v2/ on ``port`` gets an HTTP answer (200, or 401 from a registry wanting credentials)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        connection.request("GET", "/v2/")
        response = connection.getresponse()
        response.read()
        return response.status in (200, 401)
    except OSError:
        return False
    finally:
        connection.close()


def tail(path: str, lines: int = 5) -> str:
    try:
        with open(path, errors="replace") as log:
            return " | ".join(line.rstrip() for line in log.readlines()[-lines:])
    except OSError:
        return ""


class Server:
    """A registry in a subprocess on 127.0.0.1; ``pid`` is the process measured (CPU time, VmHWM)."""

    def __init__(self, key: str, command: List[str], workdir: str, env: Optional[Dict[str, str]] = None) -> None:
        self.key = key
        self.label = LABELS.get(key, key)
        self.command = command
        self.workdir = workdir
        self.env = env
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.port = 0
        self.stdout_path = os.path.join(workdir, f"{key}.stdout")
        self.stderr_path = os.path.join(workdir, f"{key}.stderr")

    def start(self) -> None:
        raise NotImplementedError

    def _spawn(self, command: List[str]) -> None:
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=self.env, cwd=self.workdir
            )

    def _wait_until_it_answers(self, deadline: float) -> None:
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(
                    f"{self.label}: exited with status {self.process.returncode}: {tail(self.stderr_path)}"
                )
            if self.port and answers(self.port):
                return
            time.sleep(0.02)
        raise BenchError(f"{self.label}: no answer to GET /v2/ within {START_TIMEOUT:g} s: {tail(self.stderr_path)}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def cpu_seconds(self) -> float:
        """CPU time (user + system, every thread) the server process has used."""
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def status_kib(self, name: str) -> Optional[int]:
        try:
            with open(f"/proc/{self.pid}/status") as status:
                for line in status:
                    if line.startswith(name + ":"):
                        return int(line.split()[1])
        except OSError:
            pass
        return None

    def stored_bytes(self) -> Optional[int]:
        """Bytes the server keeps outside its own memory (on tmpfs); None when it keeps everything in memory."""
        return None

    def cleanup(self) -> None:
        pass


class FakeRegistryServer(Server):
    """``fakeregistry serve --port 0``: the URL is the first line it prints; or a command with ``{port}``."""

    def start(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        if any("{port}" in part for part in self.command):
            self.port = free_port()
            self._spawn([part.replace("{port}", str(self.port)) for part in self.command])
        else:
            self._spawn(self.command)
            self.port = self._port_from_stdout(deadline)
        self._wait_until_it_answers(deadline)

    def _port_from_stdout(self, deadline: float) -> int:
        assert self.process is not None
        while time.monotonic() < deadline:
            with open(self.stdout_path, "rb") as out:
                text = out.read().decode(errors="replace")
            if "\n" in text:
                found = re.search(r"https?://[^\s/]+:(\d+)", text.split("\n", 1)[0])
                if not found:
                    raise BenchError(f"{self.label}: no URL in its first line {text.splitlines()[0]!r}")
                return int(found.group(1))
            if self.process.poll() is not None:
                raise BenchError(
                    f"{self.label}: exited with status {self.process.returncode}: {tail(self.stderr_path)}"
                )
            time.sleep(0.02)
        raise BenchError(f"{self.label}: printed no URL within {START_TIMEOUT:g} s")


class ReferenceServer(Server):
    """``docker-registry serve CONFIG``: filesystem storage under /dev/shm, or in-memory storage."""

    def __init__(self, key: str, binary: str, storage: str, workdir: str, shm: str) -> None:
        super().__init__(key, [binary, "serve"], workdir)
        self.storage = storage
        self.shm = shm
        self.root: Optional[str] = None

    def start(self) -> None:
        if self.storage == "filesystem":
            self.root = tempfile.mkdtemp(prefix="fakeregistry-bench-", dir=self.shm)
            storage = f"  filesystem:\n    rootdirectory: {self.root}\n"
        else:
            storage = "  inmemory: {}\n"
        for attempt in range(3):  # the free port may be taken between probing and binding it
            self.port = free_port()
            config = os.path.join(self.workdir, f"{self.key}.yml")
            with open(config, "w") as out:
                out.write(
                    "version: 0.1\n"
                    "log:\n  level: error\n  accesslog:\n    disabled: true\n"
                    "storage:\n" + storage + "  cache:\n    blobdescriptor: inmemory\n"  # as registry:2 ships
                    "  delete:\n    enabled: true\n"  # the blob runs delete the previous push's blob
                    f"http:\n  addr: {HOST}:{self.port}\n"
                )
            self._spawn(self.command + [config])
            try:
                self._wait_until_it_answers(time.monotonic() + START_TIMEOUT)
                return
            except BenchError:
                self.stop()
                if attempt == 2 or "address already in use" not in tail(self.stderr_path):
                    raise

    def stored_bytes(self) -> Optional[int]:
        if self.root is None:
            return None
        total = 0
        for directory, _, files in os.walk(self.root):
            for name in files:
                try:
                    total += os.lstat(os.path.join(directory, name)).st_blocks * 512
                except OSError:
                    pass
        return total

    def cleanup(self) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


# --------------------------------------------------------------------------- the client


def target_of(location: str) -> str:
    """The request target (path and query) of a Location header, absolute (distribution) or not (fakeregistry)."""
    parts = urlsplit(location)
    return parts.path + ("?" + parts.query if parts.query else "")


def with_digest(target: str, digest: str) -> str:
    return f"{target}{'&' if '?' in target else '?'}digest={digest}"


class Connection:
    """One keep-alive ``http.client`` connection; counts requests and the TCP connections it had to open."""

    def __init__(self, port: int, timeout: float = REQUEST_TIMEOUT) -> None:
        self.http = http.client.HTTPConnection(HOST, port, timeout=timeout)
        self.requests = 0
        self.opened = 0

    def call(
        self,
        method: str,
        target: str,
        body: Optional[bytes] = None,
        headers: Optional[Dict[str, str]] = None,
        expect: Tuple[int, ...] = (200,),
    ) -> Tuple[http.client.HTTPResponse, bytes]:
        if self.http.sock is None:
            self.opened += 1  # http.client reconnects by itself after a Connection: close
        self.http.request(method, target, body=body, headers=headers or {})
        response = self.http.getresponse()
        data = response.read()
        self.requests += 1
        if response.status not in expect:
            raise BenchError(f"{method} {target[:80]} answered {response.status}: {data[:200]!r}")
        return response, data

    def close(self) -> None:
        self.http.close()


@dataclass
class Image:
    """A small image, built before any timing: a config, two 4 KiB layers, an OCI manifest, a tag."""

    repository: str
    tag: str
    blobs: List[Tuple[str, bytes]]  # (digest, content): the config, then the layers
    manifest: bytes
    manifest_digest: str = field(init=False)

    def __post_init__(self) -> None:
        self.manifest_digest = sha256(self.manifest)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_image(repository: str, tag: str) -> Image:
    layers = [os.urandom(LAYER_SIZE) for _ in range(2)]
    layer_digests = [sha256(layer) for layer in layers]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"bench": f"{repository}:{tag}"}},
            "rootfs": {"type": "layers", "diff_ids": layer_digests},
        },
        separators=(",", ":"),
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": digest, "size": LAYER_SIZE} for digest in layer_digests],
        },
        separators=(",", ":"),
    ).encode()
    blobs = [(sha256(config), config)] + list(zip(layer_digests, layers))
    return Image(repository, tag, blobs, manifest)


def push_images(connection: Connection, images: Sequence[Image]) -> None:
    """Per blob POST an upload, PUT ?digest= with the body (monolithic); then PUT the manifest under its tag."""
    for image in images:
        base = f"/v2/{image.repository}"
        for digest, content in image.blobs:
            response, _ = connection.call("POST", f"{base}/blobs/uploads/", b"", expect=(202,))
            location = target_of(response.getheader("Location", ""))
            connection.call(
                "PUT",
                with_digest(location, digest),
                content,
                {"Content-Type": "application/octet-stream"},
                expect=(201,),
            )
        connection.call(
            "PUT", f"{base}/manifests/{image.tag}", image.manifest, {"Content-Type": OCI_MANIFEST}, expect=(201,)
        )


def pull_images(connection: Connection, images: Sequence[Image]) -> None:
    """GET the manifest by tag, then every blob it names; every body is checked against what was pushed."""
    accept = {"Accept": MANIFEST_ACCEPT}
    for image in images:
        base = f"/v2/{image.repository}"
        _, manifest = connection.call("GET", f"{base}/manifests/{image.tag}", headers=accept)
        if manifest != image.manifest:
            raise BenchError(f"{base}/manifests/{image.tag}: not the manifest pushed")
        for digest, content in image.blobs:
            _, data = connection.call("GET", f"{base}/blobs/{digest}")
            if data != content:
                raise BenchError(f"{base}/blobs/{digest}: not the blob pushed")


JOBS: Dict[str, Callable[[Connection, Sequence[Image]], None]] = {"push": push_images, "pull": pull_images}


def client(job: str, port: int, images: Sequence[Image], barrier: Any, results: Any) -> None:
    """One client: connect and warm up, wait for the others, run ``job`` over ``images``, report."""
    connection = Connection(port)
    try:
        connection.call("GET", "/v2/")  # connect now, not in the timed part
        barrier.wait(PHASE_TIMEOUT)
        cpu, start = time.thread_time(), time.perf_counter()
        JOBS[job](connection, images)
        end = time.perf_counter()
        results.put(
            {
                "start": start,
                "end": end,
                "cpu": time.thread_time() - cpu,  # this client's own CPU time
                "requests": connection.requests - 1,
                "opened": connection.opened,
            }
        )
    except BaseException as error:  # reported by the parent
        barrier.abort()
        results.put({"error": f"{type(error).__name__}: {error}"})
    finally:
        connection.close()


def run_clients(mode: str, job: str, port: int, shards: List[List[Image]]) -> Dict[str, Any]:
    """``len(shards)`` clients at once, each on its own connection: wall time from the first start to the last end."""
    workers: List[Any]
    if mode == "processes":
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
        barrier: Any = context.Barrier(len(shards))
        results: Any = context.Queue()
        workers = [context.Process(target=client, args=(job, port, shard, barrier, results)) for shard in shards]
    else:
        barrier, results = threading.Barrier(len(shards)), queue.Queue()
        workers = [threading.Thread(target=client, args=(job, port, shard, barrier, results)) for shard in shards]
    for worker in workers:
        worker.start()
    reports = []
    try:
        for _ in workers:
            reports.append(results.get(timeout=PHASE_TIMEOUT))
    except queue.Empty:
        reports.append({"error": f"no result within {PHASE_TIMEOUT:g} s"})
    finally:
        for worker in workers:
            worker.join(10)
            if mode == "processes" and worker.is_alive():
                worker.terminate()
                worker.join(5)
    errors = [report["error"] for report in reports if "error" in report]
    if errors:
        raise BenchError(errors[0])
    wall = max(report["end"] for report in reports) - min(report["start"] for report in reports)
    cpu = sum(report["cpu"] for report in reports)
    return {
        "wall": wall,
        "requests": sum(report["requests"] for report in reports),
        "client_cpu": cpu,
        "opened": sum(report["opened"] for report in reports),
    }


# --------------------------------------------------------------------------- the big blob


class CutOff(Exception):
    """The server did not take the blob within the time limit."""

    def __init__(self, sent: int) -> None:
        super().__init__(sent)
        self.sent = sent


def _send_body(connection: http.client.HTTPConnection, view: memoryview, deadline: float, already: int) -> None:
    sock = connection.sock
    assert sock is not None
    for offset in range(0, len(view), SEND_PIECE):
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise CutOff(already + offset)
        sock.settimeout(remaining)  # a server that does not drain the socket in time: cut off
        try:
            sock.sendall(view[offset : offset + SEND_PIECE])
        except socket.timeout:
            raise CutOff(already + offset) from None


def _answer(connection: http.client.HTTPConnection, deadline: float, expect: int, sent: int) -> str:
    sock = connection.sock
    assert sock is not None
    sock.settimeout(max(0.01, deadline - time.perf_counter()))
    try:
        response = connection.getresponse()
        data = response.read()
    except socket.timeout:
        raise CutOff(sent) from None
    if response.status != expect:
        raise BenchError(f"answered {response.status}: {data[:200]!r}")
    return target_of(response.getheader("Location", ""))


def _upload(connection: http.client.HTTPConnection, repository: str, deadline: float) -> str:
    connection.request("POST", f"/v2/{repository}/blobs/uploads/", body=b"")
    return _answer(connection, deadline, 202, 0)


def _put_headers(connection: http.client.HTTPConnection, method: str, target: str, headers: Dict[str, str]) -> None:
    connection.putrequest(method, target, skip_accept_encoding=True)
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders()


def push_monolithic(port: int, repository: str, data: bytes, digest: str, limit: float) -> Dict[str, Any]:
    """POST, then one PUT ?digest= whose body is the whole blob, streamed from memory."""
    connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
    connection.connect()
    start = time.perf_counter()
    deadline = start + limit
    try:
        location = _upload(connection, repository, deadline)
        _put_headers(
            connection,
            "PUT",
            with_digest(location, digest),
            {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
        )
        _send_body(connection, memoryview(data), deadline, 0)
        _answer(connection, deadline, 201, len(data))
        return {"seconds": time.perf_counter() - start}
    except CutOff as cut:
        return {"seconds": time.perf_counter() - start, "cut_off": cut.sent}
    finally:
        connection.close()


def push_chunked(port: int, repository: str, data: bytes, digest: str, chunk: int, limit: float) -> Dict[str, Any]:
    """POST, one PATCH per chunk with Content-Range (following each Location), then PUT ?digest= without a body."""
    connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
    connection.connect()
    view = memoryview(data)
    start = time.perf_counter()
    deadline = start + limit
    try:
        location = _upload(connection, repository, deadline)
        for offset in range(0, len(data), chunk):
            piece = view[offset : offset + chunk]
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Length": str(len(piece)),
                "Content-Range": f"{offset}-{offset + len(piece) - 1}",
            }
            _put_headers(connection, "PATCH", location, headers)
            _send_body(connection, piece, deadline, offset)
            location = _answer(connection, deadline, 202, offset + len(piece))
        _put_headers(connection, "PUT", with_digest(location, digest), {"Content-Length": "0"})
        _answer(connection, deadline, 201, len(data))
        return {"seconds": time.perf_counter() - start}
    except CutOff as cut:
        return {"seconds": time.perf_counter() - start, "cut_off": cut.sent}
    finally:
        connection.close()


def pull_blob(port: int, repository: str, digest: str, size: int, limit: float) -> Dict[str, Any]:
    """GET the blob, read in 1 MiB pieces into one buffer (nothing kept)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
    connection.connect()
    buffer = bytearray(READ_PIECE)
    start = time.perf_counter()
    deadline = start + limit
    received = 0
    try:
        connection.request("GET", f"/v2/{repository}/blobs/{digest}")
        response = connection.getresponse()
        if response.status != 200:
            raise BenchError(f"GET blob answered {response.status}: {response.read()[:200]!r}")
        while True:
            if time.perf_counter() > deadline:
                return {"seconds": time.perf_counter() - start, "cut_off": received}
            count = response.readinto(buffer)
            if not count:
                break
            received += count
        seconds = time.perf_counter() - start
        if received != size:
            raise BenchError(f"GET blob: {received} of {size} bytes")
        return {"seconds": seconds}
    finally:
        connection.close()


def delete_blob(port: int, repository: str, digest: str) -> None:
    """Drop the blob (404 when it is not there), so the next push stores it again."""
    connection = Connection(port)
    try:
        connection.call("DELETE", f"/v2/{repository}/blobs/{digest}", expect=(202, 404))
    finally:
        connection.close()


def make_blob(size: int) -> bytes:
    block = os.urandom(min(size, MiB))
    return block * (size // len(block)) + block[: size % len(block)]


# --------------------------------------------------------------------------- the run


@dataclass
class Figure:
    key: str
    label: str
    unit: str
    lower_is_better: bool = False
    targeted: bool = True


def figures(args: argparse.Namespace) -> List[Figure]:
    n, c, size = args.images, args.clients, f"{args.blob_mib:g} MiB blob"
    return [
        Figure("push_1", f"push {n} small images, 1 client", "images/s"),
        Figure("pull_1", "pull them (manifest + 3 blobs), 1 client", "requests/s"),
        Figure("push_n", f"push {n} small images, {c} clients", "images/s"),
        Figure("pull_n", f"pull them, {c} clients", "requests/s"),
        Figure("blob_put", f"{size}: push, one PUT", "MB/s"),
        Figure("blob_patch", f"{size}: push, {args.chunk_mib:g} MiB PATCHes", "MB/s"),
        Figure("blob_get", f"{size}: pull, 1 MiB reads", "MB/s"),
        Figure("rss_start", "RSS at start", "MiB", True, False),
        Figure("hwm_small", "peak RSS, after the small images", "MiB", True, False),
        Figure("hwm_end", "peak RSS, after the whole workload", "MiB", True, False),
        Figure("tmpfs", "content kept on tmpfs, at the end", "MiB", True, False),
        Figure("memory", "peak RSS + tmpfs content, at the end", "MiB", True, False),
    ]


def best(result: Dict[str, Any], key: str, value: float, extra: Dict[str, Any]) -> None:
    """Keep the best value of ``key`` over rounds (and the details of that round)."""
    if key not in result or value > result[key]:
        result[key] = value
        result[f"{key}_details"] = extra


def small_phase(
    server: Server, result: Dict[str, Any], args: argparse.Namespace, one: List[Image], many: List[Image]
) -> None:
    """Push ``one`` from one client and pull it back; push ``many`` from N clients; pull ``one`` with N clients."""
    n, clients = args.images, args.clients

    def split(images: List[Image], parts: int) -> List[List[Image]]:
        return [images[index::parts] for index in range(parts)]

    steps = (
        ("push_1", "push", [one], n),
        ("pull_1", "pull", [one], None),
        ("push_n", "push", split(many, clients), n),
        ("pull_n", "pull", split(one, clients), None),
    )
    for key, job, shards, images in steps:
        cpu = server.cpu_seconds()
        run = run_clients(args.client_mode, job, server.port, shards)
        run["server_cpu"] = server.cpu_seconds() - cpu
        value = (images if images is not None else run["requests"]) / run["wall"]
        best(result, key, value, run)


def blob_phase(server: Server, result: Dict[str, Any], args: argparse.Namespace, data: bytes, digest: str) -> None:
    port, size, repository = server.port, len(data), "bench/blob"
    runs: List[Tuple[str, Callable[[], Dict[str, Any]]]] = [
        ("blob_put", lambda: push_monolithic(port, repository, data, digest, args.blob_timeout)),
        ("blob_patch", lambda: push_chunked(port, repository, data, digest, args.chunk, args.blob_timeout)),
    ]
    for key, push in runs:
        if result.get(f"{key}_cut_off"):
            continue  # too slow once: not again
        delete_blob(port, repository, digest)  # each push stores the blob again
        cpu = server.cpu_seconds()
        run = push()
        run["server_cpu"] = server.cpu_seconds() - cpu
        if "cut_off" in run:  # an upper bound: the bytes sent (some perhaps still in the kernel) per second
            result[f"{key}_cut_off"] = run
            result[key] = run["cut_off"] / run["seconds"] / MB
            delete_blob(port, repository, digest)
            time.sleep(0.2)  # let the server drop the half upload
        else:
            best(result, key, size / run["seconds"] / MB, run)
    if result.get("blob_put_cut_off") and result.get("blob_patch_cut_off"):
        return  # the blob is not there to pull
    for _ in range(args.pulls):
        cpu = server.cpu_seconds()
        run = pull_blob(port, repository, digest, size, args.blob_timeout)
        run["server_cpu"] = server.cpu_seconds() - cpu
        if "cut_off" in run:
            result["blob_get_cut_off"] = run
            result["blob_get"] = max(result.get("blob_get", 0.0), run["cut_off"] / run["seconds"] / MB)
            break
        best(result, "blob_get", size / run["seconds"] / MB, run)


def peak_kib(server: Server) -> Optional[int]:
    return server.status_kib("VmHWM")


def build_servers(args: argparse.Namespace, workdir: str) -> List[Server]:
    servers: List[Server] = []
    env = dict(os.environ)
    if args.fakeregistry_cmd:
        command = shlex.split(args.fakeregistry_cmd)
    else:
        command = [sys.executable, "-m", "fakeregistry", "serve", "--port", "0"]
        probe = subprocess.run([sys.executable, "-c", "import fakeregistry"], capture_output=True)
        if probe.returncode != 0:  # a checkout without installing: use its src/
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.abspath(SRC), env.get("PYTHONPATH")]))
    servers.append(FakeRegistryServer(FAKE, command, workdir, env))
    for storage in args.references:
        servers.append(ReferenceServer(REFERENCES[storage], args.registry, storage, workdir, args.shm))
    return servers


def run(args: argparse.Namespace) -> Tuple[List[Server], Dict[str, Dict[str, Any]]]:
    results: Dict[str, Dict[str, Any]] = {}
    workdir = tempfile.mkdtemp(prefix="fakeregistry-bench-")
    servers = build_servers(args, workdir)
    alive: List[Server] = []

    def each(step: Callable[[Server, Dict[str, Any]], None]) -> None:
        for server in list(alive):
            try:
                step(server, results[server.key])
            except Exception as error:  # one server failing does not end the run
                results[server.key]["error"] = f"{type(error).__name__}: {error}"
                alive.remove(server)

    try:
        for server in servers:
            results[server.key] = {}
            try:
                server.start()
                alive.append(server)
            except Exception as error:
                results[server.key]["error"] = f"{type(error).__name__}: {error}"
                server.stop()
        for server in alive:
            results[server.key]["rss_start"] = (server.status_kib("VmRSS") or 0) / 1024
            results[server.key]["pid"] = server.pid
            results[server.key]["command"] = " ".join(server.command)

        for round_ in range(args.rounds):  # servers interleaved: each round gives them the same conditions
            # The same images (the same bytes) for every server; new ones each round, so each push stores them.
            one = [make_image("bench/one", f"r{round_}-{index:04d}") for index in range(args.images)]
            many = [make_image("bench/many", f"r{round_}-{index:04d}") for index in range(args.images)]
            each(lambda server, result, one=one, many=many: small_phase(server, result, args, one, many))
        each(lambda server, result: result.__setitem__("hwm_small", (peak_kib(server) or 0) / 1024))

        data = make_blob(args.blob)
        digest = sha256(data)
        for _ in range(args.repeats):
            each(lambda server, result: blob_phase(server, result, args, data, digest))

        def end(server: Server, result: Dict[str, Any]) -> None:
            result["hwm_end"] = (peak_kib(server) or 0) / 1024
            stored = server.stored_bytes()
            result["tmpfs"] = None if stored is None else stored / MiB
            result["memory"] = result["hwm_end"] + (result["tmpfs"] or 0)

        each(end)
    finally:
        for server in servers:
            try:
                server.stop()
            finally:
                server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    return servers, results


# --------------------------------------------------------------------------- report


def registry_version(binary: str) -> str:
    try:
        output = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
        return output.strip().split()[-1]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "?"


def fakeregistry_version() -> str:
    try:
        return metadata.version("fakeregistry")
    except metadata.PackageNotFoundError:
        return "?"


def ratio_of(figure: Figure, results: Dict[str, Dict[str, Any]], keys: List[str]) -> Optional[float]:
    """fakeregistry against the better reference: >= 1.0 means fakeregistry is as good or better."""
    ours = results.get(FAKE, {}).get(figure.key)
    theirs = [results[key].get(figure.key) for key in keys if key != FAKE and key in results]
    theirs = [value for value in theirs if value is not None]
    if ours is None or not theirs:
        return None
    if figure.lower_is_better:
        return min(theirs) / ours if ours else None
    better = max(theirs)
    return ours / better if better else None


def cell(figure: Figure, result: Dict[str, Any]) -> str:
    value = result.get(figure.key)
    if value is None:
        return "error" if "error" in result and figure.targeted else "-"
    text = f"{value:,.0f}" if value >= 100 or figure.unit == "MiB" else f"{value:,.1f}"
    if result.get(f"{figure.key}_cut_off"):
        text = "<" + text  # cut off: an upper bound
    return text


def report(servers: List[Server], results: Dict[str, Dict[str, Any]], args: argparse.Namespace, elapsed: float) -> int:
    keys = [server.key for server in servers]
    width = 104
    print("=" * width)
    print(
        f"fakeregistry {fakeregistry_version()} against the reference registry (distribution "
        f"{registry_version(args.registry)})" + ("  [--quick: small sizes, indicative only]" if args.quick else "")
    )
    print(
        f"Python {platform.python_version()}, {platform.system()} {platform.machine()}, {cpu_name()}, "
        f"{os.cpu_count()} CPUs; every server a subprocess on {HOST}, the same client for all"
    )
    print(
        f"client: http.client, one keep-alive connection per client, {args.clients} concurrent clients as "
        f"{args.client_mode}; small images: best of {args.rounds} rounds; blob: best of {args.repeats} "
        f"pushes and {args.repeats * args.pulls} pulls, cut off after {args.blob_timeout:g} s"
    )
    fake = next((server for server in servers if server.key == FAKE), None)
    if fake is not None:
        print(f"fakeregistry: {' '.join(fake.command)}")
    print("=" * width)
    print()
    header = f"{'figure':46} {'unit':>10}" + "".join(f" {LABELS.get(key, key):>15}" for key in keys)
    print(header + f" {'ratio':>7} {'result':>7}")
    failures = 0
    for figure in figures(args):
        if figure.key == "rss_start":
            print("memory (lower is better; ratio = better reference / fakeregistry)")
        ratio = ratio_of(figure, results, keys)
        if figure.targeted:
            verdict = "n/a" if ratio is None else ("PASS" if ratio >= 1.0 else "FAIL")
            failures += verdict != "PASS"
        else:
            verdict = ""
        if figure.key == "tmpfs":
            ratio = None
        ratio_text = "" if ratio is None else f"{ratio:.2f}x"
        cells = "".join(f" {cell(figure, results.get(key, {})):>15}" for key in keys)
        print(f"{figure.label:46} {figure.unit:>10}{cells} {ratio_text:>7} {verdict:>7}")

    print()
    print("Where the time goes (CPU time over the best round; the server's is user + system over all its threads)")
    print(f"{'':52}" + "".join(f" {LABELS.get(key, key):>16}" for key in keys))
    for figure in figures(args)[:4]:
        cells = ""
        for key in keys:
            details = results.get(key, {}).get(f"{figure.key}_details")
            if details:
                server_us = details["server_cpu"] / details["requests"] * 1e6
                client_us = details["client_cpu"] / details["requests"] * 1e6
                cells += f" {f'{server_us:.0f} / {client_us:.0f}':>16}"
            else:
                cells += f" {'-':>16}"
        print(f"{'us/request, server / client: ' + figure.key.replace('_n', f'_{args.clients}'):52}{cells}")
    for figure in figures(args)[4:7]:
        cells = ""
        for key in keys:
            details = results.get(key, {}).get(f"{figure.key}_details")
            if not details:
                seconds = "-"
            elif details["server_cpu"] < 0.02:  # under two clock ticks: only a bound
                seconds = f"<{0.02 / (args.blob / 1e9):.2f}"
            else:
                seconds = f"{details['server_cpu'] / (args.blob / 1e9):.2f}"
            cells += f" {seconds:>16}"
        print(f"{'server CPU s/GB: ' + figure.label:52}{cells}")
    for label, value in (
        ("us/request wall, 1-client push", lambda d: f"{d['wall'] / d['requests'] * 1e6:.0f}"),
        ("client busy, share of wall, 1-client push", lambda d: f"{d['client_cpu'] / d['wall'] * 100:.0f}%"),
    ):
        cells = ""
        for key in keys:
            details = results.get(key, {}).get("push_1_details")
            cells += f" {value(details) if details else '-':>16}"
        print(f"{label:52}{cells}")
    cells = ""
    for key in keys:
        details = results.get(key, {}).get("pull_n_details")
        opened = f"{details['opened']} for {details['requests']}" if details else "-"
        cells += f" {opened:>16}"
    print(f"{f'TCP connections for {args.clients}-client pull requests':52}{cells}")

    notes = []
    for key in keys:
        result = results.get(key, {})
        for blob_key, what in (("blob_put", "one-PUT push"), ("blob_patch", "chunked push"), ("blob_get", "pull")):
            cut = result.get(f"{blob_key}_cut_off")
            if cut:
                notes.append(
                    f"{LABELS.get(key, key)}: the {what} was cut off after {cut['seconds']:.1f} s with "
                    f"{cut['cut_off'] / MiB:.0f} of {args.blob / MiB:g} MiB sent; '<' marks that upper bound"
                )
        if "error" in result:
            notes.append(f"{LABELS.get(key, key)} failed: {result['error']}")
    if any(results.get(key, {}).get("blob_put_cut_off") and results[key].get("blob_patch_cut_off") for key in keys):
        notes.append("a server whose pushes were all cut off holds less content at the end than the others")
    if notes:
        print()
        for note in notes:
            print(f"  {note}")
    targeted = sum(figure.targeted for figure in figures(args))
    print()
    print(
        f"Targets (ratio >= 1.0 against the better reference): {targeted - failures}/{targeted} PASS"
        f"    (total time {elapsed:.1f} s)"
    )
    return failures


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 50 images, 32 MiB blob, one round")
    parser.add_argument("--images", type=int, help="small images per push figure (default 200, 50 with --quick)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    parser.add_argument(
        "--client-mode",
        choices=("processes", "threads"),
        default="processes",
        help="concurrent clients as processes (default: no GIL shared between them) or threads",
    )
    parser.add_argument("--rounds", type=int, help="rounds of the small-image figures (default 3, 1 with --quick)")
    parser.add_argument("--blob-mib", type=float, help="blob size in MiB (default 256, 32 with --quick)")
    parser.add_argument("--chunk-mib", type=float, default=8, help="PATCH size for the chunked push (default 8)")
    parser.add_argument("--repeats", type=int, help="pushes of the blob each way (default 2, 1 with --quick)")
    parser.add_argument("--pulls", type=int, help="pulls of the blob per repeat (default 3, 2 with --quick)")
    parser.add_argument(
        "--blob-timeout",
        type=float,
        help="seconds before one blob push or pull is cut off (default 30, 2 with --quick)",
    )
    parser.add_argument(
        "--fakeregistry-cmd",
        metavar="COMMAND",
        help="the command line to benchmark instead of 'python -m fakeregistry serve --port 0': it prints its "
        "URL on its first line, or contains {port}",
    )
    parser.add_argument("--registry", default="docker-registry", help="the reference registry's binary")
    parser.add_argument(
        "--references",
        default="filesystem,inmemory",
        help="reference configurations, comma-separated (default: filesystem,inmemory)",
    )
    parser.add_argument("--shm", default="/dev/shm", help="tmpfs directory for the filesystem reference's root")
    parser.add_argument("--json", metavar="FILE", help="also write the raw figures to FILE")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when a target fails")
    args = parser.parse_args(argv)

    args.images = args.images or (50 if args.quick else 200)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.blob_mib = args.blob_mib or (32 if args.quick else 256)
    args.repeats = args.repeats or (1 if args.quick else 2)
    args.pulls = args.pulls or (2 if args.quick else 3)
    args.blob_timeout = args.blob_timeout or (2.0 if args.quick else 30.0)
    args.blob = int(args.blob_mib * MiB)
    args.chunk = int(args.chunk_mib * MiB)
    args.references = [name.strip() for name in args.references.split(",") if name.strip()]
    unknown = sorted(set(args.references) - set(REFERENCES))
    if unknown:
        parser.error(f"unknown reference configurations {unknown}; choose from {', '.join(REFERENCES)}")
    if args.clients < 1 or args.images < args.clients:
        parser.error("need at least one client and one image per client")
    if args.references and shutil.which(args.registry) is None:
        parser.error(f"{args.registry} not found: install Debian's docker-registry, or pass --registry PATH")

    started = time.perf_counter()
    servers, results = run(args)
    failures = report(servers, results, args, time.perf_counter() - started)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"args": {k: v for k, v in vars(args).items()}, "results": results}, out, indent=2, default=str)
    return 1 if (failures and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
