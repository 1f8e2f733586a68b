"""URL routing for the registry API, with the reference registry's route names.

Repository names contain slashes, so the ``repo`` converter matches across
them; it is deliberately permissive and the handlers validate the name, so a
bad name gets NAME_INVALID instead of a routing 404.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import BaseConverter, Map, Rule
from werkzeug.wrappers import Request


class RepositoryNameConverter(BaseConverter):
    regex = r"[^/].*?"
    part_isolating = False


ROUTE_NAMES = (
    "base",
    "catalog",
    "tags",
    "manifest",
    "blob",
    "blob-upload",
    "blob-upload-chunk",
    "referrers",
    "token",  # the registry's own token endpoint (Docker token authentication)
    "storage",  # where an injected redirect sends blob GETs, as object storage would serve them
)

URL_MAP = Map(
    [
        Rule("/v2/", endpoint="base", methods=["GET"]),
        Rule("/v2", endpoint="base", methods=["GET"]),  # some clients drop the slash
        Rule("/v2/_catalog", endpoint="catalog", methods=["GET"]),
        Rule("/v2/<repo:name>/tags/list", endpoint="tags", methods=["GET"]),
        Rule("/v2/<repo:name>/manifests/<reference>", endpoint="manifest", methods=["GET", "PUT", "DELETE"]),
        Rule("/v2/<repo:name>/blobs/uploads/", endpoint="blob-upload", methods=["POST"]),
        Rule("/v2/<repo:name>/blobs/uploads", endpoint="blob-upload", methods=["POST"]),
        Rule(
            "/v2/<repo:name>/blobs/uploads/<upload_id>",
            endpoint="blob-upload-chunk",
            methods=["GET", "PATCH", "PUT", "DELETE"],
        ),
        Rule("/v2/<repo:name>/blobs/<digest>", endpoint="blob", methods=["GET", "DELETE"]),
        Rule("/v2/<repo:name>/referrers/<digest>", endpoint="referrers", methods=["GET"]),
        Rule("/token", endpoint="token", methods=["GET", "POST"]),
        Rule("/_fakeregistry/storage/<repo:name>/blobs/<digest>", endpoint="storage", methods=["GET"]),
    ],
    converters={"repo": RepositoryNameConverter},
    strict_slashes=False,
    merge_slashes=False,
)


@dataclass(frozen=True)
class Route:
    """Where a request goes: a route name from ROUTE_NAMES, or None when no route takes it."""

    name: Optional[str]
    args: Dict[str, str] = field(default_factory=dict)
    allowed_methods: Tuple[str, ...] = ()  # set when the path is known but the method is not

    @property
    def repository(self) -> Optional[str]:
        return self.args.get("name")

    @property
    def reference(self) -> Optional[str]:
        """The manifest reference, or the blob or subject digest."""
        return self.args.get("reference") or self.args.get("digest")


def match_route(request: Request) -> Route:
    try:
        name, args = URL_MAP.bind_to_environ(request.environ).match()
    except MethodNotAllowed as error:
        return Route(None, allowed_methods=tuple(sorted(error.valid_methods or ())))
    except NotFound:
        return Route(None)
    return Route(name, dict(args))
