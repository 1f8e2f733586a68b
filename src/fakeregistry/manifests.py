"""Manifest media types, parsing and validation.

Only the structure the registry needs is read: which blobs and child manifests
a manifest references, its subject, artifact type and annotations. The bytes
are stored as pushed; the config blob is never parsed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from .errors import RegistryError
from .grammar import check_digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_ARTIFACT_MANIFEST = "application/vnd.oci.artifact.manifest.v1+json"  # OCI 1.1 release candidates
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"

IMAGE_MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES = IMAGE_MANIFEST_TYPES | INDEX_TYPES | {OCI_ARTIFACT_MANIFEST}

# Content-Types that say nothing about the kind of manifest: guess from the body.
GENERIC_CONTENT_TYPES = frozenset({"", "application/json", "application/octet-stream", "text/plain"})

MAX_MANIFEST_SIZE = 4 * 1024 * 1024


@dataclass(frozen=True)
class ParsedManifest:
    media_type: str
    blobs: Tuple[str, ...] = ()  # config, layers or artifact blobs that must be in the repository
    children: Tuple[str, ...] = ()  # manifests an index lists, which must be in the repository
    subject: Optional[str] = None
    artifact_type: Optional[str] = None
    annotations: Dict[str, str] = field(default_factory=dict)


def invalid(message: str, **detail: Any) -> RegistryError:
    return RegistryError("MANIFEST_INVALID", message, detail=detail or None)


def parse_manifest(data: bytes, content_type: Optional[str]) -> ParsedManifest:
    """Validate a pushed manifest; raise MANIFEST_INVALID with the reason."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise invalid(f"manifest is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise invalid("manifest must be a JSON object")

    media_type = _media_type(document, content_type)
    if media_type in INDEX_TYPES:
        _check_schema_version(document)
        children = _descriptors(document, "manifests", required=True)
        return _parsed(document, media_type, children=tuple(d["digest"] for d in children))
    if media_type == OCI_ARTIFACT_MANIFEST:
        blobs = _descriptors(document, "blobs", required=False)
        return _parsed(document, media_type, blobs=_fetched(blobs))
    _check_schema_version(document)
    config = _descriptor(document.get("config"), "config")
    layers = _descriptors(document, "layers", required=True)
    artifact_type = document.get("artifactType")
    if artifact_type is None and media_type == OCI_MANIFEST:
        artifact_type = config["mediaType"]  # the referrers API reports the config type then
    return _parsed(document, media_type, blobs=_fetched([config, *layers]), artifact_type=artifact_type)


def _media_type(document: Dict[str, Any], content_type: Optional[str]) -> str:
    declared = document.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise invalid("mediaType must be a string")
    header = (content_type or "").split(";")[0].strip().lower()
    if header in GENERIC_CONTENT_TYPES:
        media_type = declared or _guess_media_type(document)
    else:
        media_type = header
        if declared is not None and declared != media_type:
            raise invalid(
                f"the manifest's mediaType {declared!r} does not match its Content-Type {media_type!r}",
                mediaType=declared,
                contentType=media_type,
            )
    if media_type not in MANIFEST_TYPES:
        raise invalid(
            f"unsupported manifest media type {media_type!r}; supported: {', '.join(sorted(MANIFEST_TYPES))}",
            mediaType=media_type,
        )
    return media_type


def _guess_media_type(document: Dict[str, Any]) -> str:
    if "manifests" in document:
        return OCI_INDEX
    if "config" in document or "layers" in document:
        return OCI_MANIFEST
    raise invalid("cannot tell the manifest's media type: send a Content-Type or a mediaType field")


def _check_schema_version(document: Dict[str, Any]) -> None:
    version = document.get("schemaVersion")
    if version != 2 or isinstance(version, bool):
        raise invalid(f"schemaVersion must be 2, not {version!r}", schemaVersion=version)


def _descriptor(value: Any, where: str) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(f"{where} must be a descriptor object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise invalid(f"{where}.mediaType must be a non-empty string")
    if not isinstance(digest, str):
        raise invalid(f"{where}.digest must be a string", digest=digest)
    try:
        check_digest(digest)
    except RegistryError as error:
        raise invalid(f"{where}.digest: {error.message}", digest=digest) from None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise invalid(f"{where}.size must be a non-negative integer, not {size!r}")
    annotations = value.get("annotations")
    if annotations is not None:
        _check_annotations(annotations, f"{where}.annotations")
    return value


def _descriptors(document: Dict[str, Any], key: str, *, required: bool) -> List[Dict[str, Any]]:
    value = document.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise invalid(f"{key} must be a list of descriptors")
    return [_descriptor(item, f"{key}[{i}]") for i, item in enumerate(value)]


def _fetched(descriptors: List[Dict[str, Any]]) -> Tuple[str, ...]:
    # Foreign (non-distributable) layers carry urls and live elsewhere.
    return tuple(d["digest"] for d in descriptors if not d.get("urls"))


def _check_annotations(value: Any, where: str) -> Dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise invalid(f"{where} must be an object of strings")
    return value


def _parsed(
    document: Dict[str, Any],
    media_type: str,
    *,
    blobs: Tuple[str, ...] = (),
    children: Tuple[str, ...] = (),
    artifact_type: Optional[str] = None,
) -> ParsedManifest:
    subject = document.get("subject")
    if subject is not None:
        subject = _descriptor(subject, "subject")["digest"]
    artifact_type = document.get("artifactType", artifact_type)
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise invalid("artifactType must be a string")
    annotations = document.get("annotations")
    annotations = {} if annotations is None else _check_annotations(annotations, "annotations")
    return ParsedManifest(media_type, blobs, children, subject, artifact_type, annotations)
