"""The registry API over HTTP: one handler per route and method.

Handlers validate what the client sent (name, reference, headers), call the
store, and shape the answer the way the spec and the reference registry do
(statuses, ``Location``, ``Range``, ``Docker-Content-Digest``...). Errors are
raised as ``RegistryError`` and rendered by ``error_response``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import quote

from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestedRangeNotSatisfiable
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import FileWrapper

from .auth import other_host
from .errors import RegistryError
from .grammar import check_digest, check_name, check_reference
from .manifests import MAX_MANIFEST_SIZE, OCI_INDEX
from .routing import Route
from .store import Manifest, Store
from .uploads import READ_SIZE, Upload

DEFAULT_MAX_BLOB_SIZE = 4 * 1024**3  # bytes one upload may hold: a bound on memory, not on realism
DEFAULT_MAX_UPLOAD_SESSIONS = 1000  # abandoned sessions hold memory until the registry is reset
CATALOG_DEFAULT_PAGE = 100
CATALOG_MAX_PAGE = 1000  # the reference rejects larger pages; clamping serves clients that ask for more
CONTENT_RANGE_RE = re.compile(r"(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?")

Handler = Callable[..., Response]


class BlobReader:
    """A seekable file over a read-only blob, so werkzeug serves ranges by seeking."""

    def __init__(self, view: memoryview) -> None:
        self.view = view
        self.position = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.view) if size < 0 else min(self.position + size, len(self.view))
        chunk = self.view[self.position : end].tobytes()  # WSGI servers take bytes only
        self.position = end
        return chunk

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = offset
        return offset

    def tell(self) -> int:
        return self.position

    def close(self) -> None:
        pass


class RegistryAPI:
    def __init__(
        self,
        store: Store,
        *,
        delete_enabled: bool = True,
        max_blob_size: Optional[int] = DEFAULT_MAX_BLOB_SIZE,
        max_manifest_size: int = MAX_MANIFEST_SIZE,
        max_upload_sessions: Optional[int] = DEFAULT_MAX_UPLOAD_SESSIONS,
    ) -> None:
        self.store = store
        self.delete_enabled = delete_enabled
        self.max_blob_size = max_blob_size
        self.max_manifest_size = max_manifest_size
        self.max_upload_sessions = max_upload_sessions
        self.handlers: Dict[Tuple[str, str], Handler] = {
            ("base", "GET"): self.get_base,
            ("catalog", "GET"): self.get_catalog,
            ("tags", "GET"): self.get_tags,
            ("manifest", "GET"): self.get_manifest,
            ("manifest", "PUT"): self.put_manifest,
            ("manifest", "DELETE"): self.delete_manifest,
            ("blob", "GET"): self.get_blob,
            ("blob", "DELETE"): self.delete_blob,
            ("blob-upload", "POST"): self.start_upload,
            ("blob-upload-chunk", "GET"): self.get_upload,
            ("blob-upload-chunk", "PATCH"): self.patch_upload,
            ("blob-upload-chunk", "PUT"): self.complete_upload,
            ("blob-upload-chunk", "DELETE"): self.cancel_upload,
            ("referrers", "GET"): self.get_referrers,
            ("storage", "GET"): self.get_stored_blob,
        }

    def handle(self, request: Request, route: Route) -> Response:
        """The answer to ``request``; a client mistake raises ``RegistryError``."""
        if route.name is None:
            raise unrouted(request, route)
        try:
            if route.repository is not None:
                check_name(route.repository)
            method = "GET" if request.method == "HEAD" else request.method
            return self.handlers[route.name, method](request, **route.args)
        except ClientDisconnected:
            raise RegistryError(
                "MANIFEST_INVALID" if route.name == "manifest" else "BLOB_UPLOAD_INVALID",
                f"the request body ended before its Content-Length ({request.content_length} bytes) arrived",
            ) from None
        except HTTPException as error:  # werkzeug's own: a bad header, say
            raise RegistryError("UNSUPPORTED", error.description, status=error.code or 400) from None

    # base and listings

    def get_base(self, request: Request) -> Response:
        return json_response({})

    def get_catalog(self, request: Request) -> Response:
        names = self.store.repository_names()
        page, link = paginate(request, names, "/v2/_catalog", default=CATALOG_DEFAULT_PAGE, maximum=CATALOG_MAX_PAGE)
        return json_response({"repositories": page}, headers=link)

    def get_tags(self, request: Request, name: str) -> Response:
        tags = self.store.tags(name)
        page, link = paginate(request, tags, f"/v2/{name}/tags/list")
        return json_response({"name": name, "tags": page}, headers=link)

    # manifests

    def get_manifest(self, request: Request, name: str, reference: str) -> Response:
        check_reference(reference)
        manifest = self.store.manifest(name, reference)
        response = Response(manifest.data, content_type=manifest.media_type)
        response.headers["Docker-Content-Digest"] = manifest.digest
        response.set_etag(manifest.digest)
        return response.make_conditional(request)

    def put_manifest(self, request: Request, name: str, reference: str) -> Response:
        check_reference(reference)
        data = read_limited(request, self.max_manifest_size, "manifest")
        manifest = self.store.put_manifest(name, reference, data, request.headers.get("Content-Type"))
        headers = {
            "Location": absolute_url(request, f"/v2/{name}/manifests/{manifest.digest}"),
            "Docker-Content-Digest": manifest.digest,
        }
        if manifest.parsed.subject:
            headers["OCI-Subject"] = manifest.parsed.subject
        return empty_response(201, headers)

    def delete_manifest(self, request: Request, name: str, reference: str) -> Response:
        self.check_delete_enabled("GET, HEAD, PUT")
        check_reference(reference)
        self.store.delete_manifest(name, reference)
        return empty_response(202)

    # blobs

    def get_blob(self, request: Request, name: str, digest: str) -> Response:
        check_digest(digest)
        view = self.store.blob(name, digest)
        response = Response(
            FileWrapper(BlobReader(view), READ_SIZE),  # type: ignore[arg-type]
            content_type="application/octet-stream",
            direct_passthrough=True,
        )
        response.headers["Content-Length"] = str(len(view))
        response.headers["Docker-Content-Digest"] = digest
        response.headers["Cache-Control"] = "max-age=31536000"
        response.set_etag(digest)
        serve_whole_blob_where_rfc_allows(request, len(view))
        try:
            return response.make_conditional(request, accept_ranges=True, complete_length=len(view))
        except RequestedRangeNotSatisfiable:
            raise RegistryError(
                "RANGE_INVALID",
                f"range {request.headers.get('Range')!r} cannot be served from a blob of {len(view)} bytes",
                headers={"Content-Range": f"bytes */{len(view)}"},
            ) from None

    def get_stored_blob(self, request: Request, name: str, digest: str) -> Response:
        """A blob as object storage serves it after a redirect: no registry credentials wanted."""
        if "Authorization" in request.headers:
            # S3 answers the same to a presigned URL that also carries an Authorization header.
            raise RegistryError(
                "DENIED",
                "the storage URL got the registry's Authorization header: clients must drop it on a redirect "
                "to another host",
                status=400,
            )
        return self.get_blob(request, name, digest)

    def delete_blob(self, request: Request, name: str, digest: str) -> Response:
        self.check_delete_enabled("GET, HEAD")
        check_digest(digest)
        self.store.delete_blob(name, digest)
        return empty_response(202)

    # uploads

    def start_upload(self, request: Request, name: str) -> Response:
        mount = request.args.get("mount")
        if mount is not None and self.mount(name, mount, request.args.get("from")):
            return blob_created(request, name, mount)
        digest = request.args.get("digest")
        upload = self.store.start_upload(name, self.max_upload_sessions)
        if digest is None or mount is not None:
            return upload_response(request, upload, 202)
        # A single-request upload: the blob is the body.
        try:
            check_digest(digest)
            with upload.lock:
                upload.append(request.stream, request.content_length, self.max_blob_size)
            self.store.complete_upload(upload, [digest])
        finally:
            self.store.cancel_upload(upload)
        return blob_created(request, name, digest)

    def mount(self, name: str, digest: str, source: Optional[str]) -> bool:
        """Cross-repository mount; an invalid digest or source falls back to an upload, as in the spec."""
        try:
            check_digest(digest)
            if source is not None:
                check_name(source)
        except RegistryError:
            return False
        return self.store.mount_blob(name, digest, source)

    def get_upload(self, request: Request, name: str, upload_id: str) -> Response:
        return upload_response(request, self.store.upload(name, upload_id), 204)

    def patch_upload(self, request: Request, name: str, upload_id: str) -> Response:
        upload = self.store.upload(name, upload_id)
        with upload.lock:
            upload.append(request.stream, chunk_length(request, upload), self.max_blob_size)
        return upload_response(request, upload, 202)

    def complete_upload(self, request: Request, name: str, upload_id: str) -> Response:
        upload = self.store.upload(name, upload_id)
        digests = request.args.getlist("digest")
        if not digests:
            raise RegistryError("DIGEST_INVALID", "completing an upload needs ?digest=<algorithm>:<hex>")
        for digest in digests:
            check_digest(digest)
        with upload.lock:
            size_before = upload.size
            upload.append(request.stream, chunk_length(request, upload), self.max_blob_size)
            try:
                self.store.complete_upload(upload, digests)
            except RegistryError:
                # Like the reference, the session survives a wrong digest; the last chunk does not.
                upload.truncate(size_before)
                raise
        return blob_created(request, name, digests[0])

    def cancel_upload(self, request: Request, name: str, upload_id: str) -> Response:
        self.store.cancel_upload(self.store.upload(name, upload_id))
        return empty_response(204, {"Docker-Upload-UUID": upload_id})

    # referrers

    def get_referrers(self, request: Request, name: str, digest: str) -> Response:
        check_digest(digest)
        artifact_type = request.args.get("artifactType")
        descriptors = [
            referrer_descriptor(manifest)
            for manifest in self.store.referrers(name, digest)
            if artifact_type is None or manifest.parsed.artifact_type == artifact_type
        ]
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
        headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type is not None else None
        return json_response(index, content_type=OCI_INDEX, headers=headers)

    def check_delete_enabled(self, allowed: str) -> None:
        """``allowed``: the route's methods but DELETE, for the 405's Allow header."""
        if not self.delete_enabled:
            raise RegistryError(
                "UNSUPPORTED",
                "deletion is disabled on this registry (delete_enabled=False)",
                headers={"Allow": allowed},
            )


# answers


def unrouted(request: Request, route: Route) -> RegistryError:
    if route.allowed_methods:
        allowed = ", ".join(route.allowed_methods)
        return RegistryError(
            "UNSUPPORTED",
            f"{request.method} is not allowed on {request.path}; allowed: {allowed}",
            headers={"Allow": allowed},
        )
    return RegistryError("UNSUPPORTED", f"no registry endpoint at {request.path}", status=404)


def json_response(
    document: Any, status: int = 200, *, content_type: str = "application/json", headers: Any = None
) -> Response:
    return Response(json.dumps(document), status=status, content_type=content_type, headers=headers)


def empty_response(status: int, headers: Optional[Dict[str, str]] = None) -> Response:
    response = Response(b"", status=status, headers=headers)
    del response.headers["Content-Type"]  # no body, nothing to type
    response.headers["Content-Length"] = "0"
    return response


def error_response(error: RegistryError) -> Response:
    return Response(error.body(), status=error.status, content_type="application/json", headers=error.headers)


def absolute_url(request: Request, path: str) -> str:
    # Absolute, from the request's own scheme and Host: clients resolve it either way.
    return request.host_url.rstrip("/") + quote(path, safe="/:")


def upload_response(request: Request, upload: Upload, status: int) -> Response:
    return empty_response(
        status,
        {
            "Location": absolute_url(request, f"/v2/{upload.name}/blobs/uploads/{upload.id}"),
            "Range": upload.range_header(),
            "Docker-Upload-UUID": upload.id,
        },
    )


def blob_created(request: Request, name: str, digest: str) -> Response:
    return empty_response(
        201,
        {"Location": absolute_url(request, f"/v2/{name}/blobs/{digest}"), "Docker-Content-Digest": digest},
    )


def storage_redirect(request: Request, route: Route) -> Response:
    """307 to the blob on the storage host, as registries backed by object storage answer."""
    location = (
        f"{request.scheme}://{other_host(request.host, 'storage')}/_fakeregistry/storage/{route.repository}/blobs/"
    )
    response = empty_response(307, {"Location": location + str(route.reference)})
    return response


def referrer_descriptor(manifest: Manifest) -> Dict[str, Any]:
    descriptor: Dict[str, Any] = {
        "mediaType": manifest.media_type,
        "digest": manifest.digest,
        "size": len(manifest.data),
    }
    if manifest.parsed.artifact_type is not None:
        descriptor["artifactType"] = manifest.parsed.artifact_type
    if manifest.parsed.annotations:
        descriptor["annotations"] = manifest.parsed.annotations
    return descriptor


# request parsing


def serve_whole_blob_where_rfc_allows(request: Request, size: int) -> None:
    """Adjust the Range header where werkzeug would answer 416 but RFC 9110 serves content.

    A suffix longer than the blob means all of it; other units, and several
    ranges at once, may be ignored (a plain 200).
    """
    parsed = request.range
    if parsed is None:  # absent, or malformed: 416, as the reference answers
        return
    if parsed.units != "bytes" or len(parsed.ranges) > 1:
        del request.environ["HTTP_RANGE"]
    elif parsed.ranges[0][0] < 0 and -parsed.ranges[0][0] > size:
        request.environ["HTTP_RANGE"] = "bytes=0-"


def read_limited(request: Request, limit: int, what: str) -> bytes:
    declared = request.content_length
    data = b"" if declared == 0 else request.stream.read(limit + 1)
    if (declared or 0) > limit or len(data) > limit:
        raise RegistryError(
            "SIZE_INVALID",
            f"the {what} is larger than the {limit}-byte limit",
            status=413,
            detail={"limit": limit},
        )
    return data


def chunk_length(request: Request, upload: Upload) -> Optional[int]:
    """The chunk's length from Content-Range and Content-Length, checked against the session.

    A Content-Range that does not start at the session's current offset, or
    cannot be read, answers 416 with the session's Range so the client can
    resume (OCI spec, "Pushing a blob in chunks").
    """
    declared = request.content_length
    content_range = request.headers.get("Content-Range")
    if content_range is None:
        return declared
    match = CONTENT_RANGE_RE.fullmatch(content_range.strip())
    if not match or int(match[1]) != upload.size or int(match[2]) < int(match[1]):
        raise RegistryError(
            "RANGE_INVALID",
            f"Content-Range {content_range!r} does not continue the upload at offset {upload.size}",
            detail={"offset": upload.size},
            headers={
                "Location": absolute_url(request, f"/v2/{upload.name}/blobs/uploads/{upload.id}"),
                "Range": upload.range_header(),
                "Docker-Upload-UUID": upload.id,
            },
        )
    length = int(match[2]) - int(match[1]) + 1
    if declared is not None and declared != length:
        raise RegistryError(
            "SIZE_INVALID",
            f"Content-Range {content_range!r} is {length} bytes but Content-Length is {declared}",
            detail={"contentRange": content_range, "contentLength": declared},
        )
    return length


def paginate(
    request: Request, items: List[str], path: str, *, default: Optional[int] = None, maximum: Optional[int] = None
) -> Tuple[List[str], Optional[Dict[str, str]]]:
    """Apply ``n`` and ``last``; return the page and, when more follow, a Link header."""
    raw_n = request.args.get("n")
    last = request.args.get("last")
    if not raw_n:  # absent or empty, as the reference reads it
        n = default
    elif raw_n.isdigit() and raw_n.isascii():
        n = int(raw_n)
    else:
        raise RegistryError(
            "PAGINATION_NUMBER_INVALID", f"n must be a non-negative integer, not {raw_n!r}", detail={"n": raw_n}
        )
    if n is not None and maximum is not None:
        n = min(n, maximum)
    if last:
        items = [item for item in items if item > last]
    if n is None or len(items) <= n:
        return items, None
    page = items[:n]
    if not page:
        return page, None
    link = f'<{path}?last={quote(page[-1], safe="")}&n={n}>; rel="next"'
    return page, {"Link": link}
