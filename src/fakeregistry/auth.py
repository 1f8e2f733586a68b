"""Authentication vocabulary: the scope a request needs, and the challenge that names it.

Scopes follow the Docker token specification and the reference registry:
``repository:<name>:<actions>`` for repository routes (pull for reads,
pull,push for writes, delete for deletes) and ``registry:catalog:*`` for the
catalog. The base route needs credentials but no scope.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import Any, Dict, Optional

from werkzeug.wrappers import Request

from .routing import Route

READ_METHODS = frozenset({"GET", "HEAD"})


def required_scope(route: Route, method: str) -> Optional[str]:
    if route.name == "catalog":
        return "registry:catalog:*"
    if route.repository is None:
        return None
    if method in READ_METHODS:
        actions = "pull"
    elif method == "DELETE":
        actions = "delete"
    else:
        actions = "pull,push"
    return f"repository:{route.repository}:{actions}"


def token_realm(request: Request) -> str:
    """The registry's own token endpoint, on the host the client used."""
    return f"{request.host_url}token"


def challenge(scheme: str, request: Request, route: Route, error: Optional[str] = None) -> str:
    """A ``WWW-Authenticate`` value: Basic, or Bearer naming the realm, service and scope needed."""
    if scheme == "basic":
        return 'Basic realm="fakeregistry"'
    parts = [f'realm="{token_realm(request)}"', f'service="{request.host}"']
    scope = required_scope(route, request.method)
    if scope is not None:
        parts.append(f'scope="{scope}"')
    if error is not None:
        parts.append(f'error="{error}"')
    return "Bearer " + ",".join(parts)


TOKEN_LIFETIME = 300  # seconds, as distribution's token server defaults


def token_document(request: Request) -> Dict[str, Any]:
    """The token endpoint's answer on a registry without auth: any scope, to anyone.

    Clients doing the token dance (after an injected challenge, say) get a
    token, and the registry accepts whatever they then send.
    """
    token = secrets.token_urlsafe(24)
    issued_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"token": token, "access_token": token, "expires_in": TOKEN_LIFETIME, "issued_at": issued_at}
