"""Authentication and authorization: Basic, and Docker token auth with scopes."""

import base64
import json

import pytest
import requests

from fakeregistry import FakeRegistry
from helpers import sha256

USERS = {"alice": "secret", "bob": "hunter2"}
URL = "http://registry.test"


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


def make(**options):
    registry = FakeRegistry(users=USERS, **options)
    registry.push_image("team/app", "v1", layers=[b"layer"])
    registry.push_image("public/app", "v1", layers=[b"layer"])
    return registry


@pytest.fixture
def token_registry(clock):
    registry = make(auth="token", clock=clock, access={"bob": {"team/*": ["pull"], "bob/*": ["*"]}})
    with registry.mock_requests():
        yield registry


@pytest.fixture
def basic_registry():
    registry = make(auth="basic", access={"bob": {"team/*": ["pull"]}}, anonymous_pull=["public/*"])
    with registry.mock_requests():
        yield registry


def token(*scopes, user="alice", password=None, **params):
    auth = (user, password or USERS[user]) if user else None
    response = requests.get(
        f"{URL}/token", params={"service": "registry.test", "scope": list(scopes), **params}, auth=auth
    )
    assert response.status_code == 200, response.text
    return response.json()


def bearer(document):
    return {"Authorization": f"Bearer {document['token']}"}


def challenge_of(response):
    assert response.status_code == 401, response.text
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
    return response.headers["WWW-Authenticate"]


# Basic


def test_basic_needs_credentials(basic_registry):
    response = requests.get(f"{URL}/v2/team/app/manifests/v1")
    assert challenge_of(response) == 'Basic realm="fakeregistry"'
    assert challenge_of(requests.get(f"{URL}/v2/team/app/manifests/v1", auth=("alice", "wrong")))
    assert challenge_of(requests.get(f"{URL}/v2/", auth=("nobody", "secret")))
    assert requests.get(f"{URL}/v2/team/app/manifests/v1", auth=("alice", "secret")).status_code == 200
    assert basic_registry.requests[-1].user == "alice"


def test_basic_access_rules_answer_403_denied(basic_registry):
    assert requests.get(f"{URL}/v2/team/app/manifests/v1", auth=("bob", "hunter2")).status_code == 200
    response = requests.post(f"{URL}/v2/team/app/blobs/uploads/", auth=("bob", "hunter2"))
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "DENIED"
    assert requests.get(f"{URL}/v2/other/tags/list", auth=("bob", "hunter2")).status_code == 403


def test_basic_anonymous_pull_of_public_repositories(basic_registry):
    assert requests.get(f"{URL}/v2/public/app/manifests/v1").status_code == 200
    assert requests.head(f"{URL}/v2/public/app/manifests/v1").status_code == 200
    assert requests.post(f"{URL}/v2/public/app/blobs/uploads/").status_code == 401
    assert requests.get(f"{URL}/v2/team/app/manifests/v1").status_code == 401


# Token: challenges


@pytest.mark.parametrize(
    "method, path, scope",
    [
        ("GET", "/v2/team/app/manifests/v1", "repository:team/app:pull"),
        ("HEAD", "/v2/team/app/blobs/" + sha256(b"x"), "repository:team/app:pull"),
        ("PUT", "/v2/team/app/manifests/v2", "repository:team/app:pull,push"),
        ("POST", "/v2/team/app/blobs/uploads/", "repository:team/app:pull,push"),
        ("PATCH", "/v2/team/app/blobs/uploads/some-id", "repository:team/app:pull,push"),
        ("DELETE", "/v2/team/app/manifests/v1", "repository:team/app:delete"),
        ("GET", "/v2/team/app/tags/list", "repository:team/app:pull"),
        ("GET", "/v2/_catalog", "registry:catalog:*"),
        (
            "POST",
            "/v2/team/app/blobs/uploads/?mount=" + sha256(b"x") + "&from=other/app",
            "repository:team/app:pull,push repository:other/app:pull",
        ),
    ],
)
def test_token_challenge_names_the_exact_scope(token_registry, method, path, scope):
    response = requests.request(method, URL + path)
    assert response.status_code == 401
    header = response.headers["WWW-Authenticate"]
    assert header == f'Bearer realm="{URL}/token",service="registry.test",scope="{scope}"'
    # ...and the error detail lists the same access, as the reference does.
    detail = requests.request("GET" if method == "HEAD" else method, URL + path).json()["errors"][0]["detail"]
    assert " ".join(f"{d['type']}:{d['name']}:{','.join(d['actions'])}" for d in detail) == scope


def test_base_needs_a_token_but_no_scope(token_registry):
    assert challenge_of(requests.get(f"{URL}/v2/")) == f'Bearer realm="{URL}/token",service="registry.test"'
    assert requests.get(f"{URL}/v2/", headers=bearer(token())).status_code == 200


def test_the_token_dance(token_registry):
    document = token("repository:team/app:pull")
    assert document["token"] == document["access_token"]
    assert document["expires_in"] == 300 and document["issued_at"].endswith("Z")
    response = requests.get(f"{URL}/v2/team/app/manifests/v1", headers=bearer(document))
    assert response.status_code == 200
    assert token_registry.requests[-1].user == "alice"


def test_tokens_are_jwts_with_the_docker_access_claim(token_registry):
    claims = json.loads(base64.urlsafe_b64decode(token("repository:team/app:pull")["token"].split(".")[1] + "=="))
    assert claims["sub"] == "alice" and claims["aud"] == "registry.test"
    assert claims["access"] == [{"type": "repository", "name": "team/app", "actions": ["pull"]}]


# Token: what is granted


def test_grant_is_what_was_asked_within_the_rules(token_registry):
    assert token("repository:team/app:pull,push", "registry:catalog:*")["scope"] == (
        "repository:team/app:pull,push registry:catalog:*"
    )
    assert token("repository:team/app:pull,push", user="bob")["scope"] == "repository:team/app:pull"
    assert token("repository:bob/x:pull,push,delete", user="bob")["scope"] == "repository:bob/x:pull,push,delete"
    assert token("repository:other/app:pull", user="bob")["scope"] == ""
    assert token("repository:team/app:pull", user=None)["scope"] == ""  # anonymous, nothing public


def test_scopes_in_one_parameter_separated_by_spaces(token_registry):
    assert (
        token("repository:team/app:pull registry:catalog:*")["scope"] == "repository:team/app:pull registry:catalog:*"
    )


def test_journal_records_scopes_asked_and_granted(token_registry):
    token("repository:team/app:pull,push", user="bob")
    record = token_registry.requests.filter(route="token")[-1]
    assert record.user == "bob"
    assert (record.scopes, record.granted) == (["repository:team/app:pull,push"], ["repository:team/app:pull"])


def test_anonymous_pull_in_token_mode_needs_an_anonymous_token(clock):
    registry = make(auth="token", clock=clock, anonymous_pull=True)
    with registry.mock_requests():
        assert requests.get(f"{URL}/v2/public/app/manifests/v1").status_code == 401
        document = token("repository:public/app:pull,push", user=None)
        assert document["scope"] == "repository:public/app:pull"
        assert requests.get(f"{URL}/v2/public/app/manifests/v1", headers=bearer(document)).status_code == 200
        assert requests.post(f"{URL}/v2/public/app/blobs/uploads/", headers=bearer(document)).status_code == 401


# Token: refusals


def test_wrong_password_at_the_token_endpoint(token_registry):
    response = requests.get(f"{URL}/token", params={"scope": "repository:team/app:pull"}, auth=("alice", "nope"))
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_a_token_for_one_repository_on_another(token_registry):
    document = token("repository:team/app:pull")
    header = challenge_of(requests.get(f"{URL}/v2/public/app/manifests/v1", headers=bearer(document)))
    assert 'scope="repository:public/app:pull"' in header and 'error="insufficient_scope"' in header


def test_a_pull_token_cannot_push(token_registry):
    document = token("repository:team/app:pull")
    header = challenge_of(requests.post(f"{URL}/v2/team/app/blobs/uploads/", headers=bearer(document)))
    assert 'scope="repository:team/app:pull,push"' in header and 'error="insufficient_scope"' in header


def test_a_mount_needs_pull_on_the_source(token_registry):
    digest = token_registry.store.manifest("team/app", "v1").parsed.blobs[1]
    target = token("repository:new/app:pull,push")
    path = f"{URL}/v2/new/app/blobs/uploads/?mount={digest}&from=team/app"
    header = challenge_of(requests.post(path, headers=bearer(target)))
    assert 'scope="repository:new/app:pull,push repository:team/app:pull"' in header
    both = token("repository:new/app:pull,push", "repository:team/app:pull")
    assert requests.post(path, headers=bearer(both)).status_code == 201


def test_the_catalog_needs_registry_catalog(token_registry):
    assert challenge_of(requests.get(f"{URL}/v2/_catalog", headers=bearer(token("repository:team/app:pull"))))
    response = requests.get(f"{URL}/v2/_catalog", headers=bearer(token("registry:catalog:*")))
    assert response.json() == {"repositories": ["public/app", "team/app"]}


def test_an_expired_token(token_registry, clock):
    document = token("repository:team/app:pull")
    clock.now += 300 + 59  # past "exp", within distribution's 60 s of leeway
    assert requests.get(f"{URL}/v2/team/app/manifests/v1", headers=bearer(document)).status_code == 200
    clock.now += 1
    header = challenge_of(requests.get(f"{URL}/v2/team/app/manifests/v1", headers=bearer(document)))
    assert 'error="invalid_token"' in header
    assert "expired" in requests.get(f"{URL}/v2/team/app/manifests/v1", headers=bearer(document)).text


def test_token_lifetime_and_leeway_are_configurable(clock):
    registry = make(auth="token", clock=clock, token_expires_in=5, token_leeway=0)
    with registry.mock_requests():
        document = token("repository:team/app:pull")
        assert document["expires_in"] == 5
        clock.now += 4.9
        assert requests.get(f"{URL}/v2/team/app/manifests/v1", headers=bearer(document)).status_code == 200
        clock.now += 0.1
        assert requests.get(f"{URL}/v2/team/app/manifests/v1", headers=bearer(document)).status_code == 401


def test_refused_token_requests_are_marked_in_the_journal(token_registry):
    requests.get(f"{URL}/token", params={"scope": "repository:team/app:pull"}, auth=("alice", "nope"))
    (record,) = token_registry.requests.filter(route="token", error="UNAUTHORIZED")
    assert record.status == 401


def test_empty_basic_credentials_are_anonymous(basic_registry):
    # containers/image sends "Authorization: Basic Og==" (":") for --no-creds after a Basic challenge.
    assert requests.get(f"{URL}/v2/public/app/manifests/v1", auth=("", "")).status_code == 200
    assert requests.get(f"{URL}/v2/team/app/manifests/v1", auth=("", "")).status_code == 401


def test_the_journal_keeps_the_challenge_answered(token_registry):
    requests.get(f"{URL}/v2/team/app/manifests/v1")
    assert token_registry.requests[-1].response_headers["WWW-Authenticate"].startswith("Bearer realm=")


@pytest.mark.parametrize("tamper", ["signature", "claims", "garbage", "other registry"])
def test_a_tampered_token(token_registry, tamper):
    good = token("repository:team/app:pull")["token"]
    header, payload, signature = good.split(".")
    if tamper == "signature":
        bad = f"{header}.{payload}.{signature[::-1]}"
    elif tamper == "claims":
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        claims["access"][0]["actions"] = ["pull", "push"]
        bad = f"{header}.{base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip('=')}.{signature}"
    elif tamper == "garbage":
        bad = "not-a-token"
    else:
        other = make(auth="token")
        with other.mock_requests():
            bad = token("repository:team/app:pull")["token"]
    header_value = challenge_of(
        requests.post(f"{URL}/v2/team/app/blobs/uploads/", headers={"Authorization": f"Bearer {bad}"})
    )
    assert 'error="invalid_token"' in header_value


def test_basic_credentials_sent_to_a_token_registry(token_registry):
    response = requests.get(f"{URL}/v2/team/app/manifests/v1", auth=("alice", "secret"))
    assert "Basic credentials" in response.json()["errors"][0]["message"]
    assert challenge_of(response).startswith("Bearer ")


def test_a_registry_token_sent_to_the_token_endpoint(token_registry):
    response = requests.get(f"{URL}/token", headers=bearer(token("repository:team/app:pull")))
    assert response.status_code == 400


# Token: the OAuth2 POST form (containerd, docker)


def test_password_grant_with_offline_access_and_refresh(token_registry, clock):
    form = {"grant_type": "password", "username": "alice", "password": "secret", "service": "registry.test"}
    form.update(scope="repository:team/app:pull", client_id="test", access_type="offline")
    document = requests.post(f"{URL}/token", data=form).json()
    assert document["scope"] == "repository:team/app:pull" and "refresh_token" in document
    clock.now += 3600  # the access token expired; the refresh token did not
    refresh = {"grant_type": "refresh_token", "refresh_token": document["refresh_token"], "service": "registry.test"}
    refreshed = requests.post(f"{URL}/token", data={**refresh, "scope": "repository:team/app:pull,push"}).json()
    assert refreshed["scope"] == "repository:team/app:pull,push"
    assert requests.post(f"{URL}/v2/team/app/blobs/uploads/", headers=bearer(refreshed)).status_code == 202


def test_offline_token_on_get(token_registry):
    assert "refresh_token" in token("repository:team/app:pull", offline_token="true")
    assert "refresh_token" not in token("repository:team/app:pull")


@pytest.mark.parametrize(
    "form, status",
    [
        ({"grant_type": "password", "username": "alice", "password": "bad"}, 401),
        ({"grant_type": "refresh_token", "refresh_token": "forged"}, 401),
        ({"grant_type": "client_credentials"}, 400),
        ({}, 400),
    ],
)
def test_bad_token_posts(token_registry, form, status):
    assert requests.post(f"{URL}/token", data=form).status_code == status


def test_an_access_token_is_not_a_refresh_token(token_registry):
    access = token("repository:team/app:pull")["token"]
    form = {"grant_type": "refresh_token", "refresh_token": access}
    assert requests.post(f"{URL}/token", data=form).status_code == 401


# Token realm on another host


def test_separate_token_host(clock):
    registry = make(auth="token", clock=clock, separate_token_host=True)
    with registry.mock_requests():
        header = challenge_of(requests.get(f"{URL}/v2/team/app/manifests/v1"))
        assert header.startswith('Bearer realm="http://auth.registry.test/token",service="registry.test"')
        response = requests.get(
            "http://auth.registry.test/token", params={"scope": "repository:team/app:pull"}, auth=("alice", "secret")
        )
        assert requests.get(f"{URL}/v2/team/app/manifests/v1", headers=bearer(response.json())).status_code == 200


def test_separate_token_host_on_a_socket(clock):
    from fakeregistry import serve

    registry = make(auth="token", clock=clock, separate_token_host=True)
    with serve(registry) as server:
        header = requests.get(f"{server.url}/v2/").headers["WWW-Authenticate"]
        assert header.startswith(f'Bearer realm="http://localhost:{server.port}/token"')


# Faults and options


def test_an_injected_challenge_on_an_auth_registry_is_its_real_one(token_registry):
    token_registry.inject_auth_challenge(route="manifest", scheme="basic")
    document = token("repository:team/app:pull")
    header = challenge_of(requests.get(f"{URL}/v2/team/app/manifests/v1", headers=bearer(document)))
    assert header.startswith("Bearer ")  # the registry uses token auth, so that is the challenge


def test_unknown_auth_mode_and_actions_are_refused():
    with pytest.raises(ValueError, match="auth must be"):
        FakeRegistry(auth="digest")
    with pytest.raises(ValueError, match="unknown actions"):
        FakeRegistry(auth="token", users=USERS, access={"bob": {"*": ["read"]}})


@pytest.mark.fake_registry(auth="basic", users={"carol": "pw"})
def test_the_marker_configures_auth(fake_registry):
    assert requests.get(f"{fake_registry.url}/v2/").status_code == 401
    assert requests.get(f"{fake_registry.url}/v2/", auth=("carol", "pw")).status_code == 200
