#!/usr/bin/env python3
"""Core benchmark for fakeregistry: small-request rate, blob push/pull throughput, push memory.

Everything goes through the WSGI app in-process (``app(environ, start_response)``),
so the figures are the app's own cost, without sockets or an HTTP server.

    python benchmarks/bench_core.py            # full run, 256 MiB blob, under a minute
    python benchmarks/bench_core.py --quick    # smoke run, small sizes, a few seconds

See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from importlib import metadata
from typing import Any, Callable, Dict, Iterable, List, Optional
from urllib.parse import urlsplit

try:
    import fakeregistry
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    import fakeregistry

from benchlib import StartResponse, call_and_drain, cpu_name, verdict
from werkzeug.test import Client, EnvironBuilder

from fakeregistry import FakeRegistry

MiB = 1024 * 1024
MB = 1_000_000  # throughput is reported in MB/s (10**6 bytes per second)

# Targets from the issue.
PUSH_VS_SHA256_TARGET = 0.70  # push with digest verification >= 70% of raw hashlib.sha256
PULL_TARGET_MB_S = 1000.0  # pull >= 1 GB/s in-process
PUSH_PEAK_MEMORY_TARGET = 1.5  # peak memory while pushing <= 1.5x the blob

MANIFEST_ACCEPT = (
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json"
)

Environ = Dict[str, Any]


# --------------------------------------------------------------------------- WSGI plumbing


def build_environ(
    method: str,
    path: str,
    *,
    query: Optional[Dict[str, str]] = None,
    headers: Optional[Dict[str, str]] = None,
    body: Optional[bytes] = None,
) -> Environ:
    """A WSGI environ; a body is wrapped in ``io.BytesIO``, which shares the bytes (no copy)."""
    builder = EnvironBuilder(
        path=path,
        method=method,
        query_string=query,
        headers=headers,
        input_stream=io.BytesIO(body) if body is not None else io.BytesIO(b""),
        content_type="application/octet-stream" if body is not None else None,
    )
    return builder.get_environ()


def call(app: Callable[..., Iterable[bytes]], environ: Environ, expect: str) -> StartResponse:
    """Call the app, consume the body without keeping it, check the status."""
    start_response = StartResponse()
    body = app(environ, start_response)
    try:
        for _ in body:
            pass
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    if not start_response.status.startswith(expect):
        raise RuntimeError(
            f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}: {start_response.status}, expected {expect}"
        )
    return start_response


def location_path(start_response: StartResponse) -> str:
    location = start_response.header("Location")
    if not location:
        raise RuntimeError("no Location header in the upload response")
    return urlsplit(location).path


# --------------------------------------------------------------------------- operations


def push_monolithic(app: FakeRegistry, name: str, data: bytes, digest: str) -> None:
    """POST to open a session, then one PUT ?digest= carrying the whole blob."""
    started = call(app, build_environ("POST", f"/v2/{name}/blobs/uploads/"), "202")
    call(app, build_environ("PUT", location_path(started), query={"digest": digest}, body=data), "201")


def push_single_post(app: FakeRegistry, name: str, data: bytes, digest: str) -> None:
    """One POST ?digest= carrying the whole blob."""
    call(app, build_environ("POST", f"/v2/{name}/blobs/uploads/", query={"digest": digest}, body=data), "201")


def push_chunked(app: FakeRegistry, name: str, chunks: List[bytes], digest: str) -> None:
    """POST, one PATCH per chunk with Content-Range, then an empty PUT ?digest=."""
    answer = call(app, build_environ("POST", f"/v2/{name}/blobs/uploads/"), "202")
    offset = 0
    for chunk in chunks:
        content_range = f"{offset}-{offset + len(chunk) - 1}"
        answer = call(
            app,
            build_environ("PATCH", location_path(answer), headers={"Content-Range": content_range}, body=chunk),
            "202",
        )
        offset += len(chunk)
    call(app, build_environ("PUT", location_path(answer), query={"digest": digest}, body=b""), "201")


def pull(app: FakeRegistry, name: str, digest: str, size: int) -> None:
    """GET the blob and iterate its body to the end, counting bytes, never joining them."""
    start_response = StartResponse()
    body = app(build_environ("GET", f"/v2/{name}/blobs/{digest}"), start_response)
    received = 0
    try:
        for piece in body:
            received += len(piece)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    if not start_response.status.startswith("200") or received != size:
        raise RuntimeError(f"pull: {start_response.status}, {received} of {size} bytes")


def make_blob(size: int) -> bytes:
    """Incompressible-looking, fully resident bytes (every page touched), built quickly."""
    block = os.urandom(min(size, MiB))
    data = block * (size // len(block)) + block[: size % len(block)]
    assert len(data) == size
    return data


def split(data: bytes, chunk_size: int) -> List[bytes]:
    return [data[offset : offset + chunk_size] for offset in range(0, len(data), chunk_size)]


# --------------------------------------------------------------------------- measurements


def time_best(run: Callable[[], None], repeats: int, before: Optional[Callable[[], None]] = None) -> List[float]:
    """Wall times of ``repeats`` runs; ``before`` (untimed) resets state between them."""
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        gc.collect()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def rate(run_one: Callable[[], None], seconds: float, rounds: int) -> List[float]:
    """Calls per second over ``rounds`` rounds of about ``seconds / rounds`` each."""
    for _ in range(200):  # warm up caches, the URL map, the allocator
        run_one()
    # Calibrate a batch that takes ~50 ms so the clock is read rarely.
    batch, start = 100, time.perf_counter()
    for _ in range(batch):
        run_one()
    per_call = (time.perf_counter() - start) / batch
    batch = max(10, int(0.05 / max(per_call, 1e-9)))
    rates = []
    for _ in range(rounds):
        calls, start = 0, time.perf_counter()
        deadline = start + seconds / rounds
        while True:
            for _ in range(batch):
                run_one()
            calls += batch
            now = time.perf_counter()
            if now >= deadline:
                break
        rates.append(calls / (now - start))
    return rates


def bench_small_requests(seconds: float) -> Dict[str, Any]:
    registry = FakeRegistry()
    image = registry.push_image("bench/app", "v1", layers=[b"layer one", b"layer two"])
    path = "/v2/bench/app/manifests/v1"
    headers = {"Accept": MANIFEST_ACCEPT}

    template = build_environ("GET", path, headers=headers)
    start_response = StartResponse()

    def direct() -> None:
        call_and_drain(registry, template, start_response)

    direct()
    if not start_response.status.startswith("200"):
        raise RuntimeError(f"manifest GET answered {start_response.status}")

    client = Client(registry)

    def via_client() -> None:
        response = client.get(path, headers=headers)
        response.get_data()
        response.close()

    direct_rates = rate(direct, seconds * 0.75, rounds=5)
    client_rates = rate(via_client, seconds * 0.25, rounds=3)
    return {
        "path": path,
        "manifest_size": len(image.manifest),
        "direct": direct_rates,
        "client": client_rates,
    }


def bench_blobs(size: int, chunk_size: int, repeats: int) -> Dict[str, Any]:
    name = "bench/blob"
    data = make_blob(size)
    chunks = split(data, chunk_size)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    registry = FakeRegistry()

    results: Dict[str, Any] = {"size": size, "chunk_size": chunk_size, "chunks": len(chunks)}
    results["sha256"] = time_best(lambda: hashlib.sha256(data).digest(), repeats)

    def check_stored() -> None:
        stored = registry.store.blob(name, digest)
        if len(stored) != size:
            raise RuntimeError(f"stored blob is {len(stored)} bytes, not {size}")

    def fresh() -> None:
        registry.reset()  # drop the previous run's copy so each push really stores the blob

    # Warm up every code path on a tiny blob.
    tiny = b"warm up" * 100
    tiny_digest = "sha256:" + hashlib.sha256(tiny).hexdigest()
    push_monolithic(registry, name, tiny, tiny_digest)
    push_chunked(registry, name, split(tiny, 128), tiny_digest)
    pull(registry, name, tiny_digest, len(tiny))

    results["push_monolithic"] = time_best(lambda: push_monolithic(registry, name, data, digest), repeats, fresh)
    check_stored()
    results["push_single_post"] = time_best(lambda: push_single_post(registry, name, data, digest), repeats, fresh)
    check_stored()
    results["push_chunked"] = time_best(lambda: push_chunked(registry, name, chunks, digest), repeats, fresh)
    check_stored()
    results["pull"] = time_best(lambda: pull(registry, name, digest, size), repeats)

    # Memory, traced: the source bytes (and chunks) exist before tracing starts, so they are
    # the baseline; what the push allocates on top of them is the figure.
    results["tracemalloc"] = {}
    for mode in ("monolithic", "chunked"):
        registry.reset()
        gc.collect()
        tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        if mode == "monolithic":
            push_monolithic(registry, name, data, digest)
        else:
            push_chunked(registry, name, chunks, digest)
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        check_stored()
        results["tracemalloc"][mode] = {"peak": (peak - baseline) / size, "retained": (current - baseline) / size}
    registry.reset()
    return results


# --------------------------------------------------------------------------- RSS, in a child process


def _proc_status_kib(field: str) -> Optional[int]:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_hwm() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def rss_child(mode: str, size: int, chunk_size: int) -> None:
    """Run in a fresh process: build the source bytes, push once, print the RSS peak growth as JSON."""
    name = "bench/blob"
    data = make_blob(size)
    chunks = split(data, chunk_size) if mode == "chunked" else []
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    registry = FakeRegistry()
    tiny = b"warm up" * 100  # imports, first-call caches
    push_monolithic(registry, "warm/up", tiny, "sha256:" + hashlib.sha256(tiny).hexdigest())
    gc.collect()

    baseline = _proc_status_kib("VmRSS")
    if baseline is not None and _reset_hwm():
        source = "VmHWM"
    else:  # no /proc: ru_maxrss, which only grows; its value now is the baseline
        import resource

        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        source = "ru_maxrss"
    if mode == "monolithic":
        push_monolithic(registry, name, data, digest)
    else:
        push_chunked(registry, name, chunks, digest)
    if source == "VmHWM":
        peak = _proc_status_kib("VmHWM") or 0
        unit = 1024
    else:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        unit = 1 if sys.platform == "darwin" else 1024
    assert len(registry.store.blob(name, digest)) == size
    print(json.dumps({"mode": mode, "growth": (peak - baseline) * unit / size, "source": source}))


def bench_rss(size: int, chunk_size: int) -> Dict[str, Any]:
    results: Dict[str, Any] = {}
    for mode in ("monolithic", "chunked"):
        command = [
            sys.executable,
            os.path.abspath(__file__),
            "--rss-child",
            mode,
            "--blob-mib",
            str(size / MiB),
            "--chunk-mib",
            str(chunk_size / MiB),
        ]
        try:
            output = subprocess.run(command, check=True, capture_output=True, text=True, timeout=120).stdout
            results[mode] = json.loads(output.strip().splitlines()[-1])
        except (subprocess.SubprocessError, ValueError, IndexError) as error:
            results[mode] = {"error": str(error)}
    return results


# --------------------------------------------------------------------------- report


def report(
    small: Dict[str, Any], blobs: Dict[str, Any], rss: Dict[str, Any], args: argparse.Namespace, elapsed: float
) -> int:
    size, chunk_size = blobs["size"], blobs["chunk_size"]
    failures = 0
    width = 78
    print("=" * width)
    print(
        f"fakeregistry {fakeregistry.__version__} core benchmark"
        + ("  [--quick: small sizes, indicative only]" if args.quick else "")
    )
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"werkzeug {metadata.version('werkzeug')}, "
        f"{platform.system()} {platform.machine()}, {cpu_name()}, {os.cpu_count()} CPUs"
    )
    runs = "one run" if args.repeats == 1 else f"the best of {args.repeats} runs"
    print(f"blob {size / MiB:g} MiB, chunks {chunk_size / MiB:g} MiB; big-blob figures are {runs}")
    print("=" * width)

    print()
    print(f"Small requests: GET {small['path']} ({small['manifest_size']}-byte manifest), in-process")
    print(f"  {'':46} {'req/s':>9} {'us/req':>8} {'spread':>8}")
    for label, key in (
        ("app(environ.copy(), start_response)", "direct"),
        ("werkzeug.test.Client.get (incl. test client)", "client"),
    ):
        rates = small[key]
        best = max(rates)
        spread = (max(rates) - min(rates)) / statistics.median(rates) * 100
        print(f"  {label:46} {best:9,.0f} {1e6 / best:8.1f} {spread:7.1f}%")

    print()
    print(f"Blob throughput: {size / MiB:g} MiB through the WSGI app in-process (MB/s = 10^6 bytes/s)")
    print(f"  {'':40} {'MB/s':>8} {'vs sha256':>10} {'target':>12} {'result':>7}")
    sha_speed = size / min(blobs["sha256"]) / MB
    print(f"  {'hashlib.sha256 (reference)':40} {sha_speed:8.0f} {1.0:9.2f}x")
    rows = (
        ("push, monolithic (POST + PUT ?digest=)", "push_monolithic"),
        (f"push, chunked ({blobs['chunks']} PATCH + PUT)", "push_chunked"),
        ("push, single POST ?digest=  (extra)", "push_single_post"),
    )
    for label, key in rows:
        speed = size / min(blobs[key]) / MB
        ratio = speed / sha_speed
        ok = ratio >= PUSH_VS_SHA256_TARGET
        failures += not ok
        target = f">= {PUSH_VS_SHA256_TARGET:.2f}x"
        print(f"  {label:40} {speed:8.0f} {ratio:9.2f}x {target:>12} {verdict(ok):>7}")
    pull_speed = size / min(blobs["pull"]) / MB
    ok = pull_speed >= PULL_TARGET_MB_S
    failures += not ok
    print(
        f"  {'pull (GET, body iterated, not joined)':40} {pull_speed:8.0f} {pull_speed / sha_speed:9.2f}x "
        f"{'>= ' + format(PULL_TARGET_MB_S, '.0f') + ' MB/s':>12} {verdict(ok):>7}"
    )

    print()
    print("Peak memory while pushing: growth above the client's source bytes, x blob size")
    print("  (the stored blob itself is 1.0x; the verdict uses the worse of the two peaks)")
    print(f"  {'':14} {'tracemalloc peak':>17} {'retained':>9} {'RSS peak growth':>16} {'target':>8} {'result':>7}")
    for mode in ("monolithic", "chunked"):
        traced = blobs["tracemalloc"][mode]
        child = rss.get(mode, {})
        if "growth" in child:
            rss_text = f"{child['growth']:.2f}x"
            worst = max(traced["peak"], child["growth"])
        else:
            rss_text = "n/a"
            worst = traced["peak"]
        ok = worst <= PUSH_PEAK_MEMORY_TARGET
        failures += not ok
        print(
            f"  {mode:14} {traced['peak']:16.2f}x {traced['retained']:8.2f}x {rss_text:>16} "
            f"{'<= ' + format(PUSH_PEAK_MEMORY_TARGET, 'g') + 'x':>8} {verdict(ok):>7}"
        )
    sources = {child.get("source") for child in rss.values() if "source" in child}
    errors = [f"{mode}: {child['error']}" for mode, child in rss.items() if "error" in child]
    if sources:
        print(f"  RSS: measured in a fresh subprocess per mode ({', '.join(sorted(sources))})")
    for error in errors:
        print(f"  RSS measurement failed, {error}")

    print()
    targets = 3 + 1 + 2
    print(f"Targets: {targets - failures}/{targets} PASS    (total time {elapsed:.1f} s)")
    return failures


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 32 MiB blob, two repetitions, short loops")
    parser.add_argument("--blob-mib", type=float, help="blob size in MiB (default 256, 32 with --quick)")
    parser.add_argument("--chunk-mib", type=float, default=8, help="chunk size for the chunked push (default 8)")
    parser.add_argument(
        "--repeats", type=int, help="repetitions of each big-blob measurement (default 3, 2 with --quick)"
    )
    parser.add_argument("--seconds", type=float, help="time for the small-request loops (default 2, 0.4 with --quick)")
    parser.add_argument("--no-rss", action="store_true", help="skip the RSS subprocess measurements")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when a target fails")
    parser.add_argument("--rss-child", choices=("monolithic", "chunked"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.blob_mib is None:
        args.blob_mib = 32 if args.quick else 256
    if args.repeats is None:
        args.repeats = 2 if args.quick else 3
    if args.seconds is None:
        args.seconds = 0.4 if args.quick else 2.0
    size = int(args.blob_mib * MiB)
    chunk_size = int(args.chunk_mib * MiB)

    if args.rss_child:
        rss_child(args.rss_child, size, chunk_size)
        return 0

    started = time.perf_counter()
    small = bench_small_requests(args.seconds)
    blobs = bench_blobs(size, chunk_size, args.repeats)
    rss = {} if args.no_rss else bench_rss(size, chunk_size)
    failures = report(small, blobs, rss, args, time.perf_counter() - started)
    return 1 if (failures and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
