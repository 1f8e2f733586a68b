"""Loading images from files: OCI image layouts (directories and tars) and ``docker save`` archives.

Each kind of source is built by hand here, byte for byte as the tools write
them, then loaded and checked through the registry's API; skopeo then pulls
what was loaded over a socket (verifying every digest), and writes layouts and
archives of its own for ``load`` to read.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import pytest
from conftest import require_tool
from skopeo_sandbox import SkopeoSandbox, make_sandbox

from fakeregistry import FakeRegistry, loading, serve
from fakeregistry.loading import Loaded, LoadError, load, parse_load_spec, split_source
from oci_layout import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    REF_NAME,
    Blob,
    OCIImage,
    build_image,
    make_tar,
    read_blob,
    read_manifest,
    sha256,
    write_layout,
)

OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
CONTAINERD_NAME = "io.containerd.image.name"


# building sources


@pytest.fixture(scope="module")
def image() -> OCIImage:
    return build_image([{"etc/motd": b"hello\n"}, {"usr/bin/tool": b"#!/bin/sh\necho tool\n"}])


@pytest.fixture(scope="module")
def arm_image() -> OCIImage:
    return build_image([{"etc/motd": b"hello\n"}, {"usr/bin/tool": b"arm tool\n"}], architecture="arm64")


def uncompressed_image(layer_files: Sequence[Mapping[str, bytes]], architecture: str = "amd64") -> OCIImage:
    """An OCI image with uncompressed layers, as Docker 25+ writes them in ``docker save``."""
    layers = tuple(Blob(OCI_LAYER, make_tar(files)) for files in layer_files)
    config_document = {
        "architecture": architecture,
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers]},
    }
    config = Blob(OCI_CONFIG, json.dumps(config_document, sort_keys=True).encode())
    manifest_document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
    }
    return OCIImage(layers, config, Blob(OCI_MANIFEST, json.dumps(manifest_document).encode()))


def index_of(*images: OCIImage) -> Blob:
    manifests = []
    for each in images:
        config = json.loads(each.config.data)
        manifests.append(
            {**each.manifest.descriptor(), "platform": {"architecture": config["architecture"], "os": config["os"]}}
        )
    return Blob(OCI_INDEX, json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode())


def layout_files(
    entries: Sequence[Tuple[Blob, Mapping[str, str]]], blobs: Sequence[Blob], *, prefix: str = ""
) -> Dict[str, bytes]:
    """The files of an OCI layout: index.json lists ``entries`` (a manifest or index, its annotations)."""
    files = {f"{prefix}oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode()}
    descriptors = [{**blob.descriptor(), **({"annotations": dict(a)} if a else {})} for blob, a in entries]
    files[f"{prefix}index.json"] = json.dumps({"schemaVersion": 2, "manifests": descriptors}).encode()
    for blob in [*blobs, *(blob for blob, _ in entries)]:
        files[f"{prefix}blobs/sha256/{blob.digest.split(':')[1]}"] = blob.data
    return files


def image_blobs(*images: OCIImage) -> List[Blob]:
    return [blob for each in images for blob in (*each.blobs, each.manifest)]


def write_files(directory: Path, files: Mapping[str, bytes]) -> Path:
    for name, data in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(data)
    return directory


def write_tar(path: Path, files: Mapping[str, bytes], symlinks: Mapping[str, str] = {}, compress: bool = False) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, target in symlinks.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), 0o644
            archive.addfile(info, io.BytesIO(content))
    path.write_bytes(gzip.compress(buffer.getvalue(), mtime=0) if compress else buffer.getvalue())
    return path


def classic_docker_save(
    path: Path, images: Sequence[Tuple[OCIImage, Sequence[str]]], compress: bool = False
) -> Dict[str, Any]:
    """A ``docker save`` archive as Docker before 25 (and skopeo's docker-archive:) write it.

    ``<config hex>.json`` configs, ``<diff id hex>.tar`` layers (uncompressed) with
    ``<v1 id>/layer.tar`` symbolic links to them, ``repositories``, and
    ``manifest.json`` listing each image's config, RepoTags and layers.
    """
    files: Dict[str, bytes] = {}
    symlinks: Dict[str, str] = {}
    entries = []
    for each, repo_tags in images:
        config_name = f"{each.config.digest.split(':')[1]}.json"
        files[config_name] = each.config.data
        layers = []
        for layer in each.layers:
            tar = gzip.decompress(layer.data) if layer.media_type.endswith("gzip") else layer.data
            diff_hex = sha256(tar).split(":")[1]
            v1_id = sha256(f"v1 {diff_hex} {config_name}".encode()).split(":")[1]
            files[f"{diff_hex}.tar"] = tar
            files[f"{v1_id}/VERSION"], files[f"{v1_id}/json"] = b"1.0", json.dumps({"id": v1_id}).encode()
            symlinks[f"{v1_id}/layer.tar"] = f"../{diff_hex}.tar"
            layers.append(f"{v1_id}/layer.tar")
        entries.append({"Config": config_name, "RepoTags": list(repo_tags), "Layers": layers})
    files["manifest.json"] = json.dumps(entries).encode()
    files["repositories"] = b"{}"
    write_tar(path, files, symlinks, compress)
    return {"manifest.json": entries}


def docker25_save(path: Path, image: OCIImage, repo_tag: str, *, index: Optional[Blob] = None) -> None:
    """A ``docker save`` archive as Docker 25+ writes it: an OCI layout plus manifest.json.

    With ``index``, index.json names that index, of which the archive holds only ``image``
    (docker save with the containerd image store, when only one platform was pulled).
    """
    name, tag = f"docker.io/library/{repo_tag}" if "/" not in repo_tag else repo_tag, repo_tag.rsplit(":", 1)[1]
    root = index or image.manifest
    files = layout_files([(root, {CONTAINERD_NAME: name, REF_NAME: tag})], image_blobs(image))
    layer_names = [f"blobs/sha256/{layer.digest.split(':')[1]}" for layer in image.layers]
    entry = {
        "Config": f"blobs/sha256/{image.config.digest.split(':')[1]}",
        "RepoTags": [repo_tag],
        "Layers": layer_names,
        "LayerSources": {layer.digest: layer.descriptor() for layer in image.layers},
    }
    files["manifest.json"] = json.dumps([entry]).encode()
    files["repositories"] = b"{}"
    write_tar(path, files)


def assert_image_stored(registry: FakeRegistry, repository: str, reference: str, image: OCIImage) -> None:
    assert registry.get_manifest(repository, reference) == image.manifest.data
    for blob in image.blobs:
        assert registry.get_blob(repository, blob.digest) == blob.data, blob.digest


# OCI image layouts


def test_layout_directory_with_a_tag_only_ref_loads_into_a_destination_repository(
    registry: FakeRegistry, tmp_path: Path, image: OCIImage
) -> None:
    layout = write_layout(tmp_path / "layout", image, "v1")  # as skopeo copy ... oci:layout:v1 writes it

    assert load(registry, layout, "team/app") == [Loaded("team/app", "v1", image.digest, OCI_MANIFEST)]
    assert load(registry, str(layout), "other/app:stable")[0].reference == "other/app:stable"

    assert registry.tags("team/app") == ["v1"]
    assert_image_stored(registry, "team/app", "v1", image)
    assert_image_stored(registry, "other/app", "stable", image)


def test_a_tag_only_ref_without_destination_asks_for_a_repository(
    registry: FakeRegistry, tmp_path: Path, image: OCIImage
) -> None:
    layout = write_layout(tmp_path / "layout", image, "v1")
    with pytest.raises(LoadError, match=r"layout: image v1 is named by the tag 'v1' only.*give a destination repo"):
        load(registry, layout)
    assert registry.repositories() == []


def test_a_full_ref_name_is_the_default_destination(registry: FakeRegistry, tmp_path: Path, image: OCIImage) -> None:
    files = layout_files([(image.manifest, {REF_NAME: "ghcr.io/team/app:v1"})], image_blobs(image))
    layout = write_files(tmp_path / "layout", files)

    [loaded] = load(registry, layout)

    assert loaded.reference == "team/app:v1"  # the registry host is dropped
    assert_image_stored(registry, "team/app", "v1", image)


def test_oci_archive_tar_with_dot_slash_member_names(registry: FakeRegistry, tmp_path: Path, image: OCIImage) -> None:
    # tar -C layout -cf layout.tar . names members ./index.json, ./blobs/sha256/...
    files = layout_files([(image.manifest, {REF_NAME: "v1"})], image_blobs(image), prefix="./")
    archive = write_tar(tmp_path / "layout.tar", files)

    [loaded] = load(registry, archive, "team/app")

    assert (loaded.reference, loaded.digest) == ("team/app:v1", image.digest)
    assert_image_stored(registry, "team/app", "v1", image)


def test_multi_platform_index_is_pushed_whole(
    registry: FakeRegistry, tmp_path: Path, image: OCIImage, arm_image: OCIImage, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = index_of(image, arm_image)
    layout = write_files(tmp_path / "layout", layout_files([(index, {REF_NAME: "v1"})], image_blobs(image, arm_image)))
    pushed: List[str] = []
    put_manifest = registry.put_manifest
    monkeypatch.setattr(registry, "put_manifest", lambda *args: pushed.append(args[1]) or put_manifest(*args))

    assert load(registry, layout, "team/app") == [Loaded("team/app", "v1", index.digest, OCI_INDEX)]

    assert pushed == [image.digest, arm_image.digest, "v1"]  # the platform manifests by digest, then the tag
    assert registry.tags("team/app") == ["v1"]  # the platform manifests are there by digest, untagged
    assert registry.get_manifest("team/app", "v1") == index.data
    assert_image_stored(registry, "team/app", image.digest, image)
    assert_image_stored(registry, "team/app", arm_image.digest, arm_image)


def test_layout_with_two_refs(registry: FakeRegistry, tmp_path: Path, image: OCIImage, arm_image: OCIImage) -> None:
    entries = [(image.manifest, {REF_NAME: "v1"}), (arm_image.manifest, {REF_NAME: "v2"})]
    layout = write_files(tmp_path / "layout", layout_files(entries, image_blobs(image, arm_image)))

    # A ref selects one image...
    assert load(registry, f"{layout}:v2", "team/app") == [Loaded("team/app", "v2", arm_image.digest, OCI_MANIFEST)]
    assert load(registry, f"{layout}:v1", "team/app:stable")[0].digest == image.digest
    assert load(registry, f"{layout}:@{arm_image.digest}", "team/app:arm")[0].digest == arm_image.digest
    # ...a destination repository takes them all, under their own tags
    assert [i.reference for i in load(registry, layout, "all/app")] == ["all/app:v1", "all/app:v2"]
    assert registry.tags("team/app") == ["arm", "stable", "v2"]
    assert registry.get_manifest("all/app", "v2") == arm_image.manifest.data

    with pytest.raises(LoadError) as raised:
        load(registry, layout, "team/app:latest")
    assert str(raised.value).startswith(f"{layout}: holds 2 images: v1; v2, and the destination 'team/app:latest'")
    assert f"select it with {layout}:REF" in str(raised.value)
    with pytest.raises(LoadError, match=r"layout: no image named 'v3'; it holds 2 images: v1; v2"):
        load(registry, f"{layout}:v3", "team/app")


def test_paths_with_colons(registry: FakeRegistry, tmp_path: Path, image: OCIImage) -> None:
    layout = write_layout(tmp_path / "lay:out", image, "v1")
    files = layout_files([(image.manifest, {REF_NAME: "docker.io/library/alpine:3.19"})], image_blobs(image))
    named = write_files(tmp_path / "named", files)

    assert load(registry, str(layout), "a/b")[0].reference == "a/b:v1"  # it exists: a path, whatever its colons
    assert load(registry, f"{layout}:v1", "c/d")[0].reference == "c/d:v1"  # the longest existing prefix
    assert load(registry, f"{named}:docker.io/library/alpine:3.19")[0].reference == "alpine:3.19"  # a ref with colons
    assert load(registry, f"{named}:alpine:3.19", "e/f")[0].reference == "e/f:3.19"  # matched as repository:tag
    assert load(registry, f"{named}:3.19", "g/h:x")[0].reference == "g/h:x"  # matched as a tag
    assert split_source(layout) == (layout, None)  # a Path is never split
    assert split_source(f"{layout}:") == (layout, None)
    with pytest.raises(LoadError, match=r"nowhere:v1: no such file or directory"):
        load(registry, str(tmp_path / "nowhere:v1"))


def test_parse_load_spec(tmp_path: Path) -> None:
    assert parse_load_spec("./layout:v1=team/app:v1") == ("./layout:v1", "team/app:v1")
    assert parse_load_spec("alpine.tar") == ("alpine.tar", None)
    odd = tmp_path / "a=b"
    odd.mkdir()
    assert parse_load_spec(str(odd)) == (str(odd), None)
    assert parse_load_spec(f"{odd}=team/app") == (str(odd), "team/app")


# docker save


def test_classic_docker_save(
    registry: FakeRegistry, tmp_path: Path, image: OCIImage, arm_image: OCIImage, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "images.tar"
    reads: List[str] = []
    read = loading._Tar.read
    monkeypatch.setattr(loading._Tar, "read", lambda self, name: reads.append(self.identity(name)) or read(self, name))
    classic_docker_save(
        archive, [(image, ["team/app:v1", "team/app:latest"]), (arm_image, ["docker.io/library/alpine:3.19"])]
    )

    loaded = load(registry, archive)

    assert [each.reference for each in loaded] == ["team/app:v1", "team/app:latest", "alpine:3.19"]
    assert {each.media_type for each in loaded} == {DOCKER_MANIFEST}
    manifest = json.loads(registry.get_manifest("team/app", "v1"))
    assert manifest["mediaType"] == DOCKER_MANIFEST and loaded[0].digest == sha256(
        registry.get_manifest("team/app", "v1")
    )
    assert manifest["config"] == {
        "mediaType": DOCKER_CONFIG,
        "size": len(image.config.data),
        "digest": image.config.digest,
    }
    # The layers are the archive's tars, uncompressed: each digest is the config's diff ID.
    diff_ids = json.loads(image.config.data)["rootfs"]["diff_ids"]
    assert [layer["digest"] for layer in manifest["layers"]] == diff_ids
    assert {layer["mediaType"] for layer in manifest["layers"]} == {DOCKER_LAYER}
    for layer, source in zip(manifest["layers"], image.layers):
        assert registry.get_blob("team/app", layer["digest"]) == gzip.decompress(source.data)
    assert registry.get_blob("team/app", image.config.digest) == image.config.data
    assert registry.get_manifest("team/app", "latest") == registry.get_manifest("team/app", "v1")
    assert registry.tags("alpine") == ["3.19"]
    # The images share their first layer (two layer.tar links to one file): every file is read once.
    assert sorted(reads) == sorted(set(reads)) and len(reads) == 1 + 2 + 3  # manifest.json, configs, layers
    # The same archive gives the same manifest: loading is deterministic.
    assert load(FakeRegistry(), archive)[0].digest == loaded[0].digest

    # A ref selects one image, and one of its names.
    other = FakeRegistry()
    assert [each.reference for each in load(other, f"{archive}:team/app:latest")] == ["team/app:latest"]
    assert [each.reference for each in load(other, f"{archive}:alpine:3.19", "mirror/alpine")] == ["mirror/alpine:3.19"]


@pytest.mark.parametrize(
    "repo_tag, expected",
    [
        ("alpine:3.19", "alpine:3.19"),  # docker save writes Docker Hub names like this
        ("docker.io/library/alpine:3.19", "alpine:3.19"),  # skopeo's docker-archive, containerd
        ("library/alpine:3.19", "alpine:3.19"),  # the same image, as docker prints it
        ("docker.io/team/app:v1", "team/app:v1"),
        ("ghcr.io/org/app:v1", "org/app:v1"),
        ("localhost:5000/team/app:v2", "team/app:v2"),
        ("team/app", "team/app:latest"),
    ],
)
def test_docker_save_names(
    registry: FakeRegistry, tmp_path: Path, image: OCIImage, repo_tag: str, expected: str
) -> None:
    archive = tmp_path / "image.tar"
    classic_docker_save(archive, [(image, [repo_tag])])
    assert [each.reference for each in load(registry, archive)] == [expected]


def test_gzip_compressed_docker_save(registry: FakeRegistry, tmp_path: Path, image: OCIImage) -> None:
    archive = tmp_path / "image.tar.gz"  # docker save app | gzip > image.tar.gz
    classic_docker_save(archive, [(image, ["team/app:v1"])], compress=True)

    [loaded] = load(registry, archive)

    assert loaded.reference == "team/app:v1"
    assert registry.get_blob("team/app", image.config.digest) == image.config.data


def test_docker_save_with_gzip_layers(registry: FakeRegistry, tmp_path: Path, image: OCIImage) -> None:
    # docker load also takes gzip layer tars; their diff IDs are those of the uncompressed tars.
    files = {f"{image.config.digest.split(':')[1]}.json": image.config.data}
    files.update({f"layer{i}.tar": layer.data for i, layer in enumerate(image.layers)})
    entry = {"Config": next(iter(files)), "RepoTags": ["team/app:v1"], "Layers": ["layer0.tar", "layer1.tar"]}
    files["manifest.json"] = json.dumps([entry]).encode()
    write_tar(tmp_path / "image.tar", files)

    load(registry, tmp_path / "image.tar")

    manifest = json.loads(registry.get_manifest("team/app", "v1"))
    assert [layer["digest"] for layer in manifest["layers"]] == list(image.layer_digests)
    assert {layer["mediaType"] for layer in manifest["layers"]} == {DOCKER_LAYER_GZIP}


def test_docker_25_save_loads_its_oci_manifest_byte_for_byte(registry: FakeRegistry, tmp_path: Path) -> None:
    image = uncompressed_image([{"etc/motd": b"hello\n"}, {"bin/tool": b"tool\n"}])
    docker25_save(tmp_path / "alpine.tar", image, "alpine:3.19")

    assert load(registry, tmp_path / "alpine.tar") == [Loaded("alpine", "3.19", image.digest, OCI_MANIFEST)]
    assert_image_stored(registry, "alpine", "3.19", image)


def test_docker_save_of_a_multi_platform_image_with_one_platform_present(
    registry: FakeRegistry, tmp_path: Path
) -> None:
    # With the containerd image store, index.json names the whole index, but only the pulled
    # platform's manifest and blobs are in the archive: that platform is loaded.
    image = uncompressed_image([{"etc/motd": b"amd64\n"}])
    absent = uncompressed_image([{"etc/motd": b"arm64\n"}], architecture="arm64")
    index = index_of(image, absent)
    docker25_save(tmp_path / "app.tar", image, "team/app:v1", index=index)

    assert load(registry, tmp_path / "app.tar") == [Loaded("team/app", "v1", image.digest, OCI_MANIFEST)]
    assert_image_stored(registry, "team/app", "v1", image)


# errors: each names the path and the problem, and nothing is stored


def test_not_a_layout(registry: FakeRegistry, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        LoadError, match=r"empty: not an OCI image layout \(no index.json\) nor a docker save directory"
    ):
        load(registry, tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("not a tar\n" * 200)
    with pytest.raises(LoadError, match=r"notes.txt: neither a directory nor a readable tar archive"):
        load(registry, tmp_path / "notes.txt")
    write_tar(tmp_path / "other.tar", {"README": b"hello"})
    with pytest.raises(LoadError, match=r"other.tar: not an OCI image layout .* nor a docker save archive"):
        load(registry, tmp_path / "other.tar")


def test_missing_blob(registry: FakeRegistry, tmp_path: Path, image: OCIImage) -> None:
    layout = write_layout(tmp_path / "layout", image, "v1")
    missing = image.layer_digests[1].split(":")[1]
    (layout / "blobs" / "sha256" / missing).unlink()

    with pytest.raises(LoadError) as raised:
        load(registry, layout, "team/app")

    assert str(raised.value) == f"{layout}: missing blob blobs/sha256/{missing}, layer 1 of manifest {image.digest}"
    assert registry.repositories() == []


def test_corrupt_blob(registry: FakeRegistry, tmp_path: Path, image: OCIImage, arm_image: OCIImage) -> None:
    corrupt = image.layer_digests[0].split(":")[1]
    files = layout_files([(index_of(image, arm_image), {REF_NAME: "v1"})], image_blobs(image, arm_image))
    files[f"blobs/sha256/{corrupt}"] = files[f"blobs/sha256/{corrupt}"][:-1] + b"!"
    archive = write_tar(tmp_path / "layout.tar", files)

    with pytest.raises(LoadError, match=rf"layout.tar: blob blobs/sha256/{corrupt} is corrupt: its content has digest"):
        load(registry, archive, "team/app")
    assert registry.repositories() == []  # the other platform, read before, was not stored either


def test_corrupt_docker_save_layer(registry: FakeRegistry, tmp_path: Path, image: OCIImage) -> None:
    archive = tmp_path / "image.tar"
    classic_docker_save(archive, [(image, ["team/app:v1"])])
    with tarfile.open(archive) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar if m.isreg()}  # type: ignore[union-attr]
        links = {m.name: m.linkname for m in tar if m.issym()}
    diff_id = json.loads(image.config.data)["rootfs"]["diff_ids"][1]
    files[f"{diff_id.split(':')[1]}.tar"] += b"\0"
    write_tar(archive, files, links)

    with pytest.raises(
        LoadError,
        match=rf"image.tar: .*/layer.tar is corrupt: its tar has digest .*diff ID for layer 1 .* is {diff_id}",
    ):
        load(registry, archive)
    assert registry.repositories() == []


def test_ambiguous_names(registry: FakeRegistry, tmp_path: Path, image: OCIImage, arm_image: OCIImage) -> None:
    archive = tmp_path / "images.tar"
    classic_docker_save(archive, [(image, ["team/a:v1"]), (arm_image, ["team/b:v1", "team/b:v2"])])
    with pytest.raises(
        LoadError, match=r"images.tar: 'v1' is ambiguous: it names 2 images \(team/a:v1; team/b:v1, team/b:v2\)"
    ):
        load(registry, f"{archive}:v1", "team/c")
    assert load(registry, f"{archive}:v2", "team/c")[0].reference == "team/c:v2"

    entries = [(image.manifest, {REF_NAME: "team/app:v1"}), (arm_image.manifest, {REF_NAME: "team/app:v1"})]
    layout = write_files(tmp_path / "layout", layout_files(entries, image_blobs(image, arm_image)))
    with pytest.raises(
        LoadError, match=r"layout: two images would both be team/app:v1: team/app:v1 \(sha256:"
    ) as raised:
        load(registry, layout)
    assert f"({image.digest}) and team/app:v1 ({arm_image.digest}); select one with {layout}:REF" in str(raised.value)
    assert registry.repositories() == ["team/c"]


def test_bad_destinations(registry: FakeRegistry, tmp_path: Path, image: OCIImage) -> None:
    layout = write_layout(tmp_path / "layout", image, "v1")
    with pytest.raises(LoadError, match=r"destination 'Team/App': invalid repository name"):
        load(registry, layout, "Team/App")
    with pytest.raises(LoadError, match=r"destination 'team/app@sha256:.*never a digest"):
        load(registry, layout, f"team/app@{image.digest}")
    unnamed = write_files(tmp_path / "unnamed", layout_files([(image.manifest, {})], image_blobs(image)))
    with pytest.raises(
        LoadError, match=r"unnamed: image index.json manifests\[0\] .* has no tag: give a destination REPO:TAG"
    ):
        load(registry, unnamed, "team/app")
    assert load(registry, unnamed, "team/app:v1")[0].digest == image.digest


# skopeo: pulls what was loaded, and writes what load reads


def skopeo_sandbox(tmp_path: Path) -> SkopeoSandbox:
    return make_sandbox(tmp_path / "skopeo", require_tool("skopeo"))


def skopeo_copy(sandbox: SkopeoSandbox, source: str, destination: str, *options: str) -> None:
    tls = ["--src-tls-verify=false", "--dest-tls-verify=false", f"--src-cert-dir={sandbox.certs}"]
    result = sandbox.run("copy", "--quiet", "--retry-times=0", *tls, *options, source, destination, timeout=30)
    assert result.returncode == 0, f"skopeo copy {source} {destination}: {result.stderr.decode(errors='replace')}"


@pytest.fixture
def served(registry: FakeRegistry) -> Iterator[str]:
    with serve(registry) as server:
        yield server.host


def test_skopeo_pulls_what_was_loaded(
    registry: FakeRegistry, served: str, tmp_path: Path, image: OCIImage, arm_image: OCIImage
) -> None:
    sandbox = skopeo_sandbox(tmp_path)
    index = index_of(image, arm_image)
    write_files(tmp_path / "multi", layout_files([(index, {REF_NAME: "v1"})], image_blobs(image, arm_image)))
    load(registry, tmp_path / "multi", "team/multi")
    load(registry, write_layout(tmp_path / "single", image, "v1"), "team/single")
    classic_docker_save(tmp_path / "classic.tar", [(image, ["team/classic:v1"])])
    load(registry, tmp_path / "classic.tar")
    docker25 = uncompressed_image([{"etc/motd": b"docker 25\n"}])
    docker25_save(tmp_path / "docker25.tar", docker25, "team/docker25:v1")
    load(registry, tmp_path / "docker25.tar")

    pulled = tmp_path / "pulled"
    for repository in ("multi", "single", "classic", "docker25"):
        # Without --dest-oci-accept-uncompressed-layers, skopeo would gzip uncompressed layers for oci:.
        options = ["--dest-oci-accept-uncompressed-layers", *(["--all"] if repository == "multi" else [])]
        skopeo_copy(sandbox, f"docker://{served}/team/{repository}:v1", f"oci:{pulled}:{repository}", *options)

    # OCI content comes back byte for byte; skopeo verified every digest on the way.
    assert read_manifest(pulled, "multi") == (index.digest, index.data)
    assert read_manifest(pulled, "single") == (image.digest, image.manifest.data)
    assert read_manifest(pulled, "docker25") == (docker25.digest, docker25.manifest.data)
    for blob in image_blobs(image, arm_image):
        assert read_blob(pulled, blob.digest) == blob.data
    # The Docker schema 2 manifest with uncompressed layers: skopeo converts it to OCI (the layer
    # media type becomes OCI's uncompressed one, the config is rewritten); the layers are the same blobs.
    _, data = read_manifest(pulled, "classic")
    manifest = json.loads(data)
    diff_ids = json.loads(image.config.data)["rootfs"]["diff_ids"]
    assert json.loads(read_blob(pulled, manifest["config"]["digest"]))["rootfs"]["diff_ids"] == diff_ids
    assert [layer["digest"] for layer in manifest["layers"]] == diff_ids
    assert {layer["mediaType"] for layer in manifest["layers"]} == {OCI_LAYER}


def test_load_what_skopeo_wrote(registry: FakeRegistry, served: str, tmp_path: Path, image: OCIImage) -> None:
    sandbox = skopeo_sandbox(tmp_path)
    for blob in image.blobs:
        registry.put_blob("team/app", blob.data)
    registry.put_manifest("team/app", "v1", image.manifest.data)
    source = f"docker://{served}/team/app:v1"
    skopeo_copy(sandbox, source, f"oci:{tmp_path / 'layout'}:v1")
    skopeo_copy(sandbox, source, f"oci-archive:{tmp_path / 'layout.tar'}:v1")
    skopeo_copy(sandbox, source, f"docker-archive:{tmp_path / 'docker.tar'}:team/app:v1")

    assert load(fresh := FakeRegistry(), tmp_path / "layout", "team/app")[0].digest == image.digest
    assert_image_stored(fresh, "team/app", "v1", image)
    assert load(fresh := FakeRegistry(), f"{tmp_path / 'layout.tar'}:v1", "copy/app:v2")[0].digest == image.digest
    assert_image_stored(fresh, "copy/app", "v2", image)
    # skopeo's docker-archive: uncompressed layers, RepoTags docker.io/team/app:v1.
    [loaded] = load(registry, tmp_path / "docker.tar")
    assert (loaded.reference, loaded.media_type) == ("team/app:v1", DOCKER_MANIFEST)
    manifest = json.loads(registry.get_manifest("team/app", "v1"))
    assert manifest["config"]["digest"] == image.config.digest
    assert [layer["digest"] for layer in manifest["layers"]] == json.loads(image.config.data)["rootfs"]["diff_ids"]

    # ...and skopeo pulls that Docker schema 2 image with uncompressed layers, as it is.
    skopeo_copy(sandbox, source, f"dir:{tmp_path / 'dir'}")
    assert (tmp_path / "dir" / "manifest.json").read_bytes() == registry.get_manifest("team/app", "v1")


def test_command_line_load(tmp_path: Path, image: OCIImage, capsys: pytest.CaptureFixture[str]) -> None:
    from fakeregistry.cli import build_parser, registry_from

    parser = build_parser()
    layout = write_layout(tmp_path / "layout", image, "v1")
    try:
        args = parser.parse_args(["serve", "--load", f"{layout}:v1=team/app", "--load", f"{layout}=other/app:x"])
    except SystemExit:
        pytest.skip("fakeregistry serve has no --load option")

    registry = registry_from(args, parser)

    assert registry.get_manifest("team/app", "v1") == registry.get_manifest("other/app", "x") == image.manifest.data
    assert f"fakeregistry loaded team/app:v1 ({image.digest}) from {layout}:v1\n" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        registry_from(parser.parse_args(["serve", "--load", str(layout)]), parser)
    assert f"error: --load '{layout}': {layout}: image v1 is named by the tag 'v1' only" in capsys.readouterr().err
