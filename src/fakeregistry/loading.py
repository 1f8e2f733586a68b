"""Loading images from files into a registry: OCI image layouts and ``docker save`` archives.

``load(registry, source, destination=None)`` reads ``source`` and pushes what it
holds, as a client would, but without HTTP. ``source`` is a path to:

- an OCI image layout directory (``oci-layout``, ``index.json``,
  ``blobs/<algorithm>/<hex>``), as skopeo (``oci:DIR:REF``), umoci, buildah,
  crane or ``docker buildx --output type=oci,tar=false`` write it;
- the same layout in a tar file (``skopeo copy ... oci-archive:FILE``,
  ``podman save --format oci-archive``, ``docker buildx --output type=oci``);
- a ``docker save`` archive, in the classic format (``manifest.json`` listing
  each image's config and layer tars) or the one Docker 25+ writes (an OCI
  layout plus ``manifest.json``), also when extracted into a directory.

Tar files may be gzip, bzip2 or xz compressed.

Selecting an image: ``PATH:REF``. When ``source`` names an existing file or
directory, it is the path, whatever its colons. Otherwise ``source`` is
``PATH:REF``, where ``PATH`` is the longest part before a ``:`` that exists, so
both paths and refs may contain colons (``./layout:docker.io/library/alpine:3.19``).
``REF`` is matched against each image's names: exactly as written in the
archive (the ``org.opencontainers.image.ref.name`` annotation, containerd's
``io.containerd.image.name``, an entry of ``RepoTags``), then as
``repository:tag``, then as a tag; ``@<digest>`` selects by manifest digest (by
image ID, the config digest, in a ``docker save`` archive). A ``pathlib.Path``
is always a path, never split.

Naming: ``destination`` is ``REPO:TAG`` (one image, under that tag), ``REPO``
(every selected image into that repository, under its own tags), or ``None``
(every selected image under its own names). An image's own name comes from
``RepoTags`` in a ``docker save`` archive, from the annotations in a layout;
the registry host is dropped and Docker Hub names are written as Docker prints
them (``docker.io/library/alpine:3.19`` becomes ``alpine:3.19``,
``ghcr.io/org/app:v1`` becomes ``org/app:v1``). A layout's ref name with no
``/`` or ``:`` (``v1``, as ``skopeo copy ... oci:DIR:v1`` writes) is a tag
only: such an image needs a destination repository.

Content: an image index is pushed whole, its manifests by digest first, then
the index under the tag. Manifests and blobs are pushed byte for byte, each
verified against its digest (and size) as it is read; nothing is stored until
everything has been read and verified, so a bad archive leaves the registry
untouched. A classic ``docker save`` image has no registry manifest: it gets a
Docker schema 2 manifest whose layers are the archive's layer tars as they
are, uncompressed (``application/vnd.docker.image.rootfs.diff.tar``), so each
layer digest is the config's ``rootfs.diff_ids`` entry, checked on load.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import posixpath
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Set, Tuple, Union

from .errors import RegistryError
from .grammar import DIGEST_ALGORITHMS, check_name, check_tag, digest_of
from .manifests import (
    DOCKER_MANIFEST,
    IMAGE_MANIFEST_TYPES,
    INDEX_TYPES,
    OCI_ARTIFACT_MANIFEST,
    parse_manifest,
)

if TYPE_CHECKING:
    from .registry import FakeRegistry

__all__ = ["LoadError", "Loaded", "load", "parse_load_spec", "split_source"]

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_HUB = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

BLOB_PATH_RE = re.compile(r"blobs/([a-z0-9]+)/([a-f0-9]+)")
CLASSIC_CONFIG_RE = re.compile(r"([a-f0-9]{64})\.json")
MAX_DEPTH = 8  # indexes within indexes, and symbolic links within a tar
READ_CHUNK = 1024 * 1024

Source = Union[str, "os.PathLike[str]"]


class LoadError(ValueError):
    """The source cannot be loaded; the message names the path and what is wrong."""


class _MissingBlob(LoadError):
    pass


@dataclass(frozen=True)
class Loaded:
    """One image ``load`` stored, under one tag (``tag`` is None: stored by digest only)."""

    repository: str
    tag: Optional[str]
    digest: str  # the manifest's (or index's) digest
    media_type: str

    @property
    def reference(self) -> str:
        """``repository:tag``, or ``repository@digest`` when untagged."""
        return f"{self.repository}:{self.tag}" if self.tag else f"{self.repository}@{self.digest}"


# naming


@dataclass(frozen=True)
class _Name:
    raw: str  # as written in the archive
    repository: Optional[str]  # None: a tag only
    tag: Optional[str]  # None: untagged (a name@digest)

    def __str__(self) -> str:
        return self.raw


def _reference_name(raw: str) -> _Name:
    """``[host/]path[:tag][@digest]``, as Docker prints it: no registry host, no ``library/`` for Docker Hub."""
    rest, _, digest = raw.partition("@")
    tag: Optional[str] = None
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1 :]
    domain, slash, remainder = rest.partition("/")
    if slash and ("." in domain or ":" in domain or domain == "localhost"):
        rest = remainder
    else:
        domain = "docker.io"
    if domain in DOCKER_HUB and rest.startswith("library/") and rest.count("/") == 1:
        rest = rest[len("library/") :]
    if tag is None and not digest:
        tag = "latest"
    return _Name(raw, rest, tag)


def _ref_name(raw: str) -> _Name:
    """A layout's ref name: a whole reference, or (without ``/``, ``:`` or ``@``) a tag only."""
    if any(character in raw for character in "/:@"):
        return _reference_name(raw)
    return _Name(raw, None, raw)


def _parse_destination(destination: str) -> Tuple[str, Optional[str]]:
    repository, tag = destination, None
    colon = destination.rfind(":")
    if colon > destination.rfind("/"):
        repository, tag = destination[:colon], destination[colon + 1 :]
    try:
        if "@" in destination:
            raise LoadError("a destination is REPO or REPO:TAG, never a digest")
        check_name(repository)
        if tag is not None:
            check_tag(tag)
    except (RegistryError, LoadError) as error:
        raise LoadError(f"destination {destination!r}: {_reason(error)}") from None
    return repository, tag


def _reason(error: Exception) -> str:
    return error.message if isinstance(error, RegistryError) else str(error)


def split_source(source: Source) -> Tuple[Path, Optional[str]]:
    """``(path, ref)``: ``source`` itself when it exists, else ``PATH:REF`` with the longest existing ``PATH``."""
    if not isinstance(source, str):
        return Path(source), None
    if os.path.exists(source):
        return Path(source), None
    colons = [index for index, character in enumerate(source) if character == ":"]
    for index in reversed(colons):
        if index and os.path.exists(source[:index]):
            return Path(source[:index]), source[index + 1 :] or None
    raise LoadError(f"{source}: no such file or directory")


def parse_load_spec(spec: str) -> Tuple[str, Optional[str]]:
    """``SOURCE[=DESTINATION]`` (the command line's ``--load``): split at the last ``=``, unless ``spec`` exists."""
    source, equals, destination = spec.rpartition("=")
    if not equals or os.path.exists(spec):
        return spec, None
    return source, destination or None


# reading files from a directory or a tar


class _Files:
    """The files of a layout or an archive, by their ``/``-separated names."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def exists(self, name: str) -> bool:
        raise NotImplementedError

    def read(self, name: str) -> Optional[bytes]:
        """The file's content, or None when there is no such file."""
        raise NotImplementedError

    def identity(self, name: str) -> str:
        """The file ``name`` is, once links are followed: two names of one file have the same identity."""
        return name

    def close(self) -> None:
        pass


class _Directory(_Files):
    def _file(self, name: str) -> Path:
        return self.path.joinpath(*name.split("/"))

    def exists(self, name: str) -> bool:
        return self._file(name).is_file()

    def read(self, name: str) -> Optional[bytes]:
        file = self._file(name)
        try:
            return file.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as error:
            raise LoadError(f"{self.path}: cannot read {name}: {error.strerror or error}") from None

    def identity(self, name: str) -> str:
        return str(self._file(name).resolve())


def _member_name(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")  # "./a//b" -> "a/b"; ".." cannot climb above the root


class _Tar(_Files):
    """A tar file. Uncompressed: members are read in place, on demand. Compressed: one pass, reading every file."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        try:
            with open(path, "rb") as file:
                magic = file.read(6)
        except OSError as error:
            raise LoadError(f"{path}: cannot read: {error.strerror or error}") from None
        if magic.startswith(b"\x28\xb5\x2f\xfd"):
            raise LoadError(f"{path}: a zstd-compressed file; decompress it first (zstd -d)")
        compressed = magic.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00"))
        self.members: Dict[str, tarfile.TarInfo] = {}
        self.contents: Dict[str, bytes] = {}  # compressed tars: every regular file, read in one pass
        try:
            self.tar = tarfile.open(path, "r|*" if compressed else "r:")
        except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
            raise LoadError(f"{path}: neither a directory nor a readable tar archive ({error})") from None
        try:
            for member in self.tar:
                name = _member_name(member.name)
                self.members[name] = member  # a later member replaces an earlier one, as on extraction
                if compressed and member.isreg():
                    extracted = self.tar.extractfile(member)
                    assert extracted is not None
                    self.contents[name] = extracted.read()
        except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
            self.tar.close()
            raise LoadError(f"{path}: a damaged tar archive ({error})") from None

    def _resolve(self, name: str) -> Optional[Tuple[str, tarfile.TarInfo]]:
        for _ in range(MAX_DEPTH):
            member = self.members.get(name)
            if member is None:
                return None
            if member.issym():
                name = _member_name(posixpath.join(posixpath.dirname(name), member.linkname))
            elif member.islnk():
                name = _member_name(member.linkname)
            else:
                return (name, member) if member.isreg() else None
        return None

    def exists(self, name: str) -> bool:
        return self._resolve(name) is not None

    def identity(self, name: str) -> str:
        resolved = self._resolve(name)
        return resolved[0] if resolved else name

    def read(self, name: str) -> Optional[bytes]:
        resolved = self._resolve(name)
        if resolved is None:
            return None
        name, member = resolved
        if name in self.contents:
            return self.contents[name]
        try:
            extracted = self.tar.extractfile(member)
            assert extracted is not None
            return extracted.read()
        except (tarfile.TarError, OSError) as error:
            raise LoadError(f"{self.path}: cannot read {name}: {error}") from None

    def close(self) -> None:
        self.tar.close()


def _open(path: Path) -> _Files:
    if path.is_dir():
        return _Directory(path)
    if path.is_file():
        return _Tar(path)
    raise LoadError(f"{path}: not a directory or a file")


# plans: what to push, read and verified


@dataclass(frozen=True)
class _Manifest:
    digest: str
    data: bytes
    media_type: str


@dataclass
class _Plan:
    manifests: List[_Manifest] = field(default_factory=list)  # pushed in order, by digest; the last is tagged
    blobs: Dict[str, bytes] = field(default_factory=dict)  # digest -> verified content

    @property
    def root(self) -> _Manifest:
        return self.manifests[-1]


@dataclass(frozen=True)
class _Layer:
    """A docker save layer tar."""

    data: bytes
    digest: str  # sha256, of the bytes as they are
    media_type: str
    diff_id: str  # of the uncompressed tar


@dataclass
class _Candidate:
    """An image the source holds, before it is read: its names, and how to read it."""

    label: str  # for messages
    key: str  # the manifest digest (for a classic docker save image: the config digest)
    names: List[_Name]
    build: Callable[[], _Plan]


class _Reader:
    def __init__(self, files: _Files) -> None:
        self.files = files
        self.path = files.path
        self.verified: Dict[str, bytes] = {}  # blobs read so far, by digest: each is read once
        self.layers: Dict[str, _Layer] = {}  # docker save layer tars read so far, by identity

    def fail(self, message: str) -> LoadError:
        return LoadError(f"{self.path}: {message}")

    def json(self, name: str, data: Optional[bytes] = None) -> Any:
        if data is None:
            data = self.files.read(name)
            if data is None:
                raise self.fail(f"{name} is missing")
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as error:
            raise self.fail(f"{name} is not valid JSON: {error}") from None

    # candidates

    def candidates(self) -> List[_Candidate]:
        if self.files.exists("manifest.json"):
            return self.docker_candidates()
        if self.files.exists("index.json"):
            return self.layout_candidates()
        kind = "directory" if isinstance(self.files, _Directory) else "archive"
        raise self.fail(
            f"not an OCI image layout (no index.json) nor a docker save {kind} (no manifest.json): "
            "expected a layout as skopeo, umoci or buildah write it, or a docker save tarball"
        )

    def layout_descriptors(self) -> List[Dict[str, Any]]:
        layout = self.files.read("oci-layout")
        if layout is not None:
            header = self.json("oci-layout", layout)
            if not isinstance(header, dict) or not isinstance(header.get("imageLayoutVersion"), str):
                raise self.fail("oci-layout has no imageLayoutVersion: not an OCI image layout")
        index = self.json("index.json")
        manifests = index.get("manifests") if isinstance(index, dict) else None
        if not isinstance(manifests, list):
            raise self.fail("index.json is not an image index: it has no manifests list")
        if not manifests:
            raise self.fail("index.json lists no images")
        return [self.descriptor(item, f"index.json manifests[{i}]") for i, item in enumerate(manifests)]

    def layout_candidates(self) -> List[_Candidate]:
        candidates = []
        for i, descriptor in enumerate(self.layout_descriptors()):
            names = _annotation_names(descriptor)
            label = names[-1].raw if names else f"index.json manifests[{i}] ({descriptor['digest']})"
            candidates.append(
                _Candidate(label, descriptor["digest"], names, _bind(self.plan, descriptor, "the manifest"))
            )
        return candidates

    def docker_candidates(self) -> List[_Candidate]:
        entries = self.json("manifest.json")
        if not isinstance(entries, list) or not entries:
            raise self.fail("manifest.json is not a docker save manifest: expected a non-empty list of images")
        candidates = []
        for i, entry in enumerate(entries):
            where = f"manifest.json[{i}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
                raise self.fail(f"{where} has no Config")
            layers = entry.get("Layers")
            if not isinstance(layers, list) or not all(isinstance(layer, str) for layer in layers):
                raise self.fail(f"{where}.Layers must be a list of file names")
            repo_tags = entry.get("RepoTags") or []
            if not isinstance(repo_tags, list) or not all(isinstance(tag, str) for tag in repo_tags):
                raise self.fail(f"{where}.RepoTags must be a list of names")
            config_name = self.archive_name(entry["Config"], where)
            key = _digest_from_path(config_name) or f"{where} ({config_name})"
            names = [_reference_name(raw) for raw in repo_tags]
            label = ", ".join(repo_tags) or f"{where} ({key})"
            candidates.append(_Candidate(label, key, names, _bind(self.docker_plan, entry, where)))
        return candidates

    def archive_name(self, name: str, where: str) -> str:
        normalized = posixpath.normpath(name)
        if normalized.startswith(("/", "../")) or normalized == "..":
            raise self.fail(f"{where} names {name!r}, outside the archive")
        return normalized

    # OCI content

    def descriptor(self, value: Any, where: str) -> Dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"{where} is not a descriptor")
        digest, size = value.get("digest"), value.get("size")
        if not isinstance(digest, str) or not BLOB_PATH_RE.fullmatch(f"blobs/{digest.replace(':', '/', 1)}"):
            raise self.fail(f"{where} has an invalid digest {digest!r}")
        algorithm, encoded = digest.split(":", 1)
        if len(encoded) != DIGEST_ALGORITHMS.get(algorithm, -1):
            raise self.fail(f"{where} has digest {digest!r}: expected sha256:<64 hex> or sha512:<128 hex>")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise self.fail(f"{where} has an invalid size {size!r}")
        return value

    def blob(self, descriptor: Dict[str, Any], what: str) -> bytes:
        """The blob's content, verified against the descriptor's digest and size."""
        digest: str = descriptor["digest"]
        data = self.verified.get(digest)
        if data is not None:
            return data
        algorithm, encoded = digest.split(":", 1)
        name = f"blobs/{algorithm}/{encoded}"
        data = self.files.read(name)
        if data is None:
            raise _MissingBlob(f"{self.path}: missing blob {name}, {what}")
        actual = digest_of(data, algorithm)
        if actual != digest:
            raise self.fail(f"blob {name} is corrupt: its content has digest {actual}, not {digest} ({what})")
        size = descriptor.get("size")
        if size is not None and size != len(data):
            raise self.fail(f"blob {name} is {len(data)} bytes, not {size} as its descriptor says ({what})")
        self.verified[digest] = data
        return data

    def plan(self, descriptor: Dict[str, Any], what: str) -> _Plan:
        plan = _Plan()
        self.walk(descriptor, what, plan, set(), 0)
        return plan

    def walk(self, descriptor: Dict[str, Any], what: str, plan: _Plan, seen: Set[str], depth: int) -> None:
        digest: str = descriptor["digest"]
        if digest in seen:
            return
        if depth > MAX_DEPTH:
            raise self.fail(f"indexes nested more than {MAX_DEPTH} deep at {digest}")
        data = self.blob(descriptor, what)
        document = self.json(f"manifest {digest}", data)
        declared = document.get("mediaType") if isinstance(document, dict) else None
        media_type = declared or descriptor.get("mediaType")
        try:
            parsed = parse_manifest(data, media_type if isinstance(media_type, str) else None)
        except RegistryError as error:
            raise self.fail(f"manifest {digest} ({what}) is invalid: {error.message}") from None
        if parsed.media_type in INDEX_TYPES:
            for i, child in enumerate(document["manifests"]):
                child = self.descriptor(child, f"manifests[{i}] of index {digest}")
                self.walk(child, f"manifest {i} of index {digest}", plan, seen, depth + 1)
        elif parsed.media_type in IMAGE_MANIFEST_TYPES or parsed.media_type == OCI_ARTIFACT_MANIFEST:
            for role, item in _content_descriptors(document):
                item = self.descriptor(item, f"{role} of manifest {digest}")
                if item.get("urls") and not self.files.exists(_blob_name(item["digest"])):
                    continue  # a foreign (non-distributable) layer: clients fetch it from its urls
                plan.blobs[item["digest"]] = self.blob(item, f"{role} of manifest {digest}")
        seen.add(digest)
        plan.manifests.append(_Manifest(digest, data, parsed.media_type))

    def image_manifests(self, descriptor: Dict[str, Any], depth: int = 0) -> Iterator[Tuple[Dict[str, Any], Any]]:
        """The image manifests under ``descriptor`` that the source has, with their documents; skips absent ones."""
        try:
            data = self.blob(descriptor, "an image")
        except _MissingBlob:
            return
        document = self.json(f"manifest {descriptor['digest']}", data)
        if not isinstance(document, dict):
            return
        children = document.get("manifests")
        if isinstance(children, list) and depth < MAX_DEPTH:
            for i, child in enumerate(children):
                child = self.descriptor(child, f"manifests[{i}] of index {descriptor['digest']}")
                yield from self.image_manifests(child, depth + 1)
        elif isinstance(document.get("config"), dict):
            yield descriptor, document

    # docker save

    def docker_plan(self, entry: Dict[str, Any], where: str) -> _Plan:
        """Docker 25+ archives: the OCI manifest they hold, byte for byte; classic ones: a schema 2 manifest."""
        config_name = self.archive_name(entry["Config"], where)
        config_digest = _digest_from_path(config_name)
        if config_digest is not None and self.files.exists("index.json"):
            for top in self.layout_descriptors():
                for image, document in self.image_manifests(top):
                    if document["config"].get("digest") != config_digest:
                        continue
                    try:
                        return self.plan(top, f"the manifest of {where}")
                    except _MissingBlob:
                        # An index with only some platforms' content (docker save with the containerd
                        # image store): the platform this archive holds whole.
                        return self.plan(image, f"the manifest of {where}")
        return self.classic_plan(entry, where, config_name, config_digest)

    def classic_plan(self, entry: Dict[str, Any], where: str, config_name: str, expected: Optional[str]) -> _Plan:
        plan = _Plan()
        config = self.files.read(config_name)
        if config is None:
            raise self.fail(f"{config_name} is missing: it is the config of {where}")
        config_digest = digest_of(config, expected.split(":")[0] if expected else "sha256")
        if expected is not None and config_digest != expected:
            raise self.fail(f"{config_name} is corrupt: its content has digest {config_digest}, not {expected}")
        document = self.json(config_name, config)
        rootfs = document.get("rootfs") if isinstance(document, dict) else None
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        layers: List[str] = entry["Layers"]
        if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
            raise self.fail(
                f"{where} lists {len(layers)} layers, but its config {config_name} has "
                f"{len(diff_ids) if isinstance(diff_ids, list) else 'no'} rootfs.diff_ids"
            )
        layer_sources = entry.get("LayerSources")
        sources: Dict[str, Any] = layer_sources if isinstance(layer_sources, dict) else {}
        descriptors = []
        for i, (layer_name, diff_id) in enumerate(zip(layers, diff_ids)):
            foreign = sources.get(diff_id) if isinstance(diff_id, str) else None
            if isinstance(foreign, dict) and foreign.get("urls"):
                descriptors.append(self.descriptor(foreign, f"{where}.LayerSources[{diff_id}]"))
                continue
            layer = self.layer(self.archive_name(layer_name, f"{where}.Layers[{i}]"), diff_id, f"layer {i} of {where}")
            plan.blobs[layer.digest] = layer.data
            descriptors.append({"mediaType": layer.media_type, "size": len(layer.data), "digest": layer.digest})
        plan.blobs[config_digest] = config
        manifest = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "size": len(config), "digest": config_digest},
            "layers": descriptors,
        }
        data = json.dumps(manifest, indent=3).encode()  # indented as docker and distribution write them
        plan.manifests.append(_Manifest(digest_of(data), data, DOCKER_MANIFEST))
        return plan

    def layer(self, name: str, diff_id: Any, what: str) -> _Layer:
        """A layer tar, checked against its diff ID (the digest of the uncompressed tar)."""
        if not isinstance(diff_id, str) or ":" not in diff_id or diff_id.split(":")[0] not in DIGEST_ALGORITHMS:
            raise self.fail(f"the config gives {what} the invalid diff ID {diff_id!r}")
        algorithm = diff_id.split(":")[0]
        identity = self.files.identity(name)
        layer = self.layers.get(identity)  # images of one archive often share layers: each is read once
        if layer is None or not layer.diff_id.startswith(f"{algorithm}:"):
            data = self.files.read(name)
            if data is None:
                raise self.fail(f"{name} is missing: it is {what}")
            digest = digest_of(data)
            if data.startswith(b"\x1f\x8b"):  # docker load takes gzip layer tars too
                layer = _Layer(data, digest, DOCKER_LAYER_GZIP, _gunzipped_digest(data, algorithm, self.fail, name))
            else:
                layer = _Layer(
                    data, digest, DOCKER_LAYER, digest if algorithm == "sha256" else digest_of(data, algorithm)
                )
            self.layers[identity] = layer
        if layer.diff_id != diff_id:
            raise self.fail(
                f"{name} is corrupt: its tar has digest {layer.diff_id}, "
                f"but the config's diff ID for {what} is {diff_id}"
            )
        return layer


def _bind(method: Callable[[Dict[str, Any], str], _Plan], argument: Dict[str, Any], what: str) -> Callable[[], _Plan]:
    return lambda: method(argument, what)


def _annotation_names(descriptor: Dict[str, Any]) -> List[_Name]:
    annotations = descriptor.get("annotations")
    if not isinstance(annotations, dict):
        return []
    names = []
    if isinstance(annotations.get(CONTAINERD_NAME), str):
        names.append(_reference_name(annotations[CONTAINERD_NAME]))
    if isinstance(annotations.get(REF_NAME), str) and annotations[REF_NAME]:
        names.append(_ref_name(annotations[REF_NAME]))
    return names


def _content_descriptors(document: Dict[str, Any]) -> Iterator[Tuple[str, Any]]:
    if "config" in document:
        yield "the config", document["config"]
    for i, layer in enumerate(document.get("layers") or []):
        yield f"layer {i}", layer
    for i, blob in enumerate(document.get("blobs") or []):
        yield f"blob {i}", blob


def _blob_name(digest: str) -> str:
    return "blobs/" + digest.replace(":", "/", 1)


def _digest_from_path(name: str) -> Optional[str]:
    """The digest a file name gives: ``blobs/sha256/<hex>`` (Docker 25+), ``<hex>.json`` (a classic config)."""
    match = BLOB_PATH_RE.fullmatch(name)
    if match and DIGEST_ALGORITHMS.get(match.group(1)) == len(match.group(2)):
        return f"{match.group(1)}:{match.group(2)}"
    match = CLASSIC_CONFIG_RE.fullmatch(name)
    return f"sha256:{match.group(1)}" if match else None


def _gunzipped_digest(data: bytes, algorithm: str, fail: Callable[[str], LoadError], name: str) -> str:
    hasher = hashlib.new(algorithm)
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            for chunk in iter(lambda: stream.read(READ_CHUNK), b""):
                hasher.update(chunk)
    except (OSError, EOFError, zlib.error) as error:
        raise fail(f"{name} is not a valid gzip layer: {error}") from None
    return f"{algorithm}:{hasher.hexdigest()}"


# selecting and naming


def _select(path: Path, candidates: List[_Candidate], ref: Optional[str]) -> List[Tuple[_Candidate, List[_Name]]]:
    if ref is None:
        return [(candidate, candidate.names) for candidate in candidates]
    if ref.startswith("@"):
        found = [(candidate, candidate.names) for candidate in candidates if candidate.key == ref[1:]]
        if found:
            return found[:1]
    tiers: List[Callable[[_Name], bool]] = [
        lambda name: name.raw == ref,
        lambda name: name.repository is not None and name.tag is not None and f"{name.repository}:{name.tag}" == ref,
        lambda name: name.tag == ref,
    ]
    for matches in tiers:
        found = [(c, [n for n in c.names if matches(n)]) for c in candidates if any(matches(n) for n in c.names)]
        if len({candidate.key for candidate, _ in found}) > 1:
            images = "; ".join(candidate.label for candidate, _ in found)
            raise LoadError(f"{path}: {ref!r} is ambiguous: it names {len(found)} images ({images})")
        if found:
            return [(found[0][0], [name for _, names in found for name in names])]
    raise LoadError(f"{path}: no image named {ref!r}; it holds {_inventory(candidates)}")


def _inventory(candidates: List[_Candidate]) -> str:
    labels = [candidate.label for candidate in candidates]
    return f"{len(labels)} image{'s' if len(labels) > 1 else ''}: {'; '.join(labels)}"


def _targets(
    path: Path,
    selected: List[Tuple[_Candidate, List[_Name]]],
    destination: Optional[str],
    ref: Optional[str],
) -> List[Tuple[_Candidate, List[Tuple[str, Optional[str]]]]]:
    """Where each selected image goes: ``(repository, tag)`` pairs."""
    target = _parse_destination(destination) if destination is not None else None
    merged: Dict[str, Tuple[_Candidate, List[_Name]]] = {}
    for candidate, names in selected:  # the same image listed twice: one image, all its names
        if candidate.key in merged:
            merged[candidate.key][1].extend(names)
        else:
            merged[candidate.key] = (candidate, list(names))
    if target is not None and target[1] is not None and len(merged) > 1:
        how = f"{path}:REF (REF a name or @digest)" if ref is None else "a more precise REF"
        raise LoadError(
            f"{path}: holds {_inventory([c for c, _ in merged.values()])}, and the destination {destination!r} "
            f"takes one: select it with {how}, or give a destination repository without a tag"
        )
    result: List[Tuple[_Candidate, List[Tuple[str, Optional[str]]]]] = []
    for candidate, names in merged.values():
        if target is not None and target[1] is not None:
            pairs: List[Tuple[str, Optional[str]]] = [target]
        elif target is not None:
            tags = list(dict.fromkeys(name.tag for name in names if name.tag))
            if not tags:
                raise LoadError(f"{path}: image {candidate.label} has no tag: give a destination REPO:TAG")
            pairs = [(target[0], tag) for tag in tags]
        else:
            pairs = []
            for name in names:
                if name.repository is not None:
                    pairs.append((_checked_name(path, name), name.tag))
            if not pairs:
                if names:
                    raise LoadError(
                        f"{path}: image {candidate.label} is named by the tag {names[0].tag!r} only, with no "
                        f"repository: give a destination repository (REPO, or REPO:TAG)"
                    )
                raise LoadError(f"{path}: image {candidate.label} has no name: give a destination REPO:TAG")
        result.append((candidate, list(dict.fromkeys(pairs))))
    owners: Dict[Tuple[str, Optional[str]], _Candidate] = {}
    for candidate, pairs in result:
        for pair in pairs:
            other = owners.setdefault(pair, candidate)
            if other is not candidate and pair[1] is not None:
                raise LoadError(
                    f"{path}: two images would both be {pair[0]}:{pair[1]}: {other.label} ({other.key}) and "
                    f"{candidate.label} ({candidate.key}); select one with {path}:REF (REF a name or @digest)"
                )
    return result


def _checked_name(path: Path, name: _Name) -> str:
    assert name.repository is not None
    try:
        check_name(name.repository)
        if name.tag is not None:
            check_tag(name.tag)
    except RegistryError as error:
        raise LoadError(
            f"{path}: the image name {name.raw!r} is not a valid repository:tag here ({error.message}): "
            "give a destination"
        ) from None
    return name.repository


# loading


def load(registry: "FakeRegistry", source: Source, destination: Optional[str] = None) -> List[Loaded]:
    """Push the image(s) ``source`` holds into ``registry``; return what was stored, one ``Loaded`` per tag.

    ``source``: an OCI image layout directory, an OCI layout tar, or a
    ``docker save`` archive, optionally ``PATH:REF`` to select one image.
    ``destination``: ``REPO:TAG``, ``REPO`` (the images' own tags), or None
    (the images' own names). Raises ``LoadError`` (a ``ValueError``) naming the
    path and the problem; then nothing was stored.
    """
    path, ref = split_source(source)
    if destination is not None:
        _parse_destination(destination)  # a bad destination fails before any reading
    files = _open(path)
    try:
        reader = _Reader(files)
        selected = _select(path, reader.candidates(), ref)
        work = [(candidate.build(), pairs) for candidate, pairs in _targets(path, selected, destination, ref)]
    finally:
        files.close()
    return _store(registry, path, work)


def _store(
    registry: "FakeRegistry", path: Path, work: List[Tuple[_Plan, List[Tuple[str, Optional[str]]]]]
) -> List[Loaded]:
    loaded = []
    for plan, pairs in work:
        for repository in dict.fromkeys(repository for repository, _ in pairs):
            for digest, data in plan.blobs.items():
                registry.store.add_blob(repository, digest, data)  # verified on reading
            for manifest in plan.manifests[:-1]:
                _put(registry, path, repository, manifest.digest, manifest)
            for tag in [tag for name, tag in pairs if name == repository]:
                _put(registry, path, repository, tag or plan.root.digest, plan.root)
                loaded.append(Loaded(repository, tag, plan.root.digest, plan.root.media_type))
    return loaded


def _put(registry: "FakeRegistry", path: Path, repository: str, reference: str, manifest: _Manifest) -> None:
    try:
        registry.put_manifest(repository, reference, manifest.data, manifest.media_type)
    except RegistryError as error:
        raise LoadError(
            f"{path}: the registry refused manifest {manifest.digest} as {repository}:{reference}: "
            f"{error.code} {error.message}"
        ) from None
