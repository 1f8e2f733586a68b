"""In-memory registry state: repositories, blobs, manifests, tags, uploads.

Blobs are content-addressed and held once, whatever the number of
repositories that pushed or mounted them; a repository holds links. One lock
guards the maps so the threaded server can share a store; reading request
bodies happens outside it (see ``uploads.Upload``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Set, Union

from .errors import BlobUnknown, ManifestUnknown, NameUnknown, RegistryError, UploadUnknown
from .grammar import check_digest, digest_of, is_digest
from .manifests import ParsedManifest, parse_manifest
from .uploads import Upload

Bytes = Union[bytes, bytearray, memoryview]


@dataclass(frozen=True)
class Manifest:
    digest: str
    data: bytes
    parsed: ParsedManifest

    @property
    def media_type(self) -> str:
        return self.parsed.media_type


@dataclass
class Repository:
    name: str
    blobs: Set[str] = field(default_factory=set)
    manifests: Dict[str, Manifest] = field(default_factory=dict)
    tags: Dict[str, str] = field(default_factory=dict)  # tag -> manifest digest

    def manifest(self, reference: str) -> Manifest:
        digest = reference if is_digest(reference) else self.tags.get(reference)
        manifest = self.manifests.get(digest) if digest else None
        if manifest is None:
            raise ManifestUnknown(self.name, reference)
        return manifest


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.blobs: Dict[str, memoryview] = {}
        self.repositories: Dict[str, Repository] = {}
        self.uploads: Dict[str, Upload] = {}

    def clear(self) -> None:
        with self.lock:
            self.blobs.clear()
            self.repositories.clear()
            self.uploads.clear()

    # repositories

    def repository(self, name: str) -> Repository:
        try:
            return self.repositories[name]
        except KeyError:
            raise NameUnknown(name) from None

    def _repository_for_write(self, name: str) -> Repository:
        repository = self.repositories.get(name)
        if repository is None:
            repository = self.repositories[name] = Repository(name)
        return repository

    def repository_names(self) -> List[str]:
        with self.lock:
            return sorted(self.repositories)

    # blobs

    def blob(self, name: str, digest: str) -> memoryview:
        with self.lock:
            repository = self.repositories.get(name)
            if repository is None or digest not in repository.blobs:
                raise BlobUnknown(name, digest)
            return self.blobs[digest]

    def add_blob(self, name: str, digest: str, content: Bytes) -> None:
        """Link ``content`` (already verified to match ``digest``) into a repository."""
        with self.lock:
            if digest not in self.blobs:
                view = memoryview(content)
                self.blobs[digest] = view if view.readonly else view.toreadonly()
            self._repository_for_write(name).blobs.add(digest)

    def mount_blob(self, name: str, digest: str, source: Optional[str]) -> bool:
        """Link a blob from ``source`` (or, without one, from anywhere in the registry)."""
        with self.lock:
            if source is None:
                found = digest in self.blobs
            else:
                found = source in self.repositories and digest in self.repositories[source].blobs
            if found:
                self._repository_for_write(name).blobs.add(digest)
            return found

    def delete_blob(self, name: str, digest: str) -> None:
        with self.lock:
            repository = self.repositories.get(name)
            if repository is None or digest not in repository.blobs:
                raise BlobUnknown(name, digest)
            repository.blobs.discard(digest)
            if not any(digest in other.blobs for other in self.repositories.values()):
                del self.blobs[digest]

    # uploads

    def start_upload(self, name: str, max_sessions: Optional[int] = None) -> Upload:
        upload = Upload(name)
        with self.lock:
            if max_sessions is not None and len(self.uploads) >= max_sessions:
                raise RegistryError(
                    "TOOMANYREQUESTS",
                    f"{len(self.uploads)} upload sessions are open, this registry's max_upload_sessions: "
                    "complete or cancel some",
                    detail={"limit": max_sessions},
                )
            self.uploads[upload.id] = upload
        return upload

    def upload(self, name: str, upload_id: str) -> Upload:
        upload = self.find_upload(name, upload_id)
        if upload is None:
            raise UploadUnknown(name, upload_id)
        return upload

    def find_upload(self, name: Optional[str], upload_id: Optional[str]) -> Optional[Upload]:
        """The session ``upload_id`` of repository ``name``, or None."""
        with self.lock:
            upload = self.uploads.get(upload_id or "")
        return upload if upload is not None and upload.name == name else None

    def cancel_upload(self, upload: Upload) -> None:
        with self.lock:
            self.uploads.pop(upload.id, None)

    def complete_upload(self, upload: Upload, digests: List[str]) -> None:
        """Store the session's bytes once they match every digest, and end the session."""
        for digest in digests:
            actual = upload.digest(check_digest(digest))
            if actual != digest:
                raise RegistryError(
                    "DIGEST_INVALID",
                    f"the upload's content has digest {actual}, not {digest}",
                    detail={"expected": digest, "actual": actual},
                )
        with self.lock:
            if self.uploads.pop(upload.id, None) is None:
                raise UploadUnknown(upload.name, upload.id)
            for digest in digests:
                self.add_blob(upload.name, digest, upload.content())

    # manifests

    def put_manifest(self, name: str, reference: str, data: bytes, content_type: Optional[str]) -> Manifest:
        parsed = parse_manifest(data, content_type)
        if is_digest(reference):
            digest = digest_of(data, check_digest(reference))
            if digest != reference:
                raise RegistryError(
                    "DIGEST_INVALID",
                    f"the manifest's digest is {digest}, not {reference}",
                    detail={"expected": reference, "actual": digest},
                )
        else:
            digest = digest_of(data)
        manifest = Manifest(digest, bytes(data), parsed)
        with self.lock:
            repository = self.repositories.get(name) or Repository(name)
            unknown = [
                RegistryError(
                    "MANIFEST_BLOB_UNKNOWN", f"blob {blob} is not in repository {name}", detail={"digest": blob}
                )
                for blob in parsed.blobs
                if blob not in repository.blobs
            ] + [
                RegistryError(
                    "MANIFEST_BLOB_UNKNOWN", f"manifest {child} is not in repository {name}", detail={"digest": child}
                )
                for child in parsed.children
                if child not in repository.manifests
            ]
            if unknown:
                raise RegistryError(unknown[0].code, unknown[0].message, detail=unknown[0].detail, also=unknown[1:])
            repository = self._repository_for_write(name)
            repository.manifests[digest] = manifest
            if not is_digest(reference):
                repository.tags[reference] = digest
        return manifest

    def manifest(self, name: str, reference: str) -> Manifest:
        with self.lock:
            return self.repository(name).manifest(reference)

    def delete_manifest(self, name: str, reference: str) -> None:
        """By digest: the manifest and every tag on it. By tag: that tag only."""
        with self.lock:
            repository = self.repository(name)
            if not is_digest(reference):
                if repository.tags.pop(reference, None) is None:
                    raise ManifestUnknown(name, reference)
                return
            if repository.manifests.pop(reference, None) is None:
                raise ManifestUnknown(name, reference)
            for tag in [tag for tag, digest in repository.tags.items() if digest == reference]:
                del repository.tags[tag]

    def tags(self, name: str) -> List[str]:
        with self.lock:
            return sorted(self.repository(name).tags)

    def referrers(self, name: str, subject: str) -> Iterator[Manifest]:
        with self.lock:
            repository = self.repositories.get(name)
            manifests = list(repository.manifests.values()) if repository else []
        return (manifest for manifest in manifests if manifest.parsed.subject == subject)
