"""Eight clients pushing and pulling overlapping content over a socket, for a bounded time.

Every pulled blob matches its digest, no answer is a 5xx, the tags end
consistent, and nothing leaks: no upload sessions, no threads.
"""

import hashlib
import json
import random
import threading
import time

import requests

from fakeregistry import FakeRegistry, serve

CLIENTS = 8
SECONDS = 3.0  # the loop's time bound; each client also stops after ITERATIONS
ITERATIONS = 200
LAYERS = [random.Random(i).randbytes(1024 * (1 + i % 7) * 37) for i in range(6)]  # shared by every client
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(session, base, repository, data):
    """Chunked push: POST, two PATCHes, PUT ?digest=."""
    response = session.post(f"{base}/v2/{repository}/blobs/uploads/", timeout=10)
    assert response.status_code == 202, response.text
    location = response.headers["Location"]
    half = len(data) // 2
    for start, chunk in ((0, data[:half]), (half, data[half:])):
        headers = {"Content-Range": f"{start}-{start + len(chunk) - 1}"} if chunk else {}
        response = session.patch(location, data=chunk, headers=headers, timeout=10)
        assert response.status_code == 202, response.text
        location = response.headers["Location"]
    response = session.put(location, params={"digest": digest(data)}, timeout=10)
    assert response.status_code == 201, response.text


def push_image(session, base, repository, tag, layers):
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
    for blob in (config, *layers):
        if session.head(f"{base}/v2/{repository}/blobs/{digest(blob)}", timeout=10).status_code != 200:
            push_blob(session, base, repository, blob)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest(config),
                "size": len(config),
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(layer), "size": len(layer)}
                for layer in layers
            ],
        }
    ).encode()
    response = session.put(
        f"{base}/v2/{repository}/manifests/{tag}", data=manifest, headers={"Content-Type": OCI_MANIFEST}, timeout=10
    )
    assert response.status_code == 201, response.text
    return digest(manifest)


def client_loop(base, number, deadline, failures, pushed):
    rng = random.Random(number)
    with requests.Session() as session:
        for _ in range(ITERATIONS):
            if time.monotonic() > deadline:
                return
            try:
                repository = rng.choice(["team/app", "team/other"])  # overlapping repositories
                tag = rng.choice(["latest", "v1", "v2"])  # overlapping tags
                layers = rng.sample(LAYERS, 2)  # overlapping layers
                manifest_digest = push_image(session, base, repository, tag, layers)
                pushed.append((repository, manifest_digest))
                for layer in layers:  # pull back, verify
                    response = session.get(f"{base}/v2/{repository}/blobs/{digest(layer)}", timeout=10)
                    assert response.status_code == 200, response.text
                    assert digest(response.content) == digest(layer)
                response = session.get(f"{base}/v2/{repository}/manifests/{tag}", timeout=10)
                assert response.status_code == 200
                assert digest(response.content) == response.headers["Docker-Content-Digest"]
            except Exception as error:  # collected: the main thread reports them
                failures.append(f"client {number}: {error!r}")
                return


def test_eight_clients_pushing_and_pulling_overlapping_content():
    registry = FakeRegistry()
    threads_before = set(threading.enumerate())
    failures, pushed = [], []
    with serve(registry) as server:
        deadline = time.monotonic() + SECONDS
        clients = [
            threading.Thread(target=client_loop, args=(server.url, n, deadline, failures, pushed))
            for n in range(CLIENTS)
        ]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(SECONDS + 30)
        assert not any(thread.is_alive() for thread in clients), "a client hung"

    assert not failures, "\n".join(failures)
    assert len(pushed) >= CLIENTS  # every client got through at least one round
    assert [r for r in registry.requests if r.status >= 500] == []
    registry.check_internal_errors()
    # Tags end consistent: each names a manifest that is stored, whose blobs are all stored.
    for repository in registry.repositories():
        for tag in registry.tags(repository):
            manifest = json.loads(registry.get_manifest(repository, tag))
            for blob in [manifest["config"], *manifest["layers"]]:
                assert digest(registry.get_blob(repository, blob["digest"])) == blob["digest"]
    # Nothing leaked: no upload session left open, no thread left behind.
    assert registry.store.uploads == {}
    time.sleep(0.2)  # let the hashing helpers finish exiting
    leftover = [t for t in set(threading.enumerate()) - threads_before if t.is_alive()]
    assert leftover == [], leftover
