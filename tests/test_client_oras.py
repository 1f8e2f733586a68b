"""oras-py, a real OCI artifact client, against fakeregistry on a loopback socket.

oras pushes each file as a layer titled with its name (a directory as a
tar+gzip layer), a config blob, then an OCI image manifest; it pulls by
reading the manifest and writing each layer under its title.
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict

import oras.client
import oras.decorator
import oras.oci
import pytest
import requests

from helpers import OCI_MANIFEST, sha256

REPO = "team/artifact"
CONFIG_TYPE = "application/vnd.example.tool.config.v1+json"
DATA_TYPE = "application/vnd.example.data"
DIR_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"  # what oras makes of a directory
TITLE = "org.opencontainers.image.title"
ANNOTATIONS = {"org.opencontainers.image.description": "test artifact", "org.example.build": "42"}
CONFIG = json.dumps({"tool": "example", "version": 1}).encode()
DATA = random.Random(0).randbytes(3 * 1024 * 1024 + 5)  # several 1 MiB chunks, and a short one
FILES = {
    "readme.md": b"# an artifact\n",
    "data.bin": DATA,
    "docs/a.txt": b"first\n",
    "docs/sub/b.txt": b"second\n",
}


@pytest.fixture
def oras_client(live_server, monkeypatch, tmp_path) -> oras.client.OrasClient:
    # oras retries a failed request five times, sleeping 2 + 3**n seconds in
    # between: a registry bug would stall the suite for minutes. Retry at once.
    monkeypatch.setattr(oras.decorator, "time", SimpleNamespace(sleep=lambda seconds: None))
    # oras stages directory archives in tempfile's directory and leaves the pulled ones.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    # push refuses files outside the working directory.
    monkeypatch.chdir(tmp_path)
    return oras.client.OrasClient(hostname=live_server.host, insecure=True)


@pytest.fixture
def artifact(tmp_path) -> Path:
    """The files to push, under tmp_path/artifact."""
    root = tmp_path / "artifact"
    for name, content in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    (tmp_path / "config.json").write_bytes(CONFIG)
    return root


def target(live_server, reference: str = "v1") -> str:
    separator = "@" if ":" in reference else ":"
    return f"{live_server.host}/{REPO}{separator}{reference}"


def push(client: oras.client.OrasClient, live_server, tag: str = "v1", **options: Any) -> requests.Response:
    """Push the artifact fixture's files (run from tmp_path, as oras wants relative paths)."""
    return client.push(
        target(live_server, tag),
        files=["artifact/readme.md", f"artifact/data.bin:{DATA_TYPE}", "artifact/docs"],
        manifest_config=f"config.json:{CONFIG_TYPE}",
        manifest_annotations=ANNOTATIONS,
        quiet=True,
        **options,
    )


def read_tree(root: Path) -> Dict[str, bytes]:
    files = (path for path in root.rglob("*") if path.is_file())
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in files}


def stored_manifest(live_server, reference: str = "v1") -> Dict[str, Any]:
    return json.loads(live_server.registry.get_manifest(REPO, reference))


def test_pull_returns_the_pushed_files(oras_client, live_server, artifact, tmp_path):
    response = push(oras_client, live_server)
    assert response.status_code == 201

    pulled = oras_client.pull(target(live_server), outdir=str(tmp_path / "pulled"))

    assert sorted(Path(path).name for path in pulled) == ["data.bin", "docs", "readme.md"]
    assert read_tree(tmp_path / "pulled") == FILES


def test_stored_manifest_keeps_config_annotations_and_titles(oras_client, live_server, artifact):
    response = push(oras_client, live_server)

    registry = live_server.registry
    data = registry.get_manifest(REPO, "v1")
    assert response.headers["Docker-Content-Digest"] == sha256(data)
    manifest = json.loads(data)
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["annotations"] == ANNOTATIONS
    # oras-py 0.2 cannot set artifactType; the image spec then takes the config's
    # media type as the artifact's type (see the referrers test below).
    assert "artifactType" not in manifest
    assert manifest["config"]["mediaType"] == CONFIG_TYPE
    assert registry.get_blob(REPO, manifest["config"]["digest"]) == CONFIG

    layers = {layer["annotations"][TITLE]: layer for layer in manifest["layers"]}
    assert list(layers) == ["readme.md", "data.bin", "docs"]
    assert layers["data.bin"]["mediaType"] == DATA_TYPE
    assert layers["docs"]["mediaType"] == DIR_TYPE
    for name in ("readme.md", "data.bin"):
        assert registry.get_blob(REPO, layers[name]["digest"]) == FILES[name]
        assert layers[name]["size"] == len(FILES[name])


def test_chunked_push_sends_contiguous_patches(oras_client, live_server, artifact, tmp_path):
    push(oras_client, live_server, do_chunked=True, chunk_size=1024 * 1024)

    manifest = stored_manifest(live_server)
    data_digest = manifest["layers"][1]["digest"]
    assert live_server.registry.get_blob(REPO, data_digest) == DATA
    # data.bin's session: one PATCH per MiB, each Content-Range continuing the last.
    completions = live_server.registry.requests.filter(route="blob-upload-chunk", method="PUT")
    session = next(r.upload_id for r in completions if r.args["digest"] == data_digest)
    patches = live_server.registry.requests.filter(method="PATCH")
    ranges = [r.headers["Content-Range"] for r in patches if r.upload_id == session]
    assert ranges == ["0-1048575", "1048576-2097151", "2097152-3145727", "3145728-3145732"]

    oras_client.pull(target(live_server), outdir=str(tmp_path / "pulled"))
    assert read_tree(tmp_path / "pulled") == FILES


def test_get_tags(oras_client, live_server, artifact):
    for tag in ("v2", "v1", "latest"):
        push(oras_client, live_server, tag)
    live_server.registry.push_image(REPO, "seeded")  # tags seeded through the Python API count too

    assert oras_client.get_tags(f"{live_server.host}/{REPO}") == ["latest", "seeded", "v1", "v2"]
    # With N, oras asks for pages of N and stops once it has N.
    assert oras_client.get_tags(f"{live_server.host}/{REPO}", N=2) == ["latest", "seeded"]


def test_push_with_subject_is_listed_as_a_referrer(oras_client, live_server, artifact):
    pushed = push(oras_client, live_server)
    subject_digest = pushed.headers["Docker-Content-Digest"]
    # Not oras.oci.Subject.from_manifest: it hashes its own re-serialisation of
    # the manifest, which matches the stored bytes only by luck.
    subject_size = len(live_server.registry.get_manifest(REPO, "v1"))
    subject = oras.oci.Subject(OCI_MANIFEST, subject_digest, subject_size)

    response = oras_client.push(
        target(live_server, "signature"), files=["artifact/readme.md"], subject=subject, quiet=True
    )

    assert response.headers["OCI-Subject"] == subject_digest
    assert stored_manifest(live_server, "signature")["subject"]["digest"] == subject_digest
    # oras-py has no referrers call: ask the API through its session.
    referrers = oras_client.do_request(f"{live_server.url}/v2/{REPO}/referrers/{subject_digest}")
    assert referrers.status_code == 200
    (descriptor,) = referrers.json()["manifests"]
    assert descriptor["digest"] == response.headers["Docker-Content-Digest"]
    # No config given: oras pushes "{}" typed as unknown, which stands as the artifact type.
    assert descriptor["artifactType"] == "application/vnd.unknown.config.v1+json"


def test_delete_tag_deletes_the_manifest(oras_client, live_server, artifact):
    digest = push(oras_client, live_server).headers["Docker-Content-Digest"]

    # oras resolves the tag with HEAD, then deletes the manifest by digest.
    assert oras_client.delete_tag(f"{live_server.host}/{REPO}", "v1")

    assert oras_client.get_tags(f"{live_server.host}/{REPO}") == []
    with pytest.raises(KeyError):
        live_server.registry.get_manifest(REPO, digest)
