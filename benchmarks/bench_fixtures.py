#!/usr/bin/env python3
"""Fixture and in-process client benchmark for fakeregistry: what a test pays to use it.

    python benchmarks/bench_fixtures.py            # full run, 500 tests, 256 MiB blob, about half a minute
    python benchmarks/bench_fixtures.py --quick    # smoke run, small sizes, about 6 seconds

Three parts, all in one run on one machine:

1. Fixture setup + teardown per test, for ``fake_registry`` and ``fake_registry_server``.
   A temporary directory gets test files of N trivial tests each (``pass``): one whose
   tests take no fixture (the baseline), one whose tests take ``fake_registry``, one
   whose tests take ``fake_registry_server`` (and one more, below). Each file runs in its own
   ``python -m pytest -p no:cacheprovider -p no:hypothesispytest -q`` subprocess.
   A ``conftest.py`` in the directory implements ``pytest_runtest_logreport`` and
   writes out ``report.duration`` for every setup and teardown report: that is pytest's
   own ``perf_counter`` timing of the whole setup (or teardown) phase, the same figure
   ``--durations`` prints. Only those two phases are summed, so collection, the test
   call, reporting and interpreter start-up are left out; subtracting the baseline
   file's figure removes what pytest spends on every phase without fixtures (hooks,
   capture, logging). Per-test cost = (sum with the fixture - sum without) / N.
   One-time costs are reported beside it, not hidden: the first ``fake_registry`` test
   imports the registry modules, the first ``fake_registry_server`` test also opens the
   session's socket and starts its thread, and the last server test's teardown stops
   it. The server figure is taken "after the first test": tests 2..N-1, so neither
   the socket's start nor its stop is in it. Each file runs ``--rounds`` times,
   interleaved with the others, and the median round is reported. As a cross-check,
   the whole subprocess wall time (with - without) / N is printed too; it includes the
   one-time costs, collection and the interpreter's noise.
   A fourth file takes three conftest fixtures shaped like ``fake_registry`` (a yield
   fixture taking ``request`` and two plain fixtures) with trivial bodies: pytest's own
   cost for that fixture graph, so the rest of ``fake_registry``'s figure is fakeregistry's.
   The subprocesses use a private bytecode cache (``PYTHONPYCACHEPREFIX`` in the temporary
   directory, warmed by one untimed run), so first tests pay for imports as on a
   developer's machine, not for compiling every module as they would under
   ``PYTHONDONTWRITEBYTECODE=1``; ``--cold-imports`` keeps the environment's settings.

2. Round-trip latency of a small manifest GET (``GET /v2/team/app/manifests/v1``),
   in-process, timed one request at a time: through requests + requests-mock via
   ``FakeRegistry.mock_requests()`` (one ``requests.Session``, reused), through
   ``reg.httpx_client()`` (``httpx.WSGITransport``), beside the floor (the same GET
   through requests + requests-mock answering a canned response with the same bytes and
   headers) and the app alone called with a prebuilt environ. The registry's journal
   and requests-mock's request history are cleared between batches (untimed) so they
   do not grow through the run. Median and p90 are reported.

3. Peak memory while pulling a big blob in-process through requests: tracemalloc's
   peak during the pull minus its baseline (the registry already holds the blob), as a
   multiple of the blob size. The streamed pull (``stream=True``, ``iter_content(1 MiB)``,
   pieces counted, not joined) must not hold more than one extra copy.

See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from importlib import metadata
from typing import Any, Callable, Dict, List, Optional, Tuple

from benchlib import StartResponse, call_and_drain, cpu_name, verdict

try:
    import fakeregistry
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    import fakeregistry

import httpx
import requests
import requests_mock
from werkzeug.test import EnvironBuilder

from fakeregistry import FakeRegistry

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
MiB = 1024 * 1024

# Targets from the issue.
FAKE_REGISTRY_TARGET_MS = 0.5  # fake_registry setup + teardown per test
SERVER_TARGET_MS = 2.0  # fake_registry_server setup + teardown per test, after the first
STREAMED_PULL_TARGET = 1.0  # extra memory while streaming a pull: at most one copy of the blob

MANIFEST_ACCEPT = (
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json"
)
NAME = "team/app"
MANIFEST_PATH = f"/v2/{NAME}/manifests/v1"


# --------------------------------------------------------------------------- 1. fixture cost

# "" is the baseline (no fixture); "same_shape" is pytest's floor for fake_registry's fixture graph.
FIXTURES = ("", "fake_registry", "same_shape", "fake_registry_server")

RECORDER_CONFTEST = '''\
"""Written by bench_fixtures.py: pytest's own setup/teardown durations, to a JSON file."""
import json
import os

import pytest

_phases = []


def pytest_runtest_logreport(report):
    if report.when in ("setup", "teardown"):
        _phases.append([report.nodeid, report.when, report.duration, report.outcome])


def pytest_sessionfinish(session):
    with open(os.environ["BENCH_FIXTURES_OUT"], "w") as out:
        json.dump(_phases, out)


# fake_registry's graph with trivial bodies: a yield fixture taking request and two plain fixtures.
@pytest.fixture
def same_shape_options():
    return {}


@pytest.fixture
def same_shape_host():
    return "registry.test"


@pytest.fixture
def same_shape(request, same_shape_options, same_shape_host):
    yield None
'''


def write_test_files(directory: str, tests: int) -> Dict[str, str]:
    """One file of ``tests`` trivial tests per fixture (and one without), plus a warm-up file; their paths."""
    with open(os.path.join(directory, "pytest.ini"), "w") as ini:  # the rootdir: no outside config applies
        ini.write("[pytest]\n")
    with open(os.path.join(directory, "conftest.py"), "w") as conftest:
        conftest.write(RECORDER_CONFTEST)
    paths = {}
    for fixture in FIXTURES:
        path = os.path.join(directory, f"test_{fixture or 'no_fixture'}.py")
        with open(path, "w") as module:
            for index in range(tests):
                module.write(f"def test_{index:04d}({fixture}):\n    pass\n\n\n")
        paths[fixture] = path
    paths["warm-up"] = os.path.join(directory, "test_warm_up.py")
    with open(paths["warm-up"], "w") as module:
        module.write(f"def test_warm_up({', '.join(filter(None, FIXTURES))}):\n    pass\n")
    return paths


def plugin_registered() -> bool:
    """Whether fakeregistry's pytest11 entry point is installed (else the plugin is loaded by name)."""
    entry_points = metadata.entry_points()
    if hasattr(entry_points, "select"):
        group = entry_points.select(group="pytest11")
    else:  # Python 3.9: a dict of groups
        group = entry_points.get("pytest11", [])  # type: ignore[attr-defined]
    return any(entry.value == "fakeregistry.pytest_plugin" for entry in group)


def pytest_env(directory: str, out: str, cold_imports: bool) -> Dict[str, str]:
    env = dict(os.environ, BENCH_FIXTURES_OUT=out)
    for name in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS"):  # the generated files run exactly as written
        env.pop(name, None)
    if not cold_imports:
        # Bytecode in a private cache inside the temporary directory, warmed by one untimed run:
        # the first test then pays for imports as on a developer's machine, not for compiling
        # every module (with PYTHONDONTWRITEBYTECODE=1 every run compiles them all), and nothing
        # is written next to the sources. pytest's assertion rewriter, which rewrites the
        # plugin's modules, keeps its cache under this prefix too.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = os.path.join(directory, "pycache")
    if not plugin_registered():
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.abspath(SRC), env.get("PYTHONPATH")]))
    return env


def run_pytest(directory: str, path: str, env: Dict[str, str]) -> Tuple[List[List[Any]], float]:
    """Run pytest on one file in a subprocess: the recorded phases, and the wall time of the run."""
    command = [sys.executable, "-m", "pytest", path, "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-q"]
    command += ["-c", os.path.join(directory, "pytest.ini"), "--rootdir", directory]
    if not plugin_registered():
        command += ["-p", "fakeregistry.pytest_plugin"]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=directory, env=env, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"pytest failed on {os.path.basename(path)}:\n{result.stdout}\n{result.stderr}")
    with open(env["BENCH_FIXTURES_OUT"]) as recorded:
        return json.load(recorded), wall


def per_test(phases: List[List[Any]], tests: int) -> List[Tuple[float, float]]:
    """(setup, teardown) seconds per test, in file order."""
    by_test: Dict[str, List[float]] = {}
    for nodeid, when, duration, outcome in phases:
        if outcome != "passed":
            raise RuntimeError(f"{nodeid} {when}: {outcome}")
        by_test.setdefault(nodeid, [0.0, 0.0])[0 if when == "setup" else 1] += duration
    if len(by_test) != tests:
        raise RuntimeError(f"recorded {len(by_test)} tests, expected {tests}")
    return [(setup, teardown) for setup, teardown in by_test.values()]


def bench_fixture_cost(tests: int, rounds: int, cold_imports: bool) -> Dict[str, Any]:
    """Per round and per file: the setup+teardown figures; the median round is reported."""
    figures: Dict[str, Dict[str, List[float]]] = {fixture: {} for fixture in FIXTURES}
    with tempfile.TemporaryDirectory(prefix="bench_fixtures_") as directory:
        paths = write_test_files(directory, tests)
        env = pytest_env(directory, os.path.join(directory, "phases.json"), cold_imports)
        if not cold_imports:
            run_pytest(directory, paths["warm-up"], env)  # fills the bytecode cache; not timed
        for _ in range(rounds):
            for fixture in FIXTURES:  # interleaved, so a slow spell of the machine hits every file
                phases, wall = run_pytest(directory, paths[fixture], env)
                times = per_test(phases, tests)
                both = [setup + teardown for setup, teardown in times]
                row = {
                    "all": sum(both) / tests,  # every test, one-time costs included
                    "steady": statistics.fmean(both[1:-1]),  # tests 2..N-1
                    "first": both[0],
                    "last_teardown": times[-1][1],
                    "wall": wall / tests,
                }
                for key, value in row.items():
                    figures[fixture].setdefault(key, []).append(value)
    return {"tests": tests, "rounds": rounds, "cold_imports": cold_imports, "figures": figures}


# --------------------------------------------------------------------------- 2. small-request latency


def sample(run_one: Callable[[], None], seconds: float, reset: Callable[[], None]) -> List[float]:
    """Seconds per call, each call timed alone, for about ``seconds``; ``reset`` runs untimed between batches."""
    clock = time.perf_counter
    start = clock()
    for _ in range(100):  # warm up caches, imports, the URL map, the allocator
        run_one()
    per_call = (clock() - start) / 100
    batch = max(10, min(1000, int(seconds / 10 / per_call)))  # about ten batches per row
    reset()
    times: List[float] = []
    deadline = clock() + seconds
    while clock() < deadline:
        for _ in range(batch):
            start = clock()
            run_one()
            times.append(clock() - start)
        reset()
    return times


def quantile(values: List[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def bench_latency(seconds: float) -> Dict[str, Any]:
    registry = FakeRegistry()
    image = registry.push_image(NAME, "v1", layers=[b"layer one", b"layer two"])
    url = registry.url + MANIFEST_PATH
    accept = {"Accept": MANIFEST_ACCEPT}
    rows: Dict[str, List[float]] = {}

    def expect(status: int, content: bytes) -> None:
        if status != 200 or content != image.manifest:
            raise RuntimeError(f"manifest GET answered {status}, {len(content)} bytes")

    # (a) requests + requests-mock through the registry's matcher, one Session reused.
    session = requests.Session()
    with registry.mock_requests() as mocker:
        answer = session.get(url, headers=accept)
        expect(answer.status_code, answer.content)
        canned_headers = dict(answer.headers)  # the floor answers exactly these headers and bytes

        def via_requests() -> None:
            _ = session.get(url, headers=accept).content

        def reset_requests() -> None:
            registry.requests.clear()
            # Not mocker.reset_mock(): requests-mock calls reset() on every matcher, and
            # fakeregistry's RequestsMatcher has none (AttributeError). The history list is the same.
            mocker.request_history.clear()

        rows["requests"] = sample(via_requests, seconds, reset_requests)

    # (b) httpx through WSGITransport.
    with registry.httpx_client() as client:
        answer_x = client.get(MANIFEST_PATH, headers=accept)
        expect(answer_x.status_code, answer_x.content)

        def via_httpx() -> None:
            _ = client.get(MANIFEST_PATH, headers=accept).content

        rows["httpx"] = sample(via_httpx, seconds, registry.requests.clear)

    # (c) the floor: requests + requests-mock answering a canned response.
    with requests_mock.Mocker() as canned:
        canned.get(url, content=image.manifest, headers=canned_headers)
        answer = session.get(url, headers=accept)
        expect(answer.status_code, answer.content)

        def via_canned() -> None:
            _ = session.get(url, headers=accept).content

        rows["canned"] = sample(via_canned, seconds, canned.reset_mock)

    # (d) the app alone, a fresh copy of a prebuilt environ per call (the app writes into it).
    template = EnvironBuilder(path=MANIFEST_PATH, method="GET", headers=accept, base_url=registry.url).get_environ()
    start_response = StartResponse()

    def direct() -> None:
        call_and_drain(registry, template, start_response)

    direct()
    if not start_response.status.startswith("200"):
        raise RuntimeError(f"manifest GET answered {start_response.status}")
    rows["app"] = sample(direct, seconds, registry.requests.clear)

    # (extra) httpx's own floor: a canned answer through httpx.MockTransport.
    def canned_x(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=image.manifest, headers=canned_headers)

    with httpx.Client(transport=httpx.MockTransport(canned_x), base_url=registry.url) as client:

        def via_httpx_canned() -> None:
            _ = client.get(MANIFEST_PATH, headers=accept).content

        rows["httpx_canned"] = sample(via_httpx_canned, seconds, lambda: None)
    session.close()
    return {"manifest_size": len(image.manifest), "rows": rows}


# --------------------------------------------------------------------------- 3. pull memory


def make_blob(size: int) -> bytes:
    """Incompressible-looking, fully resident bytes, built quickly."""
    block = os.urandom(min(size, MiB))
    return block * (size // len(block)) + block[: size % len(block)]


def traced(run: Callable[[], int]) -> Tuple[int, int, int]:
    """(peak - baseline, retained, bytes received) of one run under tracemalloc."""
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        received = run()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - baseline, current - baseline, received


def bench_memory(size: int) -> Dict[str, Any]:
    registry = FakeRegistry()
    data = make_blob(size)
    digest = registry.put_blob(NAME, data)  # the store keeps a view of these very bytes: no copy
    small = b"warm up" * 1000
    small_digest = registry.put_blob(NAME, small)
    session = requests.Session()
    kept: List[Any] = []  # what a caller holds at the end (the joined content); dropped after measuring
    results: Dict[str, Dict[str, float]] = {}

    def path(blob: str) -> str:
        return f"/v2/{NAME}/blobs/{blob}"

    def streamed(blob: str) -> int:
        received = 0
        with session.get(registry.url + path(blob), stream=True) as response:
            for piece in response.iter_content(MiB):
                received += len(piece)
        return received

    def joined(blob: str) -> int:
        response = session.get(registry.url + path(blob))
        kept.append(response)
        return len(response.content)

    def httpx_streamed(blob: str) -> int:
        received = 0
        with client.stream("GET", path(blob)) as response:
            for piece in response.iter_bytes(MiB):
                received += len(piece)
        return received

    def measure(key: str, pull: Callable[[str], int]) -> None:
        # A small pull first, untraced: imports and first-call caches are not the pull's cost.
        if pull(small_digest) != len(small):
            raise RuntimeError(f"{key}: the warm-up pull came back short")
        kept.clear()
        peak, retained, received = traced(lambda: pull(digest))
        kept.clear()
        if received != size:
            raise RuntimeError(f"{key}: received {received} of {size} bytes")
        results[key] = {"peak": peak / size, "retained": retained / size}

    with registry.mock_requests():
        measure("streamed", streamed)
        measure("content", joined)
    with requests_mock.Mocker() as canned:
        # requests-mock reads canned bytes through a BytesIO, which shares them (no copy).
        canned.get(registry.url + path(digest), content=data)
        canned.get(registry.url + path(small_digest), content=small)
        measure("canned_content", joined)
    with registry.httpx_client() as client:
        measure("httpx_streamed", httpx_streamed)
    session.close()
    return {"size": size, "results": results}


# --------------------------------------------------------------------------- report


def report(
    fixtures: Dict[str, Any], latency: Dict[str, Any], memory: Dict[str, Any], args: argparse.Namespace, elapsed: float
) -> int:
    failures = 0
    width = 86
    print("=" * width)
    print(
        f"fakeregistry {fakeregistry.__version__} fixture and in-process client benchmark"
        + ("  [--quick: indicative only]" if args.quick else "")
    )
    versions = ", ".join(
        f"{package} {metadata.version(package)}" for package in ("pytest", "requests", "requests-mock", "httpx")
    )
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}), {versions}, werkzeug "
        f"{metadata.version('werkzeug')}"
    )
    print(f"{platform.system()} {platform.machine()}, {cpu_name()}, {os.cpu_count()} CPUs")
    print("=" * width)

    # 1.
    tests, rounds = fixtures["tests"], fixtures["rounds"]
    figures = fixtures["figures"]

    def median(fixture: str, key: str) -> float:
        return statistics.median(figures[fixture][key])

    def delta(fixture: str, key: str) -> float:
        """Median over rounds of (with the fixture - without), per test."""
        pairs = zip(figures[fixture][key], figures[""][key])
        return statistics.median(with_ - without for with_, without in pairs)

    print()
    rounds_text = "one round" if rounds == 1 else f"median of {rounds} rounds"
    print(f"1. Fixture setup + teardown per test: {tests} trivial tests, pytest in a subprocess, {rounds_text}")
    print("   (pytest's own setup and teardown durations, minus the same tests without a fixture)")
    if fixtures["cold_imports"]:
        print("   bytecode: the environment's own settings (--cold-imports)")
    else:
        print("   bytecode: a private cache, warmed by one untimed run (first tests pay imports, not compiling)")
    print(f"   baseline, a test without fixtures: {median('', 'steady') * 1e6:.0f} us of setup + teardown (subtracted)")
    print(f"   {'':22} {'':36} {'ms':>9} {'target':>9} {'result':>7}")

    def line(fixture: str, label: str, value_ms: float, target_ms: Optional[float] = None) -> None:
        nonlocal failures
        if target_ms is None:
            print(f"   {fixture:22} {label:36} {value_ms:9.3f}")
            return
        ok = value_ms < target_ms
        failures += not ok
        print(f"   {fixture:22} {label:36} {value_ms:9.3f} {'< ' + format(target_ms, 'g') + ' ms':>9} {verdict(ok):>7}")

    line("fake_registry", f"per test, all {tests}", delta("fake_registry", "all") * 1e3, FAKE_REGISTRY_TARGET_MS)
    line("", "per test, after the first", delta("fake_registry", "steady") * 1e3)
    line("", "first test (imports)", delta("fake_registry", "first") * 1e3)
    line("(pytest floor)", "same fixture graph, trivial bodies", delta("same_shape", "steady") * 1e3)
    line(
        "fake_registry_server",
        "per test, after the first",
        delta("fake_registry_server", "steady") * 1e3,
        SERVER_TARGET_MS,
    )
    line("", "first test (imports, socket start)", delta("fake_registry_server", "first") * 1e3)
    line("", "last teardown (socket stop)", median("fake_registry_server", "last_teardown") * 1e3)
    print(
        "   cross-check, whole pytest run wall time (with - without) / N, one-time costs included:\n"
        f"   fake_registry {delta('fake_registry', 'wall') * 1e3:.2f} ms, "
        f"fake_registry_server {delta('fake_registry_server', 'wall') * 1e3:.2f} ms"
    )
    # The "all N" figure spreads the first test's one-time imports over N tests, so it depends on N.
    first, steady = delta("fake_registry", "first"), delta("fake_registry", "steady")
    target = FAKE_REGISTRY_TARGET_MS / 1e3
    if steady < target:
        print(
            f"   fake_registry, all N = after the first + first test / N: within {FAKE_REGISTRY_TARGET_MS:g} ms "
            f"from N >= {first / (target - steady):.0f} tests"
        )

    # 2.
    rows = latency["rows"]
    print()
    print(f"2. Round-trip latency, GET {MANIFEST_PATH} ({latency['manifest_size']}-byte manifest), in-process")
    print(f"   {'':58} {'median':>7} {'p90':>7} {'calls':>8}")
    print(f"   {'':58} {'us':>7} {'us':>7}")
    labels = (
        ("requests", "(a) requests + requests-mock, reg.mock_requests()"),
        ("httpx", "(b) httpx WSGITransport, reg.httpx_client()"),
        ("canned", "(c) floor: requests + requests-mock, canned response"),
        ("app", "(d) the app alone, prebuilt environ"),
        ("httpx_canned", "(extra) httpx floor: MockTransport, canned response"),
    )
    for key, label in labels:
        times = rows[key]
        print(f"   {label:58} {quantile(times, 0.5) * 1e6:7.1f} {quantile(times, 0.9) * 1e6:7.1f} {len(times):8,}")
    overhead = quantile(rows["requests"], 0.5) - quantile(rows["canned"], 0.5)
    print(f"   (a) - (c), the registry's cost through requests: {overhead * 1e6:.1f} us per request (medians)")

    # 3.
    size = memory["size"]
    results = memory["results"]
    print()
    print(f"3. Peak memory while pulling a {size / MiB:g} MiB blob in-process: tracemalloc peak above the baseline")
    print("   (the registry already holds the blob), x blob size; retained = still allocated after the pull")
    print(f"   {'':58} {'peak':>6} {'retained':>9} {'target':>8} {'result':>7}")
    streamed = results["streamed"]
    ok = streamed["peak"] <= STREAMED_PULL_TARGET
    failures += not ok
    print(
        f"   {'requests, stream=True, iter_content(1 MiB), not joined':58} {streamed['peak']:5.2f}x "
        f"{streamed['retained']:8.2f}x {'<= ' + format(STREAMED_PULL_TARGET, 'g') + 'x':>8} {verdict(ok):>7}"
    )
    for key, label in (
        ("content", "requests, response.content"),
        ("canned_content", "(floor) requests-mock canned bytes, response.content"),
        ("httpx_streamed", "(extra) httpx, client.stream, iter_bytes(1 MiB)"),
    ):
        print(f"   {label:58} {results[key]['peak']:5.2f}x {results[key]['retained']:8.2f}x")
    print("   response.content: the joined body the caller keeps is 1.0x; requests builds it with")
    print("   b''.join(iter_content(10 KiB)), so the list of pieces is another 1.0x until the join ends.")
    print("   The canned-bytes floor pays the same, so that part is requests' own, not the registry's.")

    print()
    targets = 3
    print(f"Targets: {targets - failures}/{targets} PASS    (total time {elapsed:.1f} s)")
    return failures


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 tests, one round, short loops, 64 MiB")
    parser.add_argument("--tests", type=int, help="trivial tests per generated file (default 500, 100 with --quick)")
    parser.add_argument("--rounds", type=int, help="pytest runs per file (default 3, 1 with --quick)")
    parser.add_argument("--seconds", type=float, help="time per latency row (default 1.5, 0.2 with --quick)")
    parser.add_argument("--blob-mib", type=float, help="pulled blob size in MiB (default 256, 64 with --quick)")
    parser.add_argument(
        "--cold-imports",
        action="store_true",
        help="run pytest with the environment's bytecode settings instead of a warmed private cache",
    )
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when a target fails")
    args = parser.parse_args(argv)

    if args.tests is None:
        args.tests = 100 if args.quick else 500
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.seconds is None:
        args.seconds = 0.2 if args.quick else 1.5
    if args.blob_mib is None:
        args.blob_mib = 64 if args.quick else 256
    if args.tests < 3:
        parser.error("--tests must be at least 3 (the first and last tests are reported apart)")

    started = time.perf_counter()
    fixtures = bench_fixture_cost(args.tests, args.rounds, args.cold_imports)
    latency = bench_latency(args.seconds)
    memory = bench_memory(int(args.blob_mib * MiB))
    failures = report(fixtures, latency, memory, args, time.perf_counter() - started)
    return 1 if (failures and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
