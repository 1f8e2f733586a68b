"""Tag and catalog listings, with n/last pagination."""

import pytest

from helpers import assert_error


@pytest.fixture
def tagged(registry):
    image = registry.push_image("team/app", "v1", layers=[b"a"])
    for tag in ["b", "a", "c", "latest", "0.1", "Z"]:
        registry.put_manifest("team/app", tag, image.manifest)
    return registry


def test_tags_are_sorted(client, tagged):
    response = client.get("/v2/team/app/tags/list")
    assert response.status_code == 200
    assert response.json == {"name": "team/app", "tags": ["0.1", "Z", "a", "b", "c", "latest", "v1"]}
    assert "Link" not in response.headers


def test_untagged_repository_lists_an_empty_list(registry, client):
    image = registry.push_image("team/app", None, layers=[b"a"])
    assert image.tag is None
    assert client.get("/v2/team/app/tags/list").json == {"name": "team/app", "tags": []}


def test_repository_whose_tags_were_deleted_lists_an_empty_list(registry, client):
    image = registry.push_image("team/app", "v1", layers=[b"a"])
    client.delete(f"/v2/team/app/manifests/{image.digest}")
    assert client.get("/v2/team/app/tags/list").json["tags"] == []


def test_unknown_repository_is_name_unknown(client):
    assert_error(client.get("/v2/no/such/tags/list"), 404, "NAME_UNKNOWN")


def test_tags_pagination_follows_the_link(client, tagged):
    seen, url = [], "/v2/team/app/tags/list?n=3"
    while url:
        response = client.get(url)
        assert response.status_code == 200
        page = response.json["tags"]
        assert len(page) <= 3
        seen += page
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
        if link:
            assert link.endswith('>; rel="next"')
    assert seen == ["0.1", "Z", "a", "b", "c", "latest", "v1"]


def test_tags_link_format(client, tagged):
    response = client.get("/v2/team/app/tags/list?n=2")
    assert response.json["tags"] == ["0.1", "Z"]
    assert response.headers["Link"] == '</v2/team/app/tags/list?last=Z&n=2>; rel="next"'


def test_tags_last_without_n(client, tagged):
    assert client.get("/v2/team/app/tags/list?last=c").json["tags"] == ["latest", "v1"]


def test_tags_n_larger_than_the_rest_has_no_link(client, tagged):
    response = client.get("/v2/team/app/tags/list?n=7")
    assert len(response.json["tags"]) == 7
    assert "Link" not in response.headers


def test_tags_n_zero_is_an_empty_page(client, tagged):
    response = client.get("/v2/team/app/tags/list?n=0")
    assert response.json["tags"] == []
    assert "Link" not in response.headers


def test_empty_n_is_no_n(client, tagged):
    assert len(client.get("/v2/team/app/tags/list?n=").json["tags"]) == 7


def test_n_given_twice_uses_the_first(client, tagged):
    assert client.get("/v2/team/app/tags/list?n=2&n=2").json["tags"] == ["0.1", "Z"]


@pytest.mark.parametrize("n", ["-1", "abc", "1.5", "²"])
def test_bad_n_is_pagination_number_invalid(client, tagged, n):
    assert_error(client.get(f"/v2/team/app/tags/list?n={n}"), 400, "PAGINATION_NUMBER_INVALID")
    assert_error(client.get(f"/v2/_catalog?n={n}"), 400, "PAGINATION_NUMBER_INVALID")


def test_catalog_lists_repositories_sorted(registry, client):
    for name in ["b/app", "a", "c/d/e"]:
        registry.put_blob(name, b"x")
    response = client.get("/v2/_catalog")
    assert response.json == {"repositories": ["a", "b/app", "c/d/e"]}
    assert "Link" not in response.headers


def test_empty_catalog(client):
    assert client.get("/v2/_catalog").json == {"repositories": []}


def test_catalog_pages_default_to_100(registry, client):
    for i in range(150):
        registry.put_blob(f"repo{i:03}", b"x")
    first = client.get("/v2/_catalog")
    assert len(first.json["repositories"]) == 100
    assert first.headers["Link"] == '</v2/_catalog?last=repo099&n=100>; rel="next"'
    second = client.get("/v2/_catalog?last=repo099&n=100")
    assert len(second.json["repositories"]) == 50
    assert "Link" not in second.headers


def test_catalog_large_n_is_clamped(registry, client):
    for i in range(3):
        registry.put_blob(f"repo{i}", b"x")
    response = client.get("/v2/_catalog?n=10000")
    assert response.status_code == 200
    assert response.json["repositories"] == ["repo0", "repo1", "repo2"]


def test_catalog_pagination(registry, client):
    for name in ["a", "b", "c"]:
        registry.put_blob(name, b"x")
    response = client.get("/v2/_catalog?n=2")
    assert response.json["repositories"] == ["a", "b"]
    assert response.headers["Link"] == '</v2/_catalog?last=b&n=2>; rel="next"'
    assert client.get("/v2/_catalog?n=2&last=b").json["repositories"] == ["c"]
