"""``fakeregistry serve`` as a user runs it: a subprocess, a URL on its first line, skopeo, SIGTERM."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from conftest import require_tool
from skopeo_sandbox import make_sandbox

from oci_layout import build_image, read_manifest, write_layout

TIMEOUT = 30


class Served:
    """A ``fakeregistry serve`` subprocess, read up to its URL line (and the CA line with --tls)."""

    def __init__(self, *args: str, tls: bool = False) -> None:
        command = [sys.executable, "-m", "fakeregistry", "serve", "--port", "0", *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = self.process.stdout.readline()
        assert first.startswith("fakeregistry serving "), first + self.process.stderr.read()
        self.url = first.split()[-1]
        self.host = self.url.split("://", 1)[1]
        self.ca_file = self.process.stdout.readline().split()[-1] if tls else None

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(TIMEOUT)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(TIMEOUT)
        for stream in (self.process.stdout, self.process.stderr):
            stream.close()


@pytest.fixture
def skopeo(tmp_path):
    return make_sandbox(tmp_path / "skopeo", require_tool("skopeo"))


@pytest.fixture
def layout(tmp_path) -> Path:
    image = build_image([{"hello.txt": b"hello\n"}, {"world.txt": b"world\n"}])
    return write_layout(tmp_path / "layout", image, "v1")


def succeeded(result):
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def test_serve_push_with_skopeo_read_the_journal_and_stop(skopeo, layout):
    served = Served()
    try:
        assert served.url.startswith("http://127.0.0.1:")
        destination = f"docker://{served.host}/team/app:v1"
        succeeded(skopeo.run("copy", "--dest-tls-verify=false", "--retry-times=0", f"oci:{layout}:v1", destination))
        journal = requests.get(f"{served.url}/_fakeregistry/requests", timeout=TIMEOUT).json()
        routes = [(record["method"], record["route"], record["status"]) for record in journal]
        assert ("PUT", "manifest", 201) in routes
        assert sum(1 for r in routes if r[1] == "blob-upload-chunk" and r[2] == 201) == 3  # config and 2 layers
        assert requests.get(f"{served.url}/v2/team/app/tags/list", timeout=TIMEOUT).json()["tags"] == ["v1"]
    finally:
        code = served.stop()
    assert code == 0


def test_sigint_stops_cleanly_too():
    served = Served()
    try:
        served.process.send_signal(signal.SIGINT)
        assert served.process.wait(TIMEOUT) == 0
    finally:
        served.kill()


def test_load_a_layout_and_pull_it_back_with_skopeo(skopeo, layout, tmp_path):
    served = Served("--load", f"{layout}:v1=team/app:v1")
    try:
        pulled = tmp_path / "pulled"
        source = f"docker://{served.host}/team/app:v1"
        succeeded(skopeo.run("copy", "--src-tls-verify=false", "--retry-times=0", source, f"oci:{pulled}:v1"))
        assert read_manifest(pulled, "v1") == read_manifest(layout, "v1")
    finally:
        assert served.stop() == 0


def test_tls_with_skopeo_trusting_the_written_ca(skopeo, layout, tmp_path):
    pytest.importorskip("cryptography")
    served = Served("--tls", "--tls-dir", str(tmp_path / "certs"), tls=True)
    try:
        assert served.url.startswith("https://127.0.0.1:")
        assert Path(served.ca_file).is_file()
        assert requests.get(f"{served.url}/v2/", verify=served.ca_file, timeout=TIMEOUT).json() == {}
        cert_dir = str(Path(served.ca_file).parent)
        destination = f"docker://{served.host}/team/app:v1"
        # TLS verification stays on: skopeo trusts the CA the command printed.
        succeeded(skopeo.run("copy", f"--dest-cert-dir={cert_dir}", "--retry-times=0", f"oci:{layout}:v1", destination))
        inspected = json.loads(succeeded(skopeo.run("inspect", f"--cert-dir={cert_dir}", destination)))
        assert inspected["Digest"] == read_manifest(layout, "v1")[0]
    finally:
        assert served.stop() == 0


def test_help_explains_each_flag_with_examples():
    result = subprocess.run(
        [sys.executable, "-m", "fakeregistry", "serve", "--help"], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.returncode == 0
    for flag in ("--host", "--port", "--auth", "--user", "--access", "--fault", "--load", "--tls", "--journal-limit"):
        assert flag in result.stdout, flag
    assert "examples:" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--load", "/nonexistent/layout"], "--load"),
        (["--user", "nocolon"], "--user"),
        (["--fault", "nope:500"], "--fault"),
        (["--auth", "digest"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(args, message):
    result = subprocess.run(
        [sys.executable, "-m", "fakeregistry", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 2
    assert message in result.stderr
