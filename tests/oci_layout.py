"""Build and read OCI image layout directories (image-spec ``image-layout.md``) in pure Python.

Real clients (skopeo, oras, crane...) read and write this layout, so a test can
hand them an image without any network or download, and read back what they
produced. Everything is deterministic (tar and gzip timestamps are zero), so the
same files always give the same digests.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Sequence, Tuple

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"  # the annotation that tags a manifest in index.json


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return sha256(self.data)

    def descriptor(self) -> Dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}


@dataclass(frozen=True)
class OCIImage:
    """A single-platform image: gzip layers, their config, and the manifest tying them together."""

    layers: Tuple[Blob, ...]
    config: Blob
    manifest: Blob

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def layer_digests(self) -> Tuple[str, ...]:
        return tuple(layer.digest for layer in self.layers)

    @property
    def blobs(self) -> Tuple[Blob, ...]:
        """Every blob the manifest references: the config, then the layers."""
        return (self.config, *self.layers)


def make_tar(files: Mapping[str, bytes]) -> bytes:
    """A tar archive of regular files, with fixed owner and times so its digest is stable."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), 0o644, 0
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)  # mtime=0: no timestamp in the header, a stable digest


def build_image(
    layer_files: Sequence[Mapping[str, bytes]], *, architecture: str = "amd64", os: str = "linux"
) -> OCIImage:
    """An image with one gzip layer per mapping of file names to contents."""
    tars = [make_tar(files) for files in layer_files]
    layers = tuple(Blob(OCI_LAYER_GZIP, gzip_bytes(tar)) for tar in tars)
    config_document = {
        "architecture": architecture,
        "os": os,
        "config": {},
        # diff_ids are digests of the *uncompressed* layers; clients check them on pull.
        "rootfs": {"type": "layers", "diff_ids": [sha256(tar) for tar in tars]},
    }
    config = Blob(OCI_CONFIG, json.dumps(config_document, sort_keys=True).encode())
    manifest_document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
    }
    manifest = Blob(OCI_MANIFEST, json.dumps(manifest_document, indent=2).encode())
    return OCIImage(layers, config, manifest)


def write_layout(directory: Path, image: OCIImage, tag: str) -> Path:
    """Write ``image`` as an OCI layout at ``directory``, tagged ``tag`` in index.json."""
    blobs_dir = directory / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)
    for blob in (*image.blobs, image.manifest):
        (blobs_dir / blob.digest.split(":", 1)[1]).write_bytes(blob.data)
    (directory / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    descriptor = {**image.manifest.descriptor(), "annotations": {REF_NAME: tag}}
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor]}
    (directory / "index.json").write_text(json.dumps(index, indent=2))
    return directory


def read_blob(directory: Path, digest: str) -> bytes:
    algorithm, encoded = digest.split(":", 1)
    return (directory / "blobs" / algorithm / encoded).read_bytes()


def read_manifest(directory: Path, tag: str) -> Tuple[str, bytes]:
    """The digest and bytes of the manifest tagged ``tag`` in a layout's index.json."""
    index = json.loads((directory / "index.json").read_text())
    for descriptor in index["manifests"]:
        if descriptor.get("annotations", {}).get(REF_NAME) == tag:
            return descriptor["digest"], read_blob(directory, descriptor["digest"])
    raise KeyError(f"no manifest tagged {tag!r} in {directory / 'index.json'}")
