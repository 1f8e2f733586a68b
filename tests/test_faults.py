"""Fault rules below the clients: matching, validation, answers, the --fault syntax."""

import pytest

from fakeregistry.faults import OPTION_NAMES, parse_fault_spec
from helpers import assert_error


def statuses(client, path, count, method="GET"):
    return [client.open(path, method=method).status_code for _ in range(count)]


def test_default_is_the_next_matching_request_only(registry, client):
    fault = registry.inject("base", status=503)
    assert statuses(client, "/v2/", 3) == [503, 200, 200]
    assert fault.hits == 1 and not fault.active


def test_times_after_every(registry, client):
    registry.inject("base", status=500, times=2, after=1)
    assert statuses(client, "/v2/", 5) == [200, 500, 500, 200, 200]
    registry.clear_faults()
    registry.inject("base", status=500, times=None, every=3)
    assert statuses(client, "/v2/", 7) == [200, 200, 500, 200, 200, 500, 200]


def test_times_none_until_removed(registry, client):
    fault = registry.inject("base", status=500, times=None)
    assert statuses(client, "/v2/", 3) == [500, 500, 500]
    fault.remove()
    assert statuses(client, "/v2/", 1) == [200]
    assert fault.hits == 3


def test_with_block_scopes_the_fault(registry, client):
    with registry.inject("base", status=503, times=None) as fault:
        assert statuses(client, "/v2/", 2) == [503, 503]
    assert statuses(client, "/v2/", 1) == [200]
    assert fault.hits == 2 and list(registry.faults) == []


def test_matching_by_route_method_repository_and_reference(registry, client):
    image = registry.push_image("team/app", "v1", layers=[b"x"])
    registry.push_image("other/app", "v1", layers=[b"x"])
    registry.inject("manifest", method="HEAD", repository="team/*", reference="v1", status=500, times=None)
    assert client.head("/v2/team/app/manifests/v1").status_code == 500
    assert client.get("/v2/team/app/manifests/v1").status_code == 200  # GET is not HEAD
    assert client.head(f"/v2/team/app/manifests/{image.digest}").status_code == 200  # another reference
    assert client.head("/v2/other/app/manifests/v1").status_code == 200  # another repository
    assert client.head(f"/v2/team/app/blobs/{image.layer_digests[0]}").status_code == 200  # another route


def test_several_methods(registry, client):
    registry.inject("base", method=["GET", "HEAD"], status=500, times=None)
    assert client.get("/v2/").status_code == 500
    assert client.head("/v2/").status_code == 500


def test_first_matching_fault_applies(registry, client):
    first = registry.inject("base", status=503)
    second = registry.inject("*", status=429)
    assert statuses(client, "/v2/", 3) == [503, 429, 200]
    assert (first.hits, second.hits) == (1, 1)


def test_seeded_probability_repeats(registry, client):
    def run(seed):
        registry.reset()
        registry.inject("base", status=500, times=None, probability=0.5, seed=seed)
        return statuses(client, "/v2/", 40)

    assert run(3) == run(3)
    assert run(3) != run(4)
    assert 5 < run(3).count(500) < 35


@pytest.mark.parametrize(
    "status, route, path, code",
    [
        (401, "base", "/v2/", "UNAUTHORIZED"),
        (403, "base", "/v2/", "DENIED"),
        (404, "blob", "/v2/a/blobs/sha256:" + "0" * 64, "BLOB_UNKNOWN"),
        (404, "manifest", "/v2/a/manifests/v1", "MANIFEST_UNKNOWN"),
        (404, "tags", "/v2/a/tags/list", "NAME_UNKNOWN"),
        (405, "base", "/v2/", "UNSUPPORTED"),
        (429, "base", "/v2/", "TOOMANYREQUESTS"),
        (503, "base", "/v2/", "UNAVAILABLE"),
        (500, "base", "/v2/", "UNKNOWN"),
        (418, "base", "/v2/", "UNKNOWN"),
    ],
)
def test_status_speaks_the_spec_code(registry, client, status, route, path, code):
    registry.inject(route, status=status)
    error = assert_error(client.get(path), status, code)
    assert "injected by fakeregistry" in error["message"]


def test_error_and_message_override(registry, client):
    registry.inject("base", status=400, error="DENIED", message="no you don't")
    error = assert_error(client.get("/v2/"), 400, "DENIED")
    assert error["message"] == "no you don't"


def test_retry_after(registry, client):
    registry.inject_throttling(retry_after=1.5)
    response = client.get("/v2/")
    assert_error(response, 429, "TOOMANYREQUESTS")
    assert response.headers["Retry-After"] == "2"  # delay-seconds are whole: 1.5 rounds up


def test_416_on_an_upload_carries_where_to_resume(registry, client):
    location = client.post("/v2/team/app/blobs/uploads/").headers["Location"].split("localhost")[1]
    client.patch(location, data=b"abcd")
    registry.inject_chunk_range_error()
    response = client.patch(location, data=b"efgh", headers={"Content-Range": "4-7"})
    assert_error(response, 416, "RANGE_INVALID")
    assert response.headers["Range"] == "0-3"
    assert response.headers["Location"] == f"http://localhost{location}"
    assert client.get(location).headers["Range"] == "0-3"  # the chunk was not applied


@pytest.mark.parametrize("scheme, start", [("bearer", 'Bearer realm="http://localhost/token"'), ("basic", "Basic ")])
def test_auth_challenge(registry, client, scheme, start):
    registry.inject_auth_challenge(scheme=scheme)
    response = client.put("/v2/team/app/manifests/v1", data=b"{}")
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"].startswith(start)
    if scheme == "bearer":
        assert 'scope="repository:team/app:pull,push"' in response.headers["WWW-Authenticate"]


def test_token_endpoint_answers_the_challenge(registry, client):
    document = client.get("/token?service=localhost&scope=repository:team/app:pull").json
    assert document["token"] == document["access_token"] and document["expires_in"] > 0
    assert registry.requests[-1].route == "token"


def test_journal_marks_injected_answers(registry, client):
    fault = registry.inject("base", status=503)
    client.get("/v2/")
    client.get("/v2/")
    assert [record.fault for record in registry.requests] == [fault.id, None]
    assert registry.requests[0].describe().endswith(f"(fault {fault.id})")


def test_reset_clears_faults(registry, client):
    registry.inject("*", status=500, times=None)
    registry.reset()
    assert client.get("/v2/").status_code == 200


@pytest.mark.parametrize(
    "options, message",
    [
        ({"route": "blobs"}, "unknown route"),
        ({"error": "NOPE"}, "unknown error code"),
        ({"status": 200}, "4xx or 5xx"),
        ({"times": -1}, "non-negative integer"),
        ({"every": 0}, "1 or more"),
        ({"probability": 2}, "between 0 and 1"),
        ({"delay": -1}, "non-negative number"),
        ({"auth_challenge": "digest"}, "auth_challenge"),
        ({"route": "manifest", "redirect": True}, "redirect applies to blob"),
    ],
)
def test_impossible_options_are_refused(registry, options, message):
    with pytest.raises(ValueError, match=message):
        registry.inject(**options)


def test_unknown_options_are_a_type_error(registry):
    with pytest.raises(TypeError, match="unknown fault options"):
        registry.inject("blob", stauts=404)


def test_fault_json(registry):
    fault = registry.inject("blob", method="GET", status=404, times=None)
    assert fault.as_json() == {
        "route": "blob",
        "method": "GET",
        "times": None,
        "after": 0,
        "seed": 0,
        "status": 404,
        "id": fault.id,
        "hits": 0,
        "seen": 0,
    }


@pytest.mark.parametrize(
    "spec, options",
    [
        (
            "blob-upload-chunk:PATCH:416:times=1",
            {"route": "blob-upload-chunk", "method": "PATCH", "status": 416, "times": 1},
        ),
        ("blob:GET:delay=0.5:times=none", {"route": "blob", "method": "GET", "delay": 0.5, "times": None}),
        ("manifest:auth_challenge=true", {"route": "manifest", "auth_challenge": True}),
        ("manifest:auth_challenge=basic", {"route": "manifest", "auth_challenge": "basic"}),
        ("*:429:retry_after=1:times=2", {"route": "*", "status": 429, "retry_after": 1, "times": 2}),
        ("manifest:reference=1:status=404", {"route": "manifest", "reference": "1", "status": 404}),
        (
            "blob:reference=sha256:" + "a" * 64 + ":corrupt=true",
            {"route": "blob", "reference": "sha256:" + "a" * 64, "corrupt": True},
        ),
    ],
)
def test_fault_spec_syntax(spec, options):
    assert parse_fault_spec(spec) == options


@pytest.mark.parametrize("spec", ["blob:nonsense", "blob:colour=red", "blob:get"])
def test_bad_fault_specs(spec):
    with pytest.raises(ValueError):
        parse_fault_spec(spec)


def test_every_option_is_documented_in_the_fault_class():
    from fakeregistry.faults import Fault

    assert set(OPTION_NAMES) <= set(Fault.__dataclass_fields__)
    assert "hits" not in OPTION_NAMES and "id" not in OPTION_NAMES


def test_a_redirect_fault_waits_for_a_blob_get(registry, client):
    image = registry.push_image("team/app", "v1", layers=[b"x"])
    fault = registry.inject(redirect=True)
    assert client.get("/v2/team/app/manifests/v1").status_code == 200
    assert client.delete(f"/v2/team/app/blobs/{image.layer_digests[0]}").status_code == 202
    registry.put_blob("team/app", b"x")
    assert client.get(f"/v2/team/app/blobs/{image.layer_digests[0]}").status_code == 307
    assert fault.hits == 1


def test_a_drop_upload_fault_waits_for_an_upload_request(registry, client):
    fault = registry.inject("*", status=404, error="BLOB_UPLOAD_UNKNOWN", drop_upload=True)
    client.get("/v2/")
    location = client.post("/v2/team/app/blobs/uploads/").headers["Location"].split("localhost")[1]
    assert fault.hits == 0
    assert_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert fault.hits == 1


def test_star_leaves_the_token_endpoint_and_storage_alone(registry, client):
    registry.inject("*", status=503, times=None)
    assert client.get("/token?scope=repository:a:pull").status_code == 200
    assert client.get("/v2/").status_code == 503
    registry.clear_faults()
    registry.inject("token", status=503)
    assert client.get("/token").status_code == 503
