"""skopeo, a real registry client written in Go, against ``fake_registry_server``.

skopeo runs in its own process, so it needs a registry on a real socket:
``fake_registry_server`` is a fresh registry per test on 127.0.0.1, with
``.host`` ("127.0.0.1:<port>") ready for image references. It speaks plain
http, hence ``--tls-verify=false``.

Each skopeo call runs in a sandbox under tmp_path so that nothing on the
machine (credentials, caches, registry configuration) changes what it does.
"""

import gzip
import json
import os
import shutil
import subprocess

import pytest

GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
TIMEOUT = 60  # seconds; each call takes well under one, so hitting this means a hang


@pytest.fixture
def skopeo(tmp_path):
    """A function running skopeo with arguments; it returns stdout and fails the test on an error."""
    path = shutil.which("skopeo")
    if path is None:
        message = "skopeo is not installed (apt-get install skopeo)"
        if os.environ.get("FAKEREGISTRY_REQUIRE_TOOLS"):  # CI wants every test to run
            pytest.fail(message)
        pytest.skip(message)

    home = tmp_path / "home"
    # A per-user registries.conf replaces /etc/containers/registries.conf (mirrors, blocked registries).
    (home / ".config" / "containers").mkdir(parents=True)
    (home / ".config" / "containers" / "registries.conf").write_text("unqualified-search-registries = []\n")
    policy = tmp_path / "policy.json"  # copy requires a signature policy: accept anything
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    # A fresh environment: HOME under tmp_path, so no credentials or configuration of the user apply.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "TMPDIR": str(tmp_path)}
    if os.geteuid() == 0:
        # As root, skopeo keeps its blob-info cache (which decides layer reuse and cross-repository
        # mounts) in /var/lib/containers/cache, shared by every run on the machine. This variable,
        # which podman uses to tell containers/image it runs rootless, puts the cache under HOME.
        env["_CONTAINERS_ROOTLESS_UID"] = "1000"

    def run(*args):
        command = [path, f"--policy={policy}", *args]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT)
        if result.returncode != 0:
            pytest.fail(f"{' '.join(command)} exited {result.returncode}:\n{result.stderr}", pytrace=False)
        return result.stdout

    return run


def test_inspect_an_image_seeded_with_the_python_api(skopeo, fake_registry_server):
    image = fake_registry_server.push_image("team/app", "v1", layers=[b"layer one", b"layer two"])

    output = skopeo(
        "inspect", "--retry-times=0", "--tls-verify=false", f"docker://{fake_registry_server.host}/team/app:v1"
    )

    info = json.loads(output)
    assert info["Digest"] == image.digest
    assert info["Layers"] == list(image.layer_digests)
    assert (info["Os"], info["Architecture"]) == ("linux", "amd64")
    assert info["RepoTags"] == ["v1"]


def test_copy_between_repositories(skopeo, fake_registry_server):
    image = fake_registry_server.push_image("team/app", "v1", layers=[b"layer one", b"layer two"])
    host = fake_registry_server.host

    skopeo(
        "copy",
        "--quiet",
        "--retry-times=0",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        f"docker://{host}/team/app:v1",
        f"docker://{host}/team/copy:stable",
    )

    # The Python API shows what arrived. A registry wants compressed layers, so skopeo gzipped
    # the uncompressed ones on the way: new layer digests, a new manifest, the same config.
    assert fake_registry_server.tags("team/copy") == ["stable"]
    manifest = json.loads(fake_registry_server.get_manifest("team/copy", "stable"))
    assert manifest["config"]["digest"] == image.config_digest
    assert [layer["mediaType"] for layer in manifest["layers"]] == [GZIP_LAYER, GZIP_LAYER]
    copied = [fake_registry_server.get_blob("team/copy", layer["digest"]) for layer in manifest["layers"]]
    assert [gzip.decompress(blob) for blob in copied] == [b"layer one", b"layer two"]

    # The journal shows how: skopeo read the source's manifest, uploaded three blobs (the
    # config and two layers) with POST, PATCH and PUT, and only then pushed the manifest.
    journal = fake_registry_server.requests
    journal.assert_called(route="manifest", method="GET", repository="team/app", reference="v1", status=200)
    journal.assert_called(times=3, route="blob-upload-chunk", method="PUT", repository="team/copy", status=201)
    (put,) = journal.assert_called(route="manifest", method="PUT", repository="team/copy", reference="stable")
    assert put.status == 201
    assert journal[-1] is put
