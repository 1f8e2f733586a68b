"""URL routing for the registry API, with the reference registry's route names.

Repository names contain slashes, so the ``repo`` converter matches across
them; it is deliberately permissive and the handlers validate the name, so a
bad name gets NAME_INVALID instead of a routing 404.
"""

from __future__ import annotations

from werkzeug.routing import BaseConverter, Map, Rule


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
    ],
    converters={"repo": RepositoryNameConverter},
    strict_slashes=False,
    merge_slashes=False,
)
