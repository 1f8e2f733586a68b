"""The benchmark scripts keep working (a smoke run; figures are never asserted in tests)."""

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def test_core_benchmark_smoke_run():
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_core.py"), "--quick", "--no-rss", "--seconds", "0.1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "push, chunked" in result.stdout and "pull" in result.stdout


def test_fixtures_benchmark_smoke_run():
    result = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "bench_fixtures.py"),
            "--quick",
            "--tests",
            "10",
            "--seconds",
            "0.05",
            "--blob-mib",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for row in ("fake_registry ", "fake_registry_server", "reg.mock_requests()", "reg.httpx_client()", "stream=True"):
        assert row in result.stdout, row


def test_server_benchmark_smoke_run():
    command = [sys.executable, str(BENCHMARKS / "bench_server.py"), "--quick", "--servers", "werkzeug,fakeregistry"]
    command += ["--blob-mib", "2", "--seconds", "0.1", "--slow-seconds", "0.2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    for row in ("werkzeug", "fakeregistry.serve", "keep-alive", "push chunked", "16 slow"):
        assert row in result.stdout, row
