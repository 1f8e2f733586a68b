"""Registry error codes and the exception that carries one to the HTTP layer.

Codes and default messages follow the OCI Distribution Spec v1.1 and the
reference registry (distribution 2.8, ``registry/api/errcode``).
"""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

# code -> (HTTP status, default message)
ERROR_CODES: Dict[str, Tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (400, "manifest references a manifest or blob unknown to registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown to registry"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "TAG_INVALID": (400, "manifest tag did not match URI"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (405, "the operation is unsupported"),
    "TOOMANYREQUESTS": (429, "too many requests"),
    "UNAVAILABLE": (503, "service unavailable"),
    "RANGE_INVALID": (416, "invalid content range"),
    "PAGINATION_NUMBER_INVALID": (400, "invalid number of results requested"),
    "UNKNOWN": (500, "unknown error"),
}


class RegistryError(Exception):
    """A registry answer in the spec's error dialect.

    Raised anywhere below the HTTP layer; the HTTP layer turns it into
    ``{"errors": [{"code", "message", "detail"}]}`` with ``status`` and
    ``headers``.
    """

    def __init__(
        self,
        code: str,
        message: Optional[str] = None,
        *,
        detail: Any = None,
        status: Optional[int] = None,
        headers: Optional[Mapping[str, str]] = None,
        also: Sequence["RegistryError"] = (),
    ) -> None:
        default_status, default_message = ERROR_CODES.get(code, ERROR_CODES["UNKNOWN"])
        self.code = code
        self.message = message or default_message
        self.detail = detail
        self.status = status or default_status
        self.headers: Dict[str, str] = dict(headers or {})
        self.also = tuple(also)  # further errors in the same answer (one per unknown blob, say)
        super().__init__(f"{code}: {self.message}")

    def as_json(self) -> Dict[str, Any]:
        return {"code": self.code, "message": self.message, "detail": {} if self.detail is None else self.detail}

    def body(self) -> bytes:
        return json.dumps({"errors": [e.as_json() for e in (self, *self.also)]}).encode()


class BlobUnknown(RegistryError, KeyError):
    """The repository does not hold the blob (also a ``KeyError`` for seeding code)."""

    def __init__(self, name: str, digest: str) -> None:
        super().__init__("BLOB_UNKNOWN", f"blob {digest} unknown to repository {name}", detail={"digest": digest})

    __str__ = Exception.__str__  # KeyError would quote the message


class ManifestUnknown(RegistryError, KeyError):
    """The repository has no manifest for the reference."""

    def __init__(self, name: str, reference: str) -> None:
        super().__init__(
            "MANIFEST_UNKNOWN",
            f"manifest {reference} unknown to repository {name}",
            detail={"name": name, "reference": reference},
        )

    __str__ = Exception.__str__


class NameUnknown(RegistryError, KeyError):
    """The registry has no repository of that name."""

    def __init__(self, name: str) -> None:
        super().__init__("NAME_UNKNOWN", f"repository {name} not known to registry", detail={"name": name})

    __str__ = Exception.__str__


class UploadUnknown(RegistryError, KeyError):
    """No upload session with that id in that repository."""

    def __init__(self, name: str, upload_id: str) -> None:
        super().__init__(
            "BLOB_UPLOAD_UNKNOWN",
            f"upload {upload_id} unknown to repository {name}",
            detail={"name": name, "uuid": upload_id},
        )

    __str__ = Exception.__str__


class InternalError(AssertionError):
    """The fake itself failed while answering (a bug in fakeregistry, never the client's doing)."""

    def __init__(self, errors: Sequence[BaseException]) -> None:
        import traceback

        self.errors = list(errors)
        details = "\n".join("".join(traceback.format_exception(type(e), e, e.__traceback__)) for e in self.errors)
        super().__init__(f"fakeregistry failed on {len(self.errors)} request(s) with a 500:\n{details}")
