"""The real skopeo client against fakeregistry over a loopback socket.

skopeo (containers/image) is a demanding client: it pings /v2/ over HTTPS and
falls back to HTTP, streams uploads with PATCH, mounts blobs across
repositories, converts manifests, and checks every digest it pulls. Each test
runs skopeo in a sandbox (HOME, config files, caches and policy under tmp_path)
so nothing on the machine changes what it does, and nothing it does outlives the test.
"""

from __future__ import annotations

import http.client
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Tuple

import pytest
from conftest import LiveServer, require_tool
from skopeo_sandbox import SkopeoSandbox, make_sandbox

from fakeregistry import FakeRegistry
from oci_layout import OCIImage, build_image, read_blob, read_manifest, write_layout

if TYPE_CHECKING:
    pass

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def log(registry: FakeRegistry) -> str:
    """What skopeo asked, from the registry's journal: for failure messages."""
    return "\n".join(f"  {record.describe()}" for record in registry.requests) or "  (no requests)"


# skopeo, sandboxed


@dataclass
class Skopeo:
    sandbox: SkopeoSandbox
    server: LiveServer

    def ref(self, repository: str, tag: str) -> str:
        return f"docker://{self.server.host}/{repository}:{tag}"

    def run(self, *args: str) -> bytes:
        """Run skopeo; fail the test with its stderr and the HTTP exchanges if it fails."""
        result = self.sandbox.run(*args)
        if result.returncode != 0:
            registry: FakeRegistry = self.server.registry  # type: ignore[assignment]
            pytest.fail(
                f"skopeo {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stderr.decode(errors='replace')}\nHTTP exchanges:\n{log(registry)}",
                pytrace=False,
            )
        return result.stdout

    def copy(self, source: str, destination: str, *options: str) -> None:
        # The TLS and certificate flags only matter for docker:// ends; skopeo accepts them for any.
        certs = self.sandbox.certs
        tls = ["--src-tls-verify=false", "--dest-tls-verify=false"]
        tls += [f"--src-cert-dir={certs}", f"--dest-cert-dir={certs}"]
        self.run("copy", "--quiet", "--retry-times=0", *tls, *options, source, destination)

    def registry_command(self, command: str, *args: str) -> bytes:
        """inspect, list-tags or delete: the commands that talk to one registry."""
        certs = self.sandbox.certs
        return self.run(command, "--retry-times=0", "--tls-verify=false", f"--cert-dir={certs}", *args)


@pytest.fixture
def skopeo(tmp_path: Path, live_server: LiveServer) -> Skopeo:
    return Skopeo(make_sandbox(tmp_path / "skopeo", require_tool("skopeo")), live_server)


# images


@pytest.fixture(scope="module")
def image() -> OCIImage:
    """Three gzip layers; the last, incompressible, takes more than one of the server's 1 MiB reads."""
    return build_image(
        [
            {"etc/motd": b"hello from fakeregistry\n"},
            {"usr/local/bin/tool": b"#!/bin/sh\necho tool\n", "usr/local/share/tool/README": b"read me\n"},
            {"srv/data.bin": random.Random(0).randbytes(3 * 1024 * 1024 // 2)},
        ]
    )


@pytest.fixture
def layout(tmp_path: Path, image: OCIImage) -> Path:
    """``image`` as an OCI layout directory, tagged v1."""
    return write_layout(tmp_path / "layout", image, "v1")


def seed(registry: FakeRegistry, repository: str, tag: str, image: OCIImage) -> None:
    """Store ``image`` through the Python API, so a test exercises only skopeo's pull side."""
    for blob in image.blobs:
        registry.put_blob(repository, blob.data)
    registry.put_manifest(repository, tag, image.manifest.data)


def assert_blobs_stored(registry: FakeRegistry, repository: str, image: OCIImage) -> None:
    for blob in image.blobs:
        assert registry.get_blob(repository, blob.digest) == blob.data, f"{blob.digest} in {repository}"


def get_manifest(server: LiveServer, repository: str, reference: str) -> Tuple[int, Optional[str]]:
    """Status and Content-Type of a plain manifest GET, as any client would see them."""
    connection = http.client.HTTPConnection(server.host, timeout=10)  # never goes through a proxy
    try:
        accept = f"{OCI_MANIFEST}, {DOCKER_MANIFEST}"
        connection.request("GET", f"/v2/{repository}/manifests/{reference}", headers={"Accept": accept})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type")
    finally:
        connection.close()


# tests


def test_push_oci_layout(skopeo: Skopeo, registry: FakeRegistry, layout: Path, image: OCIImage) -> None:
    skopeo.copy(f"oci:{layout}:v1", skopeo.ref("team/app", "v1"))

    assert registry.tags("team/app") == ["v1"]
    # An OCI image needs no conversion for a registry, so skopeo pushes the manifest byte for byte.
    assert registry.get_manifest("team/app", "v1") == image.manifest.data
    assert_blobs_stored(registry, "team/app", image)


def test_push_converted_to_docker_v2s2(skopeo: Skopeo, registry: FakeRegistry, layout: Path, image: OCIImage) -> None:
    skopeo.copy(f"oci:{layout}:v1", skopeo.ref("team/docker-app", "v1"), "--format=v2s2")

    assert get_manifest(skopeo.server, "team/docker-app", "v1") == (200, DOCKER_MANIFEST)
    manifest = json.loads(registry.get_manifest("team/docker-app", "v1"))
    assert manifest["mediaType"] == DOCKER_MANIFEST
    assert manifest["config"]["mediaType"] == DOCKER_CONFIG
    assert [layer["mediaType"] for layer in manifest["layers"]] == [DOCKER_LAYER_GZIP] * len(image.layers)
    # Converting changes only the media types: the config and layers are the same blobs.
    assert manifest["config"]["digest"] == image.config.digest
    assert [layer["digest"] for layer in manifest["layers"]] == list(image.layer_digests)
    assert_blobs_stored(registry, "team/docker-app", image)


def test_inspect(skopeo: Skopeo, registry: FakeRegistry, image: OCIImage) -> None:
    seed(registry, "team/app", "v1", image)
    registry.put_manifest("team/app", "stable", image.manifest.data)
    reference = skopeo.ref("team/app", "v1")

    info = json.loads(skopeo.registry_command("inspect", reference))
    assert info["Digest"] == image.digest
    assert info["Layers"] == list(image.layer_digests)
    assert (info["Os"], info["Architecture"]) == ("linux", "amd64")
    assert sorted(info["RepoTags"]) == ["stable", "v1"]

    assert skopeo.registry_command("inspect", "--raw", reference) == image.manifest.data
    assert skopeo.registry_command("inspect", "--raw", "--config", reference) == image.config.data


def test_copy_between_repositories_mounts_blobs(
    skopeo: Skopeo, registry: FakeRegistry, layout: Path, image: OCIImage
) -> None:
    # Pushed with skopeo, not seeded: skopeo mounts only blobs its cache has seen in the source repository.
    skopeo.copy(f"oci:{layout}:v1", skopeo.ref("team/app", "v1"))
    registry.requests.clear()

    skopeo.copy(skopeo.ref("team/app", "v1"), skopeo.ref("other/app", "v1"))

    assert registry.get_manifest("other/app", "v1") == image.manifest.data
    assert_blobs_stored(registry, "other/app", image)
    # Each layer is mounted (201 to the POST), never uploaded again; the config, copied on
    # another path in containers/image, is uploaded.
    mounted = {
        (record.args["mount"], record.args.get("from"))
        for record in registry.requests.filter(route="blob-upload", repository="other/app", status=201)
        if "mount" in record.args
    }
    assert mounted == {(digest, "team/app") for digest in image.layer_digests}, log(registry)


def test_pull_to_oci_layout(skopeo: Skopeo, registry: FakeRegistry, tmp_path: Path, image: OCIImage) -> None:
    seed(registry, "team/app", "v1", image)
    destination = tmp_path / "pulled"

    skopeo.copy(skopeo.ref("team/app", "v1"), f"oci:{destination}:v1")

    digest, manifest = read_manifest(destination, "v1")
    assert (digest, manifest) == (image.digest, image.manifest.data)
    for blob in image.blobs:
        assert read_blob(destination, blob.digest) == blob.data


def test_list_tags(skopeo: Skopeo, registry: FakeRegistry, image: OCIImage) -> None:
    tags = ["1.0", "1.1", "latest", "v1"]
    seed(registry, "team/app", tags[0], image)
    for tag in tags[1:]:
        registry.put_manifest("team/app", tag, image.manifest.data)

    listing = json.loads(skopeo.registry_command("list-tags", f"docker://{skopeo.server.host}/team/app"))

    assert listing["Repository"] == f"{skopeo.server.host}/team/app"
    assert sorted(listing["Tags"]) == tags


def test_delete(skopeo: Skopeo, registry: FakeRegistry, image: OCIImage) -> None:
    other = build_image([{"other.txt": b"another image\n"}])
    seed(registry, "team/app", "v1", image)
    seed(registry, "team/app", "v2", other)

    skopeo.registry_command("delete", skopeo.ref("team/app", "v1"))

    # skopeo resolves the tag and deletes by digest: the manifest goes, with its tag; the other image stays.
    registry.requests.assert_called(route="manifest", method="DELETE", reference=image.digest, status=202)
    assert registry.tags("team/app") == ["v2"]
    with pytest.raises(KeyError):
        registry.get_manifest("team/app", image.digest)
    assert get_manifest(skopeo.server, "team/app", "v1")[0] == 404
    assert get_manifest(skopeo.server, "team/app", image.digest)[0] == 404
    assert registry.get_manifest("team/app", "v2") == other.manifest.data
