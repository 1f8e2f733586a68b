"""The control API under ``/_fakeregistry/``: scripting a running registry over HTTP.

For test suites in any language: add, list and clear faults, read the
journal, reset the registry. Same field names as ``FakeRegistry.inject`` and
``RequestRecord``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Dict

from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .api import empty_response, error_response, json_response, read_limited
from .errors import RegistryError
from .faults import OPTION_NAMES
from .openapi import openapi_text

if TYPE_CHECKING:
    from .registry import FakeRegistry

CONTROL_PREFIX = "/_fakeregistry/"
MAX_CONTROL_BODY = 64 * 1024

CONTROL_MAP = Map(
    [
        Rule("/_fakeregistry/faults", endpoint="faults", methods=["GET", "POST", "DELETE"]),
        Rule("/_fakeregistry/faults/<fault_id>", endpoint="fault", methods=["DELETE"]),
        Rule("/_fakeregistry/requests", endpoint="requests", methods=["GET"]),
        Rule("/_fakeregistry/reset", endpoint="reset", methods=["POST"]),
        Rule("/_fakeregistry/openapi.json", endpoint="openapi", methods=["GET"]),
    ],
    strict_slashes=False,
)


class ControlAPI:
    def __init__(self, registry: "FakeRegistry") -> None:
        self.registry = registry

    def __call__(self, request: Request) -> Response:
        try:
            endpoint, args = CONTROL_MAP.bind_to_environ(request.environ).match()
            return self.handle(request, endpoint, **args)
        except RegistryError as error:
            return error_response(error)
        except MethodNotAllowed as error:
            allowed = ", ".join(sorted(error.valid_methods or ()))
            message = f"{request.method} is not allowed on {request.path}; allowed: {allowed}"
            return error_response(RegistryError("UNSUPPORTED", message, headers={"Allow": allowed}))
        except HTTPException as error:
            return error_response(RegistryError("UNSUPPORTED", error.description, status=error.code or 400))

    def handle(self, request: Request, endpoint: str, fault_id: str = "") -> Response:
        registry = self.registry
        if endpoint == "faults" and request.method == "POST":
            try:
                fault = registry.inject(**fault_options(request))
            except (TypeError, ValueError) as error:  # options that cannot work, said why
                raise RegistryError("UNSUPPORTED", f"invalid fault: {error}", status=400) from None
            return json_response(fault.as_json(), 201)
        if endpoint == "faults" and request.method == "DELETE":
            registry.clear_faults()
            return empty_response(204)
        if endpoint == "faults":
            return json_response([fault.as_json() for fault in registry.faults])
        if endpoint == "fault":
            if not registry.faults.remove_id(fault_id):
                raise RegistryError("UNSUPPORTED", f"no fault with id {fault_id!r}", status=404)
            return empty_response(204)
        if endpoint == "requests":
            return json_response([record.as_json() for record in registry.requests])
        if endpoint == "openapi":
            return Response(openapi_text(), content_type="application/json")
        registry.reset()
        return empty_response(204)


def fault_options(request: Request) -> Dict[str, Any]:
    try:
        options = json.loads(read_limited(request, MAX_CONTROL_BODY, "fault"))
    except ValueError as error:
        raise RegistryError("UNSUPPORTED", f"the fault must be a JSON object: {error}", status=400) from None
    if not isinstance(options, dict):
        raise RegistryError("UNSUPPORTED", "the fault must be a JSON object", status=400)
    unknown = sorted(set(options) - set(OPTION_NAMES))
    if unknown:
        raise RegistryError(
            "UNSUPPORTED", f"unknown fault fields {unknown}; known: {', '.join(OPTION_NAMES)}", status=400
        )
    return options
