"""``FakeRegistry``: the WSGI application, and the Python API to seed and inspect it."""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, List, Mapping, Optional, Sequence, Union

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

from .api import (
    DEFAULT_MAX_BLOB_SIZE,
    DEFAULT_MAX_UPLOAD_SESSIONS,
    RegistryAPI,
    error_response,
    json_response,
    storage_redirect,
)
from .auth import TOKEN_LEEWAY, TOKEN_LIFETIME, AccessRules, Authenticator
from .control import CONTROL_PREFIX, ControlAPI
from .errors import InternalError, RegistryError
from .faults import OPTION_NAMES, DropConnection, Fault, FaultList, body_faults, drop_connection, fault_error
from .grammar import Bytes, check_name, check_reference, digest_of
from .images import OCI_LAYER, Image, image_config, image_manifest
from .journal import CountingBody, CountingInput, Journal, RequestRecord
from .manifests import MAX_MANIFEST_SIZE
from .page import render_page
from .routing import Route, match_route
from .store import Store

if TYPE_CHECKING:
    import os

    import httpx
    import requests_mock
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from .loading import Loaded

log = logging.getLogger("fakeregistry")

API_VERSION_HEADER = ("Docker-Distribution-API-Version", "registry/2.0")
DEFAULT_HOST = "registry.test"
STORAGE_PREFIX = "/_fakeregistry/storage/"


class FakeRegistry:
    """An in-memory container registry (OCI Distribution Spec v1.1), as a WSGI app.

    >>> reg = FakeRegistry()
    >>> image = reg.push_image("team/app", "v1", layers=[b"hello"])
    >>> reg.tags("team/app")
    ['v1']
    """

    def __init__(
        self,
        *,
        host: str = DEFAULT_HOST,
        delete_enabled: bool = True,
        auth: Optional[str] = None,
        users: Optional[Mapping[str, str]] = None,
        access: Optional[AccessRules] = None,
        anonymous_pull: Union[bool, Sequence[str]] = False,
        token_expires_in: int = TOKEN_LIFETIME,
        token_leeway: int = TOKEN_LEEWAY,
        clock: Callable[[], float] = time.time,
        separate_token_host: bool = False,
        max_blob_size: Optional[int] = DEFAULT_MAX_BLOB_SIZE,
        max_manifest_size: int = MAX_MANIFEST_SIZE,
        max_upload_sessions: Optional[int] = DEFAULT_MAX_UPLOAD_SESSIONS,
        journal_limit: Optional[int] = None,
    ) -> None:
        """
        ``auth``: None (open), ``"basic"``, or ``"token"`` (the registry serves its own token endpoint
        at ``<url>/token``). ``users``: name -> password. ``access``: per user, repository globs -> actions
        (``pull``, ``push``, ``delete``, ``*``); users without rules may do anything. ``anonymous_pull``:
        True, or globs of public repositories. ``token_expires_in`` seconds, measured by ``clock``;
        a token still passes ``token_leeway`` seconds after it expires (60, as distribution allows).
        ``separate_token_host``: the token realm is on another host name of the same server.

        Limits, so that no client can make memory grow without bound (None: no limit):
        ``max_blob_size`` bytes per upload (default 4 GiB; over it, 413 SIZE_INVALID),
        ``max_manifest_size`` (default 4 MiB, as the spec suggests; 413 SIZE_INVALID),
        ``max_upload_sessions`` open at once (default 1000; more answer 429 TOOMANYREQUESTS),
        ``journal_limit`` records kept in ``requests`` (default: all; the oldest go first).
        """
        self.host = host  # where in-process clients reach it: requests to http(s)://<host>
        self.store = Store()
        self.api = RegistryAPI(
            self.store,
            delete_enabled=delete_enabled,
            max_blob_size=max_blob_size,
            max_manifest_size=max_manifest_size,
            max_upload_sessions=max_upload_sessions,
        )
        self.auth = Authenticator(
            auth,
            users=users,
            access=access,
            anonymous_pull=anonymous_pull,
            token_expires_in=token_expires_in,
            token_leeway=token_leeway,
            clock=clock,
            separate_token_host=separate_token_host,
        )
        self.requests = Journal(journal_limit)
        self.faults = FaultList()
        self.control = ControlAPI(self)
        self.internal_errors: List[BaseException] = []

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def delete_enabled(self) -> bool:
        return self.api.delete_enabled

    # WSGI

    def __call__(self, environ: "WSGIEnvironment", start_response: "StartResponse") -> Iterable[bytes]:
        request = Request(environ)
        if request.path.startswith(CONTROL_PREFIX) and not request.path.startswith(STORAGE_PREFIX):
            # The test harness scripting the registry: not the client, so not in the journal.
            return self.control(request)(environ, start_response)
        if request.path == "/" and request.method in ("GET", "HEAD"):  # a person looking: not journaled either
            page = Response(render_page(self), content_type="text/html; charset=utf-8")
            return page(environ, start_response)
        route = match_route(request)
        record = RequestRecord(
            request.method,
            request.path,
            request.query_string.decode("latin-1"),
            route.name,
            route.repository,
            route.reference,
            route.args.get("upload_id"),
            Headers(request.headers),
        )
        self.requests.record(record)
        environ["wsgi.input"] = CountingInput(environ["wsgi.input"], record)
        fault = None
        try:
            fault = self.faults.take(route, request)
            if fault is not None:
                record.fault = fault.id
            response = self._answer(request, route, record, fault)
        except RegistryError as error:
            response = error_response(error)
            record.error = error.code
        except DropConnection:
            record.error = "DISCONNECTED"
            drop_connection(environ)
            raise
        except Exception as error:  # a bug in the fake, never the client's doing
            log.exception("fakeregistry failed on %s %s", request.method, request.path)
            self.internal_errors.append(error)
            response = error_response(RegistryError("UNKNOWN", f"internal error in fakeregistry: {error!r}"))
            record.error = "UNKNOWN"
        record.status = response.status_code
        response.headers[API_VERSION_HEADER[0]] = API_VERSION_HEADER[1]
        record.response_headers = response.headers.copy()
        body = response(environ, start_response)
        if fault is not None:
            body = body_faults(fault, body, environ)
        return CountingBody(body, record)

    def _answer(self, request: Request, route: Route, record: RequestRecord, fault: Optional[Fault]) -> Response:
        """The answer: a fault's (a delay, an error, a dropped connection), auth's refusal, or the handler's."""
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.disconnect:
                raise DropConnection("fakeregistry fault: connection closed without an answer")
            if fault.drop_upload:
                upload = self.store.find_upload(route.repository, route.args.get("upload_id"))
                if upload is not None:
                    self.store.cancel_upload(upload)
            if fault.error_code(route) is not None:
                raise fault_error(fault, request, route, self.store, self.auth)
        if route.name == "token":
            status, document, record.user, record.scopes, record.granted = self.auth.token_response(request)
            if "errors" in document:
                record.error = document["errors"][0]["code"]
            return json_response(document, status)
        if route.name != "storage":  # storage URLs are presigned: no registry credentials
            record.user = self.auth.check(request, route)
        if fault is not None and fault.redirect and route.name == "blob" and request.method in ("GET", "HEAD"):
            return storage_redirect(request, route)
        return self.api.handle(request, route)

    # failure injection

    def inject(self, route: str = "*", **options: Any) -> Fault:
        """Make the next request(s) to ``route`` fail; see ``Fault`` for the options.

        >>> reg = FakeRegistry()
        >>> fault = reg.inject("blob-upload-chunk", method="PATCH", status=416)
        >>> fault.hits
        0

        Raises ``ValueError`` for options that cannot work (an unknown route,
        status or error code), and ``TypeError`` for unknown options.
        """
        unknown = sorted(set(options) - set(OPTION_NAMES))
        if unknown:
            raise TypeError(f"unknown fault options {unknown}; known: {', '.join(OPTION_NAMES)}")
        return self.faults.add(Fault(route, **options))

    def clear_faults(self) -> None:
        self.faults.clear()

    def inject_chunk_range_error(self, **options: Any) -> Fault:
        """The next chunk (PATCH) answers 416 RANGE_INVALID with the upload's current Range."""
        return self.inject("blob-upload-chunk", **{"method": "PATCH", "status": 416, **options})

    def inject_blob_unknown(self, **options: Any) -> Fault:
        """The next blob GET or HEAD answers 404 BLOB_UNKNOWN."""
        return self.inject("blob", **{"method": ("GET", "HEAD"), "status": 404, "error": "BLOB_UNKNOWN", **options})

    def inject_upload_lost(self, **options: Any) -> Fault:
        """The next request to an upload session finds it gone: 404 BLOB_UPLOAD_UNKNOWN, and it really is."""
        defaults = {"status": 404, "error": "BLOB_UPLOAD_UNKNOWN", "drop_upload": True}
        return self.inject("blob-upload-chunk", **{**defaults, **options})

    def inject_auth_challenge(self, route: str = "*", scheme: str = "bearer", **options: Any) -> Fault:
        """The next request answers 401 with a Basic or Bearer challenge (realm, service and scope)."""
        return self.inject(route, **{"auth_challenge": scheme, **options})

    def inject_throttling(self, route: str = "*", retry_after: float = 1, **options: Any) -> Fault:
        """The next request answers 429 TOOMANYREQUESTS with Retry-After."""
        return self.inject(route, **{"status": 429, "retry_after": retry_after, **options})

    def inject_unavailable(self, route: str = "*", **options: Any) -> Fault:
        """The next request answers 503 UNAVAILABLE."""
        return self.inject(route, **{"status": 503, **options})

    def check_internal_errors(self) -> None:
        """Raise ``InternalError`` if answering any request failed inside the fake (a 500)."""
        if self.internal_errors:
            errors, self.internal_errors = self.internal_errors, []
            raise InternalError(errors)

    # in-process clients

    def mock_requests(self, mocker: Optional["requests_mock.Mocker"] = None) -> "requests_mock.Mocker":
        """Serve ``requests`` calls to ``self.url`` (http and https) in-process; other hosts go through.

        Without ``mocker``, returns a new ``requests_mock.Mocker(real_http=True)``
        to use as a context manager; with one, adds this registry to it.
        """
        from .requests_glue import RequestsMatcher

        if mocker is None:
            import requests_mock

            mocker = requests_mock.Mocker(real_http=True)
        mocker.add_matcher(RequestsMatcher(self))
        return mocker

    def httpx_client(self, **options: Any) -> "httpx.Client":
        """An ``httpx.Client`` talking to this registry in-process, with ``base_url`` set to ``self.url``."""
        import httpx

        options.setdefault("base_url", self.url)
        return httpx.Client(transport=httpx.WSGITransport(app=self), **options)

    # seeding

    def put_blob(self, name: str, data: Bytes) -> str:
        """Store ``data`` in repository ``name``; return its sha256 digest."""
        check_name(name)
        content = data if isinstance(data, bytes) else bytes(data)  # a private, immutable copy
        digest = digest_of(content)
        self.store.add_blob(name, digest, content)
        return digest

    def put_manifest(
        self,
        name: str,
        reference: str,
        manifest: Union[bytes, str, Mapping[str, Any]],
        media_type: Optional[str] = None,
    ) -> str:
        """Store a manifest under a tag (or a digest) exactly as a client PUT would; return its digest.

        A mapping is serialised as JSON; bytes are stored as given. The media
        type defaults to the manifest's ``mediaType`` field. Raises
        ``RegistryError`` (MANIFEST_INVALID, MANIFEST_BLOB_UNKNOWN...) as the
        HTTP API would answer.
        """
        check_name(name)
        check_reference(reference)
        if isinstance(manifest, Mapping):
            data = json.dumps(manifest, indent=2).encode()
        elif isinstance(manifest, str):
            data = manifest.encode()
        else:
            data = bytes(manifest)
        return self.store.put_manifest(name, reference, data, media_type).digest

    def push_image(
        self,
        name: str,
        tag: Optional[str] = None,
        *,
        layers: Sequence[Bytes] = (),
        layer_media_type: str = OCI_LAYER,
        architecture: str = "amd64",
        os: str = "linux",
        annotations: Optional[Mapping[str, str]] = None,
    ) -> Image:
        """Push a valid OCI image: each layer as given, a config blob, the manifest, the tag."""
        layer_digests = [self.put_blob(name, layer) for layer in layers]
        config = image_config(layer_digests, architecture, os)
        config_digest = self.put_blob(name, config)
        manifest = image_manifest(
            config, layers, layer_digests, layer_media_type=layer_media_type, annotations=annotations
        )
        digest = self.put_manifest(name, tag or digest_of(manifest), manifest)
        return Image(name, tag, digest, manifest, config_digest, tuple(layer_digests))

    def load(self, source: Union[str, "os.PathLike[str]"], destination: Optional[str] = None) -> List["Loaded"]:
        """Push the images of an OCI image layout (a directory or a tar) or a ``docker save`` archive.

        ``source`` may be ``PATH:REF`` to pick one image; ``destination`` is ``REPO:TAG``, ``REPO``
        (the images' own tags) or None (their own names). Returns a ``Loaded`` per tag. Raises
        ``LoadError`` (a ``ValueError``) naming the path and the problem; then nothing is stored.
        """
        from .loading import load

        return load(self, source, destination)

    def reset(self) -> None:
        """Empty the registry: content, upload sessions, the journal and the faults."""
        self.store.clear()
        self.requests.clear()
        self.faults.clear()
        self.internal_errors.clear()

    # inspection

    def repositories(self) -> List[str]:
        return self.store.repository_names()

    def tags(self, name: str) -> List[str]:
        """Sorted tags; ``NameUnknown`` (a ``KeyError``) for an unknown repository."""
        return self.store.tags(name)

    def get_blob(self, name: str, digest: str) -> bytes:
        """A copy of the blob; ``BlobUnknown`` (a ``KeyError``) when the repository lacks it."""
        return self.store.blob(name, digest).tobytes()

    def get_manifest(self, name: str, reference: str) -> bytes:
        """The manifest's bytes as pushed; ``ManifestUnknown`` or ``NameUnknown`` (``KeyError``s) if absent."""
        return self.store.manifest(name, reference).data

    def __repr__(self) -> str:
        return f"<FakeRegistry repositories={len(self.store.repositories)}>"
