#!/usr/bin/env python3
"""Socket server benchmark: which HTTP server should serve a FakeRegistry on a socket.

Each candidate serves the same ``FakeRegistry`` on 127.0.0.1 from a child
process of its own (so the client never shares a GIL with the server, and the
server's RSS is its own); this process is the client.

    python benchmarks/bench_server.py            # full run: 256 MiB blob, about a minute
    python benchmarks/bench_server.py --quick    # smoke run: 16 MiB blob, short loops, a few seconds

Candidates: werkzeug's threaded dev server (``make_server(threaded=True)``, a
thread per connection, ``Connection: close`` on every answer), cheroot and
waitress with their default settings, and ``fakeregistry.serve``, the
``RegistryServer`` this project ships. A candidate whose package is missing is
skipped. See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from importlib import metadata
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

import requests
from benchlib import cpu_name

HERE = os.path.dirname(os.path.abspath(__file__))
try:
    import fakeregistry
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, os.path.join(HERE, "..", "src"))
    import fakeregistry

MiB = 1024 * 1024
MB = 1_000_000  # throughput is reported in MB/s (10**6 bytes per second)
HOST = "127.0.0.1"
GO_CHUNK = 32 * 1024

MANIFEST_ACCEPT = (
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json"
)
SERVERS = ("werkzeug", "cheroot", "waitress", "fakeregistry")
PACKAGES = {"werkzeug": "werkzeug", "cheroot": "cheroot", "waitress": "waitress", "fakeregistry": "fakeregistry"}


# --------------------------------------------------------------------------- the server side (a child process)


def serve_child(name: str) -> None:
    """Serve a FakeRegistry with server ``name`` on 127.0.0.1; print the port; run until stdin closes."""
    import logging

    from fakeregistry import FakeRegistry

    logging.basicConfig(level=logging.CRITICAL)  # no access logs from any candidate
    registry = FakeRegistry()
    registry.push_image("bench/app", "v1", layers=[b"layer one", b"layer two"])
    stop: Callable[[], None]

    if name == "werkzeug":
        from werkzeug.serving import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log_request(self, *args: Any) -> None:
                pass

            def log_error(self, *args: Any) -> None:
                pass

        server = make_server(HOST, 0, registry, threaded=True, request_handler=Quiet)
        port = server.server_port
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        stop = server.shutdown
    elif name == "cheroot":
        from cheroot import wsgi

        cheroot_server = wsgi.Server((HOST, 0), registry)  # defaults: 10 threads, timeout 10 s
        cheroot_server.error_log = lambda *args, **kwargs: None  # type: ignore[method-assign]
        cheroot_server.prepare()
        port = cheroot_server.bind_addr[1]
        thread = threading.Thread(target=cheroot_server.serve, daemon=True)
        thread.start()
        stop = cheroot_server.stop
    elif name == "waitress":
        import waitress

        waitress_server = waitress.create_server(registry, host=HOST, port=0)  # defaults: 4 threads
        port = waitress_server.effective_port  # type: ignore[union-attr]
        thread = threading.Thread(target=waitress_server.run, daemon=True)
        thread.start()
        stop = waitress_server.close
    elif name == "fakeregistry":
        from fakeregistry import serve

        registry_server = serve(registry, HOST, 0).start()
        port = registry_server.port
        stop = registry_server.stop
    else:
        raise SystemExit(f"unknown server {name!r}")
    print(json.dumps({"port": port}), flush=True)
    sys.stdin.read()  # the parent closes our stdin when it is done
    stop()


class Child:
    """A candidate server in a child process."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--child", name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(10)
            raise RuntimeError(f"{name}: the server process exited with status {self.process.returncode}")
        self.port = json.loads(line)["port"]
        self.url = f"http://{HOST}:{self.port}"

    def cpu_seconds(self) -> float:
        """CPU time the server process has used (user + system): a figure other load on the machine barely moves."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def status_kib(self, field: str) -> int:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def reset_peak(self) -> bool:
        """Reset VmHWM to the current RSS (Linux >= 4.0)."""
        try:
            with open(f"/proc/{self.process.pid}/clear_refs", "w") as clear_refs:
                clear_refs.write("5")
            return True
        except OSError:
            return False

    def threads(self) -> int:
        return self.status_kib("Threads")

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --------------------------------------------------------------------------- small requests


def small_requests(url: str, clients: int, seconds: float) -> Dict[str, Any]:
    """Manifest GETs per second from ``clients`` threads, each with its own keep-alive requests.Session."""
    path = f"{url}/v2/bench/app/manifests/v1"
    headers = {"Accept": MANIFEST_ACCEPT}
    counts = [0] * clients
    closes = [0] * clients
    errors: List[BaseException] = []
    deadline = [0.0]

    def go() -> None:  # run by the barrier once every client has warmed up
        deadline[0] = time.perf_counter() + seconds

    start_line = threading.Barrier(clients, action=go)

    def client(index: int) -> None:
        with requests.Session() as session:
            for _ in range(10):  # warm up
                session.get(path, headers=headers).close()
            start_line.wait()
            try:
                while time.perf_counter() < deadline[0]:
                    response = session.get(path, headers=headers)  # reads the body
                    if response.status_code != 200:
                        raise RuntimeError(f"manifest GET answered {response.status_code}")
                    counts[index] += 1
                    # The server ending each connection after one answer: no keep-alive.
                    closes[index] += response.headers.get("Connection", "").lower() == "close"
            except BaseException as error:  # reported by the caller
                errors.append(error)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        return {"error": repr(errors[0])}
    total = sum(counts)
    return {"rate": total / seconds, "requests": total + 10 * clients, "closed": sum(closes)}


# --------------------------------------------------------------------------- big blobs


def make_blob(size: int) -> bytes:
    block = os.urandom(min(size, MiB))
    return block * (size // len(block)) + block[: size % len(block)]


def start_upload(connection: http.client.HTTPConnection, name: str) -> str:
    connection.request("POST", f"/v2/{name}/blobs/uploads/", headers={"Content-Length": "0"})
    response = connection.getresponse()
    response.read()
    if response.status != 202:
        raise RuntimeError(f"POST upload answered {response.status}")
    return urlsplit(response.getheader("Location", "")).path


def push(url: str, name: str, data: bytes, digest: str, chunked: bool) -> float:
    """POST, then one PUT ?digest= with Content-Length, or PATCH the blob chunked and PUT ?digest=; seconds."""
    connection = http.client.HTTPConnection(HOST, urlsplit(url).port, timeout=120)
    try:
        started = time.perf_counter()
        location = start_upload(connection, name)
        if chunked:
            view = memoryview(data)  # 32 KiB chunks, as Go's io.Copy writes them
            pieces = (view[offset : offset + GO_CHUNK] for offset in range(0, len(data), GO_CHUNK))
            connection.request(
                "PATCH",
                location,
                body=pieces,
                headers={"Content-Type": "application/octet-stream"},
                encode_chunked=True,
            )
            response = connection.getresponse()
            response.read()
            if response.status != 202:
                raise RuntimeError(f"chunked PATCH answered {response.status}")
            location = urlsplit(response.getheader("Location", "")).path
            body = b""
        else:
            body = data
        separator = "&" if "?" in location else "?"
        connection.request(
            "PUT", f"{location}{separator}digest={digest}", body=body, headers={"Content-Length": str(len(body))}
        )
        response = connection.getresponse()
        response.read()
        elapsed = time.perf_counter() - started
        if response.status != 201:
            raise RuntimeError(f"PUT answered {response.status}")
        return elapsed
    finally:
        connection.close()


def pull(url: str, name: str, digest: str, size: int) -> float:
    connection = http.client.HTTPConnection(HOST, urlsplit(url).port, timeout=120)
    buffer = bytearray(MiB)
    try:
        started = time.perf_counter()
        connection.request("GET", f"/v2/{name}/blobs/{digest}")
        response = connection.getresponse()
        received = 0
        while True:
            count = response.readinto(buffer)
            if not count:
                break
            received += count
        elapsed = time.perf_counter() - started
        if response.status != 200 or received != size:
            raise RuntimeError(f"pull: {response.status}, {received} of {size} bytes")
        return elapsed
    finally:
        connection.close()


def delete_blob(url: str, name: str, digest: str) -> None:
    requests.delete(f"{url}/v2/{name}/blobs/{digest}", timeout=30)


def bench_blob_round(child: Child, data: bytes, digest: str, result: Dict[str, Any]) -> None:
    """One push (Content-Length), one chunked push, three pulls.

    Keeps the best speeds, the worst memory peak, and the server's CPU time
    summed over every round (its clock ticks are 10 ms: the sums are precise).
    """
    url, size = child.url, len(data)

    def timed(key: str, run: Callable[[], float]) -> None:
        cpu = child.cpu_seconds()
        speed = size / run() / MB
        result[key] = max(result.get(key, 0.0), speed)
        result[f"{key}_cpu_seconds"] = result.get(f"{key}_cpu_seconds", 0.0) + child.cpu_seconds() - cpu
        result[f"{key}_bytes"] = result.get(f"{key}_bytes", 0) + size

    for key, chunked in (("push", False), ("push_chunked", True)):
        delete_blob(url, "bench/blob", digest)  # each push stores the blob again
        time.sleep(0.05)
        before = child.status_kib("VmRSS")
        tracked = child.reset_peak()
        timed(key, lambda chunked=chunked: push(url, "bench/blob", data, digest, chunked))
        if tracked:
            growth = (child.status_kib("VmHWM") - before) * 1024 / size
            result["push_peak"] = max(result.get("push_peak") or 0.0, growth)
    for _ in range(3):
        timed("pull", lambda: pull(url, "bench/blob", digest, size))


def cpu_per_gb(result: Dict[str, Any], key: str) -> Optional[float]:
    seconds, size = result.get(f"{key}_cpu_seconds"), result.get(f"{key}_bytes")
    if seconds is None or not size or seconds < 0.1:  # too few clock ticks to say
        return None
    return float(seconds) / (size / 1e9)


# --------------------------------------------------------------------------- slow clients


def trickle(port: int, location: str, seconds: float, stop: threading.Event) -> Tuple[float, int]:
    """A PATCH whose body arrives 64 bytes every 20 ms for ``seconds``; (when its last byte went, status)."""
    piece = b"s" * 64
    pieces = max(1, int(seconds / 0.02))
    head = (
        f"PATCH {location} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {len(piece) * pieces}\r\n\r\n"
    ).encode()
    with socket.create_connection((HOST, port), timeout=30) as sock:
        sock.sendall(head)
        for index in range(pieces):
            if stop.is_set():
                break
            if index:
                time.sleep(0.02)
            sock.sendall(piece)
        sent = time.perf_counter()  # before the server can have read the last piece
        reply = sock.recv(4096)
        return sent, int(reply.split(b" ", 2)[1]) if reply else 0


def slow_clients(url: str, slow: int, seconds: float) -> Dict[str, Any]:
    """While ``slow`` connections trickle upload bodies, how long do other clients' GETs take?"""
    port = urlsplit(url).port
    assert port is not None
    setup = http.client.HTTPConnection(HOST, port, timeout=30)
    locations = [start_upload(setup, f"bench/slow{index}") for index in range(slow)]
    setup.close()
    stop = threading.Event()
    answered: List[Tuple[float, int]] = []

    def run(location: str) -> None:
        try:
            answered.append(trickle(port, location, seconds, stop))
        except OSError as error:
            answered.append((time.perf_counter(), -1))
            print(f"  slow client failed: {error!r}", file=sys.stderr)

    tricklers = [threading.Thread(target=run, args=(location,)) for location in locations]
    for thread in tricklers:
        thread.start()
    time.sleep(min(0.3, seconds / 4))  # let every slow client get its request under way
    latencies: List[float] = []
    path = f"{url}/v2/bench/app/manifests/v1"
    end = time.perf_counter() + seconds / 2
    timed_out = False
    while time.perf_counter() < end and not timed_out:
        # A fresh connection each time: a client that comes while the slow ones hold theirs.
        started = time.perf_counter()
        try:
            requests.get(path, headers={"Accept": MANIFEST_ACCEPT}, timeout=seconds * 2 + 5).close()
        except requests.Timeout:
            timed_out = True
        latencies.append(time.perf_counter() - started)
        time.sleep(0.01)
    gets_done = time.perf_counter()
    for thread in tricklers:
        thread.join(seconds * 3 + 10)
    stop.set()
    statuses = sorted({status for _, status in answered})
    first_slow_done = min((when for when, _ in answered), default=gets_done)
    return {
        "median_ms": statistics.median(latencies) * 1000,
        "max_ms": max(latencies) * 1000,
        "gets": len(latencies),
        # Every GET answered while all the slow clients were still sending: nobody waited for them.
        "gets_before_slow": gets_done < first_slow_done and not timed_out,
        "slow_statuses": statuses,
    }


# --------------------------------------------------------------------------- the run


def run(names: List[str], args: argparse.Namespace, data: bytes) -> List[Dict[str, Any]]:
    """Every candidate at once, each in its own process; measurements interleaved round by round.

    The machine may be busy with other work: each figure is the best of its
    rounds, and interleaving gives every candidate the same conditions.
    """
    results = {name: {"name": name} for name in names}
    children: Dict[str, Child] = {}
    for name in names:
        try:
            children[name] = Child(name)
        except Exception as error:
            results[name]["error"] = repr(error)

    def each(step: Callable[[str, Child, Dict[str, Any]], None]) -> None:
        for name, child in list(children.items()):
            if "error" in results[name]:
                continue
            try:
                step(name, child, results[name])
            except Exception as error:  # one candidate failing does not end the run
                results[name]["error"] = repr(error)

    def idle(name: str, child: Child, result: Dict[str, Any]) -> None:
        result["rss_idle"] = child.status_kib("VmRSS") * 1024
        result["threads_idle"] = child.threads()

    def small(clients: int) -> Callable[[str, Child, Dict[str, Any]], None]:
        def step(name: str, child: Child, result: Dict[str, Any]) -> None:
            cpu = child.cpu_seconds()
            figures = small_requests(child.url, clients, args.seconds)
            if "error" in figures:
                raise RuntimeError(figures["error"])
            figures["cpu_us"] = (child.cpu_seconds() - cpu) / figures["requests"] * 1e6
            cpu_key = f"get_{clients}_cpu"
            result[cpu_key] = min(result.get(cpu_key, figures["cpu_us"]), figures["cpu_us"])
            best = result.setdefault(f"get_{clients}", figures)
            if figures["rate"] > best["rate"]:
                result[f"get_{clients}"] = figures

        return step

    digest = "sha256:" + hashlib.sha256(data).hexdigest()

    def blobs(name: str, child: Child, result: Dict[str, Any]) -> None:
        bench_blob_round(child, data, digest, result)

    def slow(name: str, child: Child, result: Dict[str, Any]) -> None:
        result["slow_1"] = slow_clients(child.url, 1, args.slow_seconds)
        result["slow_16"] = slow_clients(child.url, 16, args.slow_seconds)

    def end(name: str, child: Child, result: Dict[str, Any]) -> None:
        result["rss_end"] = child.status_kib("VmRSS") * 1024
        result["threads_end"] = child.threads()

    try:
        each(idle)
        for _ in range(args.rounds):
            for clients in (1, 4, 16):
                each(small(clients))
        for _ in range(args.repeats):
            each(blobs)
        each(slow)
        each(end)
    finally:
        for child in children.values():
            child.close()
    return [results[name] for name in names]


def version(name: str) -> str:
    package = PACKAGES[name]
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return getattr(fakeregistry, "__version__", "?") if name == "fakeregistry" else "?"


def available(name: str) -> bool:
    if name == "fakeregistry":
        return True
    try:
        __import__(PACKAGES[name])
        return True
    except ImportError:
        return False


def describe(name: str) -> str:
    if name == "fakeregistry":
        return "fakeregistry.serve (cheroot, adapted)"
    return f"{name} {version(name)}"


def report(results: List[Dict[str, Any]], args: argparse.Namespace, size: int, elapsed: float) -> None:
    width = 100
    print("=" * width)
    print(
        f"fakeregistry {getattr(fakeregistry, '__version__', '?')} server benchmark"
        + ("  [--quick: small sizes, indicative only]" if args.quick else "")
    )
    print(
        f"Python {platform.python_version()}, {platform.system()} {platform.machine()}, {cpu_name()}, "
        f"{os.cpu_count()} CPUs; each server in a child process, the clients here, over {HOST}"
    )
    print(
        f"blob {size / MiB:g} MiB, best of {args.repeats}; small requests: best of {args.rounds} rounds "
        f"of {args.seconds:g} s; candidates interleaved round by round"
    )
    print("=" * width)

    def number(result: Dict[str, Any], key: str, text: str = "{:,.0f}") -> str:
        value = result.get(key)
        return "n/a" if value is None else text.format(value)

    def rate(result: Dict[str, Any], clients: int) -> str:
        figures = result.get(f"get_{clients}")
        return "n/a" if not figures else f"{figures['rate']:,.0f}"

    print()
    print("Small requests: manifest GETs per second, each client thread with its own requests.Session;")
    print("  and the server's CPU time per request (user + system, microseconds)")
    print(
        f"  {'server':36} {'1 client':>9} {'4 clients':>10} {'16 clients':>11} {'keep-alive':>11} "
        f"{'CPU/req 1':>10} {'CPU/req 16':>11}"
    )
    for result in results:
        one = result.get("get_1")
        keep = "n/a" if not one else ("no" if one.get("closed") else "yes")
        print(
            f"  {describe(result['name']):36} {rate(result, 1):>9} {rate(result, 4):>10} {rate(result, 16):>11} "
            f"{keep:>11} {number(result, 'get_1_cpu', '{:.0f} us'):>10} {number(result, 'get_16_cpu', '{:.0f} us'):>11}"
        )

    print()
    print(
        f"Blobs: {size / MiB:g} MiB, one connection (http.client), MB/s (chunked: {GO_CHUNK // 1024} KiB chunks); "
        "the server's memory, MiB"
    )
    print(
        f"  {'server':36} {'push':>6} {'push chunked':>13} {'pull':>6} "
        f"{'RSS idle':>9} {'push peak':>10} {'RSS end':>8} {'threads':>8}"
    )
    for result in results:
        idle = result.get("rss_idle")
        final = result.get("rss_end")
        threads = f"{result.get('threads_idle', '?')}/{result.get('threads_end', '?')}"
        print(
            f"  {describe(result['name']):36} {number(result, 'push'):>6} {number(result, 'push_chunked'):>13} "
            f"{number(result, 'pull'):>6} {'n/a' if idle is None else f'{idle / MiB:.0f}':>9} "
            f"{number(result, 'push_peak', '{:.2f}x'):>10} {'n/a' if final is None else f'{final / MiB:.0f}':>8} "
            f"{threads:>8}"
        )
    print(f"  server CPU seconds per GB:{'':11} {'push':>6} {'push chunked':>13} {'pull':>6}")
    for result in results:
        cpu = {key: cpu_per_gb(result, key) for key in ("push", "push_chunked", "pull")}
        print(
            f"  {describe(result['name']):36} {number(cpu, 'push', '{:.2f}'):>6} "
            f"{number(cpu, 'push_chunked', '{:.2f}'):>13} {number(cpu, 'pull', '{:.2f}'):>6}"
        )

    print()
    print(
        f"Slow clients: N connections trickle PATCH bodies (64 B every 20 ms, {args.slow_seconds:g} s); "
        "meanwhile, GETs on fresh connections"
    )
    print(f"  {'server':36} {'1 slow: median':>15} {'max':>7} {'16 slow: median':>16} {'max':>7} {'GETs first':>13}")
    for result in results:
        one, many = result.get("slow_1"), result.get("slow_16")
        if not one or not many:
            print(f"  {describe(result['name']):36} {'n/a':>15}")
            continue
        first = "yes" if one["gets_before_slow"] and many["gets_before_slow"] else "NO (blocked)"
        print(
            f"  {describe(result['name']):36} {one['median_ms']:12.1f} ms {one['max_ms']:4.0f} ms "
            f"{many['median_ms']:13.1f} ms {many['max_ms']:4.0f} ms {first:>13}"
        )
    failures = [result for result in results if "error" in result]
    if failures:
        print()
        for result in failures:
            print(f"  {describe(result['name'])} failed: {result['error']}")
    print()
    print(f"(total time {elapsed:.1f} s)")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 16 MiB blob, one repetition, short loops")
    parser.add_argument("--blob-mib", type=float, help="blob size in MiB (default 256, 16 with --quick)")
    parser.add_argument("--repeats", type=int, help="repetitions of each blob measurement (default 2, 1 with --quick)")
    parser.add_argument("--seconds", type=float, help="time per small-request round (default 1, 0.3 with --quick)")
    parser.add_argument("--rounds", type=int, help="rounds of small requests (default 3, 1 with --quick)")
    parser.add_argument("--slow-seconds", type=float, help="how long slow clients trickle (default 2, 0.6 --quick)")
    parser.add_argument(
        "--servers", default=",".join(SERVERS), help=f"comma-separated candidates (default {','.join(SERVERS)})"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the raw figures to FILE")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        serve_child(args.child)
        return 0
    if args.blob_mib is None:
        args.blob_mib = 16 if args.quick else 256
    if args.repeats is None:
        args.repeats = 1 if args.quick else 2
    if args.seconds is None:
        args.seconds = 0.3 if args.quick else 1.0
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.slow_seconds is None:
        args.slow_seconds = 0.6 if args.quick else 2.0
    names = [name.strip() for name in args.servers.split(",") if name.strip()]
    unknown = sorted(set(names) - set(SERVERS))
    if unknown:
        parser.error(f"unknown servers {unknown}; choose from {', '.join(SERVERS)}")

    started = time.perf_counter()
    size = int(args.blob_mib * MiB)
    data = make_blob(size)
    for name in names:
        if not available(name):
            print(f"skipping {name}: not installed", file=sys.stderr)
    results = run([name for name in names if available(name)], args, data)
    report(results, args, size, time.perf_counter() - started)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    return 1 if any("error" in result for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
