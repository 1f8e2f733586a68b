"""An oras-py artifact round trip against the ``fake_registry`` fixture.

oras-py talks to registries through ``requests``, so ``fake_registry`` serves
it in-process. ``oras push`` stores each file as a layer titled with its file
name, a config blob and an OCI image manifest; ``oras pull`` reads the
manifest and writes each layer back under its title.
"""

import json
from types import SimpleNamespace

import oras.client
import oras.decorator
import pytest

REPO = "team/artifact"
TITLE = "org.opencontainers.image.title"  # the file name, on each layer
DATA_TYPE = "application/vnd.example.data.v1"
ANNOTATIONS = {"org.opencontainers.image.description": "an example artifact", "org.example.build": "42"}
FILES = {"readme.md": b"# an artifact\n", "data.bin": bytes(range(256)) * 64}


@pytest.fixture
def oras_client(fake_registry, monkeypatch, tmp_path):
    # oras retries a failing request five times, sleeping 2 + 3**n seconds in between:
    # a bug would stall the test for minutes. Make its retries immediate.
    monkeypatch.setattr(oras.decorator, "time", SimpleNamespace(sleep=lambda seconds: None))
    # oras refuses to push files outside the working directory.
    monkeypatch.chdir(tmp_path)
    # oras reads credentials from ~/.docker/config.json: keep the user's out of the test.
    monkeypatch.setenv("HOME", str(tmp_path))
    return oras.client.OrasClient(hostname=fake_registry.host, insecure=True)


@pytest.fixture
def files(tmp_path):
    """The files to push, under tmp_path/src."""
    (tmp_path / "src").mkdir()
    for name, content in FILES.items():
        (tmp_path / "src" / name).write_bytes(content)
    return tmp_path / "src"


def test_push_and_pull_round_trip(oras_client, fake_registry, files, tmp_path):
    target = f"{fake_registry.host}/{REPO}:v1"

    # Paths relative to the working directory; "path:media/type" sets a layer's media type.
    response = oras_client.push(
        target,
        files=["src/readme.md", f"src/data.bin:{DATA_TYPE}"],
        manifest_annotations=ANNOTATIONS,
        quiet=True,
    )
    assert response.status_code == 201

    pulled = oras_client.pull(target, outdir=str(tmp_path / "out"))

    # Every file came back under its name, byte for byte.
    assert sorted(pulled) == sorted(str(tmp_path / "out" / name) for name in FILES)
    for name, content in FILES.items():
        assert (tmp_path / "out" / name).read_bytes() == content

    # What the registry holds, through its Python API: the tag, and the manifest as oras wrote it.
    assert fake_registry.tags(REPO) == ["v1"]
    manifest = json.loads(fake_registry.get_manifest(REPO, "v1"))
    assert manifest["annotations"] == ANNOTATIONS
    media_types = {layer["annotations"][TITLE]: layer["mediaType"] for layer in manifest["layers"]}
    assert media_types == {"readme.md": "application/vnd.oci.image.layer.v1.tar", "data.bin": DATA_TYPE}


def test_pushing_again_reuploads_nothing_but_the_manifest(oras_client, fake_registry, files):
    target = f"{fake_registry.host}/{REPO}:v1"
    oras_client.push(target, files=["src/readme.md"], quiet=True)
    fake_registry.requests.clear()  # the journal is a list: start afresh for the second push

    oras_client.push(f"{fake_registry.host}/{REPO}:v2", files=["src/readme.md"], quiet=True)

    # oras asks (HEAD) before each upload; the registry already has both blobs, so no upload starts.
    fake_registry.requests.assert_called(times=2, route="blob", method="HEAD", status=200)
    fake_registry.requests.assert_not_called(route="blob-upload")
    fake_registry.requests.assert_called(times=1, route="manifest", method="PUT", reference="v2", status=201)
    assert fake_registry.tags(REPO) == ["v1", "v2"]
