"""The OCI 1.1 referrers API."""

import json

from helpers import OCI_INDEX, OCI_MANIFEST, assert_error, descriptor, sha256

EMPTY = b"{}"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"


def push_referrer(registry, subject_digest, artifact_type, annotations=None, config_type=EMPTY_TYPE):
    registry.put_blob("team/app", EMPTY)
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(config_type, EMPTY),
        "layers": [descriptor(EMPTY_TYPE, EMPTY)],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": 123},
    }
    if artifact_type:
        document["artifactType"] = artifact_type
    if annotations:
        document["annotations"] = annotations
    body = json.dumps(document).encode()
    return registry.put_manifest("team/app", sha256(body), body)


def test_referrers_lists_manifests_whose_subject_is_the_digest(registry, client):
    image = registry.push_image("team/app", "v1", layers=[b"layer"])
    sbom = push_referrer(registry, image.digest, "application/vnd.example.sbom", {"org.example.kind": "sbom"})
    sig = push_referrer(registry, image.digest, "application/vnd.example.sig")
    push_referrer(registry, sha256(b"another subject"), "application/vnd.example.sbom")

    response = client.get(f"/v2/team/app/referrers/{image.digest}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == OCI_INDEX
    index = response.json
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == OCI_INDEX
    by_digest = {d["digest"]: d for d in index["manifests"]}
    assert set(by_digest) == {sbom, sig}
    assert by_digest[sbom] == {
        "mediaType": OCI_MANIFEST,
        "digest": sbom,
        "size": len(registry.get_manifest("team/app", sbom)),
        "artifactType": "application/vnd.example.sbom",
        "annotations": {"org.example.kind": "sbom"},
    }
    assert "annotations" not in by_digest[sig]
    assert "OCI-Filters-Applied" not in response.headers


def test_artifact_type_falls_back_to_the_config_media_type(registry, client):
    subject = sha256(b"subject")
    digest = push_referrer(registry, subject, None, config_type="application/vnd.example.config")
    manifests = client.get(f"/v2/team/app/referrers/{subject}").json["manifests"]
    assert manifests == [
        {
            "mediaType": OCI_MANIFEST,
            "digest": digest,
            "size": len(registry.get_manifest("team/app", digest)),
            "artifactType": "application/vnd.example.config",
        }
    ]


def test_artifact_type_filter(registry, client):
    subject = sha256(b"subject")
    sbom = push_referrer(registry, subject, "application/vnd.example.sbom")
    push_referrer(registry, subject, "application/vnd.example.sig")
    response = client.get(f"/v2/team/app/referrers/{subject}?artifactType=application/vnd.example.sbom")
    assert [d["digest"] for d in response.json["manifests"]] == [sbom]
    assert response.headers["OCI-Filters-Applied"] == "artifactType"


def test_no_referrers_is_an_empty_index(registry, client):
    image = registry.push_image("team/app", "v1", layers=[b"layer"])
    for name in ("team/app", "never/pushed"):
        response = client.get(f"/v2/{name}/referrers/{image.digest}")
        assert response.status_code == 200
        assert response.json == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def test_referrers_work_when_the_subject_was_never_pushed(registry, client):
    subject = sha256(b"not pushed")
    digest = push_referrer(registry, subject, "application/vnd.example.sbom")
    assert [d["digest"] for d in client.get(f"/v2/team/app/referrers/{subject}").json["manifests"]] == [digest]


def test_deleted_referrer_disappears(registry, client):
    subject = sha256(b"subject")
    digest = push_referrer(registry, subject, "application/vnd.example.sbom")
    client.delete(f"/v2/team/app/manifests/{digest}")
    assert client.get(f"/v2/team/app/referrers/{subject}").json["manifests"] == []


def test_referrers_digest_must_be_valid(client):
    assert_error(client.get("/v2/team/app/referrers/latest"), 400, "DIGEST_INVALID")
