"""``FakeRegistry``: the WSGI application, and the Python API to seed and inspect it."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Iterable, List, Mapping, Optional, Sequence, Union

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request

from .api import RegistryAPI, error_response
from .errors import InternalError, RegistryError
from .grammar import Bytes, check_name, check_reference, digest_of
from .images import OCI_LAYER, Image, image_config, image_manifest
from .journal import CountingBody, CountingInput, Journal, RequestRecord
from .routing import match_route
from .store import Store

if TYPE_CHECKING:
    import httpx
    import requests_mock
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger("fakeregistry")

API_VERSION_HEADER = ("Docker-Distribution-API-Version", "registry/2.0")
DEFAULT_HOST = "registry.test"


class FakeRegistry:
    """An in-memory container registry (OCI Distribution Spec v1.1), as a WSGI app.

    >>> reg = FakeRegistry()
    >>> image = reg.push_image("team/app", "v1", layers=[b"hello"])
    >>> reg.tags("team/app")
    ['v1']
    """

    def __init__(self, *, host: str = DEFAULT_HOST, delete_enabled: bool = True) -> None:
        self.host = host  # where in-process clients reach it: requests to http(s)://<host>
        self.store = Store()
        self.api = RegistryAPI(self.store, delete_enabled=delete_enabled)
        self.requests = Journal()
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
        self.requests.append(record)
        environ["wsgi.input"] = CountingInput(environ["wsgi.input"], record)
        try:
            response = self.api.handle(request, route)
        except RegistryError as error:
            response = error_response(error)
            record.error = error.code
        except Exception as error:  # a bug in the fake, never the client's doing
            log.exception("fakeregistry failed on %s %s", request.method, request.path)
            self.internal_errors.append(error)
            response = error_response(RegistryError("UNKNOWN", f"internal error in fakeregistry: {error!r}"))
            record.error = "UNKNOWN"
        record.status = response.status_code
        response.headers[API_VERSION_HEADER[0]] = API_VERSION_HEADER[1]
        return CountingBody(response(environ, start_response), record)

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

    def reset(self) -> None:
        """Empty the registry: repositories, blobs, manifests, tags, upload sessions and the journal."""
        self.store.clear()
        self.requests.clear()
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
