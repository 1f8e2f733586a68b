"""Building a small, valid OCI image for seeding: config, layers, manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from .grammar import Bytes, digest_of
from .manifests import OCI_MANIFEST

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


@dataclass(frozen=True)
class Image:
    """What ``FakeRegistry.push_image`` stored."""

    name: str
    tag: Optional[str]
    digest: str  # the manifest's digest
    manifest: bytes
    config_digest: str
    layer_digests: Tuple[str, ...]

    @property
    def reference(self) -> str:
        """``name:tag``, or ``name@digest`` for an untagged image."""
        return f"{self.name}:{self.tag}" if self.tag else f"{self.name}@{self.digest}"


def image_config(layer_digests: Sequence[str], architecture: str, os: str) -> bytes:
    # The layers are stored uncompressed, so each diff_id is the layer's own digest.
    config = {
        "architecture": architecture,
        "os": os,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": list(layer_digests)},
    }
    return json.dumps(config, sort_keys=True).encode()


def image_manifest(
    config: Bytes,
    layers: Sequence[Bytes],
    layer_digests: Sequence[str],
    *,
    layer_media_type: str = OCI_LAYER,
    annotations: Optional[Mapping[str, str]] = None,
) -> bytes:
    manifest: Dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
        "layers": [
            {"mediaType": layer_media_type, "digest": digest, "size": len(layer)}
            for layer, digest in zip(layers, layer_digests)
        ],
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    return json.dumps(manifest, indent=2).encode()
