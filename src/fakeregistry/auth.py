"""Authentication and authorization, as real registries do them: Basic, and Bearer tokens with scopes.

Scopes follow the Docker token specification and the reference registry:
``repository:<name>:<actions>`` for repository routes (pull for reads,
pull,push for writes, delete for deletes; a cross-repository mount needs pull
on the source too) and ``registry:catalog:*`` for the catalog. The base route
needs valid credentials but no scope.

Tokens are JWTs (HS256, signed with a secret of this registry) carrying the
Docker ``access`` claim: what was asked for, intersected with what the rules
allow, as real token servers grant.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, Union

from werkzeug.datastructures import Authorization
from werkzeug.wrappers import Request

from .errors import RegistryError
from .routing import Route

READ_METHODS = frozenset({"GET", "HEAD"})
ACTIONS = ("pull", "push", "delete", "*")
AUTH_MODES = (None, "basic", "token")
TOKEN_LIFETIME = 300  # seconds, as distribution's token servers default
TOKEN_LEEWAY = 60  # seconds past "exp" a token still passes, as distribution allows (registry/auth/token)

# access rules: user -> {repository glob -> actions}
AccessRules = Mapping[str, Mapping[str, Sequence[str]]]


@dataclass(frozen=True)
class Scope:
    """``type:name:actions``, e.g. ``repository:team/app:pull,push``."""

    type: str
    name: str
    actions: Tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> "Scope":
        kind, _, rest = text.partition(":")
        name, _, actions = rest.rpartition(":")
        if not kind or not name:
            raise ValueError(f"invalid scope {text!r}: expected type:name:actions")
        return cls(kind, name, tuple(a for a in actions.split(",") if a))

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"

    def as_claim(self) -> Dict[str, Any]:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


def required_scopes(route: Route, request: Request) -> List[Scope]:
    """What the request needs: nothing for the base route, else one scope (two for a mount)."""
    if route.name == "catalog":
        return [Scope("registry", "catalog", ("*",))]
    if route.repository is None or route.name not in ROUTES_WITH_SCOPES:
        return []
    method = request.method
    if method in READ_METHODS:
        actions: Tuple[str, ...] = ("pull",)
    elif method == "DELETE":
        actions = ("delete",)
    else:
        actions = ("pull", "push")
    scopes = [Scope("repository", route.repository, actions)]
    source = request.args.get("from")
    if route.name == "blob-upload" and "mount" in request.args and source and source != route.repository:
        scopes.append(Scope("repository", source, ("pull",)))
    return scopes


ROUTES_WITH_SCOPES = frozenset({"tags", "manifest", "blob", "blob-upload", "blob-upload-chunk", "referrers"})


def other_host(host: str, prefix: str) -> str:
    """Another name for the same server: ``localhost`` for 127.0.0.1, else ``<prefix>.<host>``."""
    name, _, port = host.partition(":")
    if name == "127.0.0.1":
        return f"localhost:{port}" if port else "localhost"
    return f"{prefix}.{host}"


def challenge(
    scheme: str,
    request: Request,
    route: Route,
    error: Optional[str] = None,
    *,
    token_host: Optional[str] = None,
) -> str:
    """A ``WWW-Authenticate`` value: Basic, or Bearer naming the realm, service and scope needed."""
    if scheme == "basic":
        return 'Basic realm="fakeregistry"'
    realm = f"{request.scheme}://{token_host or request.host}/token"
    parts = [f'realm="{realm}"', f'service="{request.host}"']
    scopes = required_scopes(route, request)
    if scopes:
        parts.append(f'scope="{" ".join(str(scope) for scope in scopes)}"')
    if error is not None:
        parts.append(f'error="{error}"')
    return "Bearer " + ",".join(parts)


class Rules:
    """Who may do what: users' passwords, per-user repository rules, anonymous pulls."""

    def __init__(
        self,
        users: Mapping[str, str],
        access: Optional[AccessRules],
        anonymous_pull: Union[bool, Sequence[str]],
    ) -> None:
        self.users = dict(users)
        self.access = {
            user: {glob: tuple(actions) for glob, actions in rules.items()} for user, rules in (access or {}).items()
        }
        self.public = ["*"] if anonymous_pull is True else list(anonymous_pull or [])
        for user, rules in self.access.items():
            for glob, actions in rules.items():
                unknown = set(actions) - set(ACTIONS)
                if unknown:
                    raise ValueError(f"access for {user!r} on {glob!r}: unknown actions {sorted(unknown)}")

    def check_password(self, username: Optional[str], password: Optional[str]) -> bool:
        expected = self.users.get(username or "")
        return expected is not None and hmac.compare_digest(expected.encode(), (password or "").encode())

    def allowed_actions(self, user: Optional[str], scope: Scope) -> Tuple[str, ...]:
        """The scope's actions that ``user`` (None: anonymous) may take."""
        if user is None:
            public = scope.type == "repository" and any(fnmatch.fnmatchcase(scope.name, g) for g in self.public)
            return ("pull",) if public and "pull" in scope.actions else ()
        rules = self.access.get(user)
        if rules is None:  # no rules for this user: a user may do anything
            return scope.actions
        granted: Set[str] = set()
        for glob, actions in rules.items():
            if fnmatch.fnmatchcase(scope.name if scope.type == "repository" else f"{scope.type}:{scope.name}", glob):
                granted.update(scope.actions if "*" in actions else set(actions) & set(scope.actions))
        return tuple(a for a in scope.actions if a in granted)

    def grant(self, user: Optional[str], scopes: Iterable[Scope]) -> List[Scope]:
        """What a token gets: each scope asked for, cut down to what the rules allow."""
        granted = []
        for scope in scopes:
            actions = self.allowed_actions(user, scope)
            if actions:
                granted.append(Scope(scope.type, scope.name, actions))
        return granted

    def permits(self, granted: Iterable[Scope], needed: Scope) -> bool:
        return any(
            scope.type == needed.type
            and scope.name == needed.name
            and ("*" in scope.actions or set(needed.actions) <= set(scope.actions))
            for scope in granted
        )


class TokenAuthority:
    """Issues and reads this registry's tokens: JWTs signed with HS256."""

    def __init__(self, clock: Callable[[], float], expires_in: int, leeway: int = TOKEN_LEEWAY) -> None:
        self.secret = secrets.token_bytes(32)
        self.clock = clock
        self.expires_in = expires_in
        self.leeway = leeway

    def issue(self, user: Optional[str], service: str, access: List[Scope], kind: str = "access") -> str:
        now = int(self.clock())
        claims = {
            "iss": "fakeregistry",
            "sub": user or "",
            "aud": service,
            "iat": now,
            "nbf": now,
            "exp": now + self.expires_in if kind == "access" else now + 30 * 24 * 3600,
            "jti": secrets.token_hex(8),
            "kind": kind,
            "access": [scope.as_claim() for scope in access],
        }
        header = _b64({"alg": "HS256", "typ": "JWT"})
        payload = _b64(claims)
        signature = hmac.new(self.secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"

    def read(self, token: str, kind: str = "access") -> Dict[str, Any]:
        """The token's claims; ``ValueError`` saying why when it is not a valid, current token."""
        parts = token.split(".")
        if len(parts) != 3:
            raise ValueError("the token is malformed")
        header, payload, signature = parts
        expected = hmac.new(self.secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        try:
            valid = hmac.compare_digest(_unb64(signature), expected)
            claims = json.loads(_unb64(payload))
        except ValueError:  # bad base64, bad UTF-8, bad JSON
            raise ValueError("the token is malformed") from None
        if not valid:
            raise ValueError("the token's signature does not match: it was not issued here, or was altered")
        if not isinstance(claims, dict) or claims.get("kind") != kind:
            raise ValueError(f"not an {kind} token")
        if claims["exp"] + self.leeway <= self.clock():
            raise ValueError("the token has expired")
        return claims


def _b64(document: Dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document, separators=(",", ":")).encode()).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def scopes_of(claims: Dict[str, Any]) -> List[Scope]:
    return [Scope(a["type"], a["name"], tuple(a["actions"])) for a in claims.get("access", [])]


def now_iso(clock: Callable[[], float]) -> str:
    return datetime.fromtimestamp(clock(), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Authenticator:
    """The auth layer: checks each registry request, and serves the token endpoint.

    ``mode`` None lets everything through (and the token endpoint hands out
    tokens the registry then ignores, for clients answering an injected
    challenge).
    """

    def __init__(
        self,
        mode: Optional[str] = None,
        *,
        users: Optional[Mapping[str, str]] = None,
        access: Optional[AccessRules] = None,
        anonymous_pull: Union[bool, Sequence[str]] = False,
        token_expires_in: int = TOKEN_LIFETIME,
        token_leeway: int = TOKEN_LEEWAY,
        clock: Callable[[], float] = time.time,
        separate_token_host: bool = False,
    ) -> None:
        if mode not in AUTH_MODES:
            raise ValueError(f"auth must be None, 'basic' or 'token', not {mode!r}")
        self.mode = mode
        self.rules = Rules(users or {}, access, anonymous_pull)
        self.tokens = TokenAuthority(clock, token_expires_in, token_leeway)
        self.clock = clock
        self.separate_token_host = separate_token_host

    def token_host(self, request: Request) -> Optional[str]:
        return other_host(request.host, "auth") if self.separate_token_host else None

    def challenge(self, request: Request, route: Route, error: Optional[str] = None) -> str:
        scheme = "basic" if self.mode == "basic" else "bearer"
        return challenge(scheme, request, route, error, token_host=self.token_host(request))

    def check(self, request: Request, route: Route) -> Optional[str]:
        """The user the request acts as (None: anonymous), or a RegistryError for 401/403."""
        if self.mode is None:
            return None
        needed = required_scopes(route, request)
        if self.mode == "basic":
            return self._check_basic(request, route, needed)
        return self._check_bearer(request, route, needed)

    def _unauthorized(self, request: Request, route: Route, message: str, error: Optional[str] = None) -> RegistryError:
        detail = [scope.as_claim() for scope in required_scopes(route, request)] or None
        return RegistryError(
            "UNAUTHORIZED",
            message,
            detail=detail,
            headers={"WWW-Authenticate": self.challenge(request, route, error)},
        )

    def _check_basic(self, request: Request, route: Route, needed: List[Scope]) -> Optional[str]:
        credentials = _credentials(request)
        if credentials is None or credentials.type != "basic":
            if needed and all(self.rules.allowed_actions(None, s) == s.actions for s in needed):
                return None  # an anonymous pull of a public repository
            raise self._unauthorized(request, route, "authentication required: send Basic credentials")
        if not self.rules.check_password(credentials.username, credentials.password):
            raise self._unauthorized(request, route, "wrong username or password")
        user = credentials.username
        for scope in needed:
            if self.rules.allowed_actions(user, scope) != scope.actions:
                raise RegistryError(
                    "DENIED", f"{user} may not {','.join(scope.actions)} {scope.name}", detail=scope.as_claim()
                )
        return user

    def _check_bearer(self, request: Request, route: Route, needed: List[Scope]) -> Optional[str]:
        credentials = request.authorization
        if credentials is None or credentials.type != "bearer" or not credentials.token:
            sent = f"{credentials.type.title()} credentials" if credentials else "no credentials"
            message = f"authentication required: got {sent}; get a Bearer token from the realm"
            raise self._unauthorized(request, route, message)
        try:
            claims = self.tokens.read(credentials.token)
        except ValueError as error:
            raise self._unauthorized(request, route, str(error), "invalid_token") from None
        granted = scopes_of(claims)
        for scope in needed:
            if not self.rules.permits(granted, scope):
                raise self._unauthorized(request, route, f"the token does not grant {scope}", "insufficient_scope")
        return str(claims["sub"]) or None

    # the token endpoint

    def token_response(self, request: Request) -> Tuple[int, Dict[str, Any], Optional[str], List[str], List[str]]:
        """Answer the token endpoint: (status, JSON body, user, scopes asked, scopes granted)."""
        if request.method == "POST":
            return self._oauth_token(request)
        if request.authorization is not None and request.authorization.type == "bearer":
            return self._token_error(400, "invalid_request", "the token endpoint got a Bearer token: send credentials")
        scopes = _scopes_param(request.args.getlist("scope"))
        user = None
        credentials = _credentials(request)
        if credentials is not None:
            if not self._valid_login(credentials):
                return self._token_error(401, "UNAUTHORIZED", "wrong username or password", scopes)
            user = credentials.username
        offline = request.args.get("offline_token") == "true"
        return self._issue(user, request.args.get("service", request.host), scopes, offline)

    def _oauth_token(self, request: Request) -> Tuple[int, Dict[str, Any], Optional[str], List[str], List[str]]:
        form = request.form
        scopes = _scopes_param(form.getlist("scope"))
        grant_type = form.get("grant_type")
        service = form.get("service", request.host)
        if grant_type == "password":
            if not self.rules.check_password(form.get("username"), form.get("password")):
                return self._token_error(401, "UNAUTHORIZED", "wrong username or password", scopes)
            return self._issue(form.get("username"), service, scopes, form.get("access_type") == "offline")
        if grant_type == "refresh_token":
            try:
                claims = self.tokens.read(form.get("refresh_token", ""), kind="refresh")
            except ValueError as error:
                return self._token_error(401, "UNAUTHORIZED", f"invalid refresh token: {error}", scopes)
            return self._issue(claims["sub"] or None, service, scopes, True)
        return self._token_error(
            400, "unsupported_grant_type", f"grant_type {grant_type!r}: use password or refresh_token"
        )

    def _valid_login(self, credentials: Authorization) -> bool:
        return credentials.type == "basic" and self.rules.check_password(credentials.username, credentials.password)

    def _issue(
        self, user: Optional[str], service: str, scopes: List[Scope], offline: bool
    ) -> Tuple[int, Dict[str, Any], Optional[str], List[str], List[str]]:
        granted = self.rules.grant(user, scopes) if self.mode is not None else scopes
        token = self.tokens.issue(user, service, granted)
        document: Dict[str, Any] = {
            "token": token,
            "access_token": token,
            "expires_in": self.tokens.expires_in,
            "issued_at": now_iso(self.clock),
            "scope": " ".join(str(scope) for scope in granted),
        }
        if offline and user is not None:
            document["refresh_token"] = self.tokens.issue(user, service, [], kind="refresh")
        return 200, document, user, [str(s) for s in scopes], [str(s) for s in granted]

    @staticmethod
    def _token_error(
        status: int, code: str, message: str, scopes: Sequence[Scope] = ()
    ) -> Tuple[int, Dict[str, Any], Optional[str], List[str], List[str]]:
        body = {
            "errors": [{"code": code, "message": message, "detail": {}}],
            "error": code,
            "error_description": message,
        }
        return status, body, None, [str(s) for s in scopes], []


def _credentials(request: Request) -> Optional[Authorization]:
    """The request's credentials; empty Basic ones (containers/image sends ``:``) count as none."""
    credentials = request.authorization
    if (
        credentials is not None
        and credentials.type == "basic"
        and not credentials.username
        and not credentials.password
    ):
        return None
    return credentials


def _scopes_param(values: Iterable[str]) -> List[Scope]:
    """Scopes from ``scope`` parameters: repeated, or several in one separated by spaces."""
    scopes = []
    for value in values:
        for text in value.split():
            try:
                scopes.append(Scope.parse(text))
            except ValueError:
                continue  # real token servers ignore what they cannot read
    return scopes
