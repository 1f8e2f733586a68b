"""The page at ``/``: what it shows, that it escapes what clients sent, and how it looks in a real browser."""

import json
import os
import subprocess
import time
from html.parser import HTMLParser
from urllib.parse import urlsplit

import requests
from conftest import require_tool
from werkzeug.test import Client

from fakeregistry import serve
from helpers import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, descriptor, sha256

XSS = "<script>alert(1)</script>"
EMPTY = b"{}"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
SBOM_TYPE = "application/vnd.example.sbom"


class Page(HTMLParser):
    """What a person sees: the text, each section's table rows as cell texts, and the tags the page holds."""

    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.text_parts = []
        self.rows = {}  # section id -> [[cell text, ...], ...]
        self.start_tags = []
        self.data_rows = set()  # ids of the rows with <td> cells, not headers only
        self.refresh = None
        self._section = None
        self._row = None
        self._cell = None
        self._skip = 0  # inside <script> or <style>
        self.feed(html)
        self.close()
        self.text = " ".join(" ".join(self.text_parts).split())

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.start_tags.append(tag)
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "section":
            self._section = attributes.get("id")
        elif tag == "meta" and attributes.get("http-equiv") == "refresh":
            self.refresh = attributes.get("content")
        elif tag == "tr":
            self._row = []
            self.rows.setdefault(self._section, []).append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
            self._row.append(self._cell)
            if tag == "td":
                self.data_rows.add(id(self._row))

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1
        elif tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row[-1] = " ".join("".join(self._cell).split())
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._skip:
            return
        self.text_parts.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def table(self, section):
        """The section's rows, without the header rows (all <th>)."""
        return [row for row in self.rows.get(section, []) if id(row) in self.data_rows]


def get_page(registry):
    response = Client(registry).get("/")
    assert response.status_code == 200
    assert response.content_type == "text/html; charset=utf-8"
    return response.get_data(as_text=True), Page(response.get_data(as_text=True))


def push_referrer(registry, subject, annotations=None):
    registry.put_blob("team/app", EMPTY)
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SBOM_TYPE,
        "config": descriptor(EMPTY_TYPE, EMPTY),
        "layers": [descriptor(EMPTY_TYPE, EMPTY)],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 123},
    }
    if annotations:
        document["annotations"] = annotations
    body = json.dumps(document).encode()
    return registry.put_manifest("team/app", sha256(body), body)


def path_of(location):
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# what it shows


def test_the_page_is_html_and_stays_out_of_the_journal(registry, client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.content_type == "text/html; charset=utf-8"
    assert response.get_data(as_text=True).startswith("<!doctype html>")
    assert client.head("/").status_code == 200
    assert list(registry.requests) == []


def test_an_empty_registry(registry):
    _, page = get_page(registry)
    assert "0 repositories · 0 manifests · 0 tags · 0 blobs, 0 B" in page.text
    assert "None yet: push something." in page.text
    assert page.table("requests") == [] and page.table("faults") == []


def test_it_refreshes_itself(registry):
    html, page = get_page(registry)
    assert page.refresh == "2"  # without JavaScript
    assert "setInterval(" in html and "replaceWith" in html  # with it: the body is swapped, the scroll kept


def test_repositories_tags_manifests_and_layer_sizes(registry):
    image = registry.push_image("team/app", "v1", layers=[b"a" * 1500, b"bcd"])
    registry.push_image("library/alpine", "3.19", layers=[b"x" * 3 * 1024 * 1024])
    html, page = get_page(registry)

    assert "2 repositories · 2 manifests · 2 tags · 5 blobs" in page.text
    assert page.text.index("library/alpine") < page.text.index("team/app")  # sorted
    # tag -> digest, media type, manifest size, image size
    manifest_line = f"v1 {image.digest} {OCI_MANIFEST} · {len(image.manifest)} B · image "
    assert manifest_line in page.text
    # the config and the layers, with their media types and sizes
    config = registry.get_blob("team/app", image.config_digest)
    assert ["config", image.config_digest, OCI_CONFIG, f"{len(config)} B"] in page.table("repositories")
    assert ["layer 1", image.layer_digests[0], OCI_LAYER, "1,500 B (1.5 KiB)"] in page.table("repositories")
    assert ["layer 2", image.layer_digests[1], OCI_LAYER, "3 B"] in page.table("repositories")
    assert "3,145,728 B (3.0 MiB)" in page.text
    # the manifest's JSON, pretty-printed, folded away
    pretty = json.dumps(json.loads(image.manifest), indent=2)
    json_block = f'<details id="m-team/app@{image.digest}-json"><summary class=small>JSON</summary>'
    assert f"{json_block}<pre>{pretty.replace(chr(34), '&quot;')}</pre>" in html  # with an id: it stays open


def test_an_index_lists_its_manifests_and_platforms(registry):
    amd = registry.push_image("team/app", None, layers=[b"amd"])
    arm = registry.push_image("team/app", None, layers=[b"arm"], architecture="arm64")
    platforms = [{"os": "linux", "architecture": "amd64"}, {"os": "linux", "architecture": "arm64", "variant": "v8"}]
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": image.digest, "size": len(image.manifest), "platform": platform}
            for image, platform in zip((amd, arm), platforms)
        ],
    }
    digest = registry.put_manifest("team/app", "latest", index)
    html, page = get_page(registry)

    assert f"latest {digest} {OCI_INDEX}" in page.text
    rows = page.table("repositories")
    assert [amd.digest, OCI_MANIFEST, f"{len(amd.manifest)} B", "linux/amd64"] in rows
    assert [arm.digest, OCI_MANIFEST, f"{len(arm.manifest)} B", "linux/arm64/v8"] in rows
    assert f'href="#m-team/app@{arm.digest}"' in html  # the child, linked to its own entry
    assert f'id="m-team/app@{arm.digest}"' in html
    assert f"untagged {arm.digest}" in page.text


def test_referrers_are_grouped_under_their_subject(registry):
    image = registry.push_image("team/app", "v1", layers=[b"layer"])
    sbom = push_referrer(registry, image.digest, {"org.example.kind": "sbom"})
    orphan_subject = sha256(b"not pushed yet")
    orphan = push_referrer(registry, orphan_subject)
    _, page = get_page(registry)

    text = page.text
    assert f"Referrers of {image.digest} v1" in text
    assert f"Referrers of {orphan_subject} (not in this repository)" in text
    first, second = text.index(f"Referrers of {image.digest}"), text.index(f"Referrers of {orphan_subject}")
    assert first < text.index(f"untagged {sbom}") < second < text.index(f"untagged {orphan}")
    assert f"artifactType {SBOM_TYPE} subject {image.digest}" in text
    assert "org.example.kind org.example.kind" not in text and "org.example.kind sbom" in text


def test_uploads_in_progress(registry, client):
    location = client.post("/v2/team/app/blobs/uploads/").headers["Location"]
    client.patch(path_of(location), data=b"z" * 5000)
    upload_id = location.rsplit("/", 1)[1]
    _, page = get_page(registry)
    assert page.table("uploads") == [[upload_id, "team/app", "5,000 B (4.9 KiB)"]]
    assert "1 upload in progress" in page.text


def test_the_latest_requests_newest_first_with_route_status_error_and_fault(registry, client):
    image = registry.push_image("team/app", "v1", layers=[b"layer"])
    fault = registry.inject("blob", method="GET", status=503)
    for path in ("/v2/", "/v2/team/app/manifests/v1", f"/v2/team/app/blobs/{image.layer_digests[0]}"):
        client.get(path).close()  # the body sent: the duration is known
    client.get("/v2/team/app/manifests/nope").close()
    client.get("/nowhere").close()
    _, page = get_page(registry)

    rows = [row[1:] for row in page.table("requests")]  # without the age
    nowhere, nope, blob, manifest, base = registry.requests[::-1]
    assert rows == [
        ["GET", "/nowhere", "no route", "404", nowhere.error, "", "0", f"{nowhere.bytes_sent} B", rows[0][-1]],
        ["GET", "/v2/team/app/manifests/nope", "manifest", "404", "MANIFEST_UNKNOWN", "", "0"] + rows[1][-2:],
        ["GET", blob.path, "blob", "503", "UNAVAILABLE", f"#{fault.id}", "0"] + rows[2][-2:],
        ["GET", "/v2/team/app/manifests/v1", "manifest", "200", "", "", "0", f"{len(image.manifest)} B", rows[3][-1]],
        ["GET", "/v2/", "base", "200", "", "", "0", "2 B", rows[4][-1]],
    ]
    assert all(row[-1].endswith(" ms") for row in rows), rows
    assert page.table("requests")[0][0].endswith(" s ago")
    assert "5 requests" in page.text


def test_only_the_latest_50_requests_are_listed(registry, client):
    for i in range(120):
        client.get(f"/v2/team/app/manifests/t{i}")
    _, page = get_page(registry)
    rows = page.table("requests")
    assert len(rows) == 50
    assert rows[0][2] == "/v2/team/app/manifests/t119" and rows[-1][2] == "/v2/team/app/manifests/t70"
    assert "Requests (120) the latest 50 of 120, newest first" in page.text


def test_faults_with_their_options_and_hits(registry, client):
    spent = registry.inject("blob", method="GET", status=404, error="BLOB_UNKNOWN")
    throttle = registry.inject("*", status=429, retry_after=1, times=None, repository="team/*")
    client.get(f"/v2/other/blobs/{sha256(b'x')}")  # the first fault takes it
    client.get("/v2/team/app/tags/list")  # the second
    client.get("/v2/team/app/tags/list")  # the second again
    _, page = get_page(registry)

    assert page.table("faults") == [
        [f"#{spent.id}", "blob", "method=GET times=1 status=404 error=BLOB_UNKNOWN", "1", "1", "spent"],
        [f"#{throttle.id}", "*", "repository=team/* times=none status=429 retry_after=1", "2", "2", "active"],
    ]
    assert "Faults (1 active of 2)" in page.text and "1 active fault" in page.text


def test_what_clients_sent_is_shown_as_text(registry, client):
    registry.push_image(
        "team/app", "v1", layers=[b"layer"], annotations={XSS: XSS, "img": "<img src=x onerror=alert(2)>"}
    )
    registry.inject("blob", message="<i>injected</i>")
    client.get("/v2/team/app/manifests/<img src=x onerror=alert(3)>")
    html, page = get_page(registry)

    assert page.start_tags.count("script") == 1  # the page's own refresh script, no other
    assert "img" not in page.start_tags and "i" not in page.start_tags
    assert XSS not in html
    assert f"{XSS} {XSS}" in page.text  # the annotation, key and value, as text
    assert "<img src=x onerror=alert(2)>" in page.text
    assert "/v2/team/app/manifests/<img src=x onerror=alert(3)>" in page.text
    assert "message=<i>injected</i>" in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_big_registry_is_capped_and_quick(registry, client):
    for i in range(200):
        registry.push_image(f"org{i:03}/svc", "v1", layers=[b"layer %d" % i])
    for _ in range(1000):
        client.get("/v2/")
    start = time.perf_counter()
    html, page = get_page(registry)
    elapsed = time.perf_counter() - start

    assert elapsed < 2, elapsed  # some 20 ms on a laptop
    assert len(html) < 1_000_000
    assert "200 repositories" in page.text
    assert "org049/svc 1 tag" in page.text and "org050/svc 1 tag" not in page.text  # the first 50 in full...
    assert "org199/svc" in page.text  # ...every one by name
    assert "150 more repositories not shown in full" in page.text
    assert len(page.table("requests")) == 50


# in a real browser


def run_chromium(chromium, tmp_path, *arguments):
    command = [
        chromium,
        "--headless",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        *arguments,
    ]
    environment = {**os.environ, "HOME": str(tmp_path)}  # nothing written to the real home
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=environment)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_the_page_in_chromium_after_a_push(registry, tmp_path):
    chromium = require_tool("chromium")
    image = registry.push_image("team/app", "v1", layers=[b"a" * 1500, b"b" * 2_000_000], annotations={"note": XSS})
    fault = registry.inject("blob", method="GET", status=503, times=1)
    with serve(registry) as server:
        # A client at work, over the socket: a pull, a failed blob GET, an upload under way.
        with requests.Session() as http:
            accept = {"Accept": OCI_MANIFEST}
            assert http.get(f"{server.url}/v2/team/app/manifests/v1", headers=accept).status_code == 200
            assert http.get(f"{server.url}/v2/team/app/blobs/{image.layer_digests[0]}").status_code == 503
            location = http.post(f"{server.url}/v2/team/app/blobs/uploads/").headers["Location"]
            assert http.patch(f"{server.url}{path_of(location)}", data=b"c" * 700).status_code == 202

        dom = run_chromium(chromium, tmp_path, "--dump-dom", f"{server.url}/")
        screenshot = tmp_path / "page.png"
        run_chromium(chromium, tmp_path, f"--screenshot={screenshot}", "--window-size=1366,900", f"{server.url}/")

    # Looking at the page left the journal alone: no /, no /favicon.ico, only the client's four requests.
    assert [record.path for record in registry.requests] == [
        "/v2/team/app/manifests/v1",
        f"/v2/team/app/blobs/{image.layer_digests[0]}",
        "/v2/team/app/blobs/uploads/",
        path_of(location),
    ]
    page = Page(dom)
    assert "1 repository · 1 manifest · 1 tag · 3 blobs" in page.text
    assert f"v1 {image.digest} {OCI_MANIFEST}" in page.text
    rows = page.table("repositories")
    assert ["layer 1", image.layer_digests[0], OCI_LAYER, "1,500 B (1.5 KiB)"] in rows
    assert ["layer 2", image.layer_digests[1], OCI_LAYER, "2,000,000 B (1.9 MiB)"] in rows
    requests_shown = [row[1:6] for row in page.table("requests")]
    assert requests_shown[-1] == ["GET", "/v2/team/app/manifests/v1", "manifest", "200", ""]
    blob_get = ["GET", f"/v2/team/app/blobs/{image.layer_digests[0]}", "blob", "503", "UNAVAILABLE"]
    assert blob_get in requests_shown
    assert page.table("faults") == [[f"#{fault.id}", "blob", "method=GET times=1 status=503", "1", "1", "spent"]]
    assert page.table("uploads")[0][1:] == ["team/app", "700 B"]
    # The annotation stayed text: the browser built no element from it.
    assert f"note {XSS}" in page.text
    assert page.start_tags.count("script") == 1

    data = screenshot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1366, 900)
    assert len(data) > 20_000  # a page of text, not a blank one


def test_the_page_refreshes_itself_in_chromium(registry, tmp_path):
    chromium = require_tool("chromium")
    registry.push_image("team/app", "v1", layers=[b"layer"])
    loads = []

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/":
            loads.append(environ["REQUEST_METHOD"])
            if len(loads) == 2:  # a push between the first load and the first refresh
                registry.push_image("team/late", "v9", layers=[b"late"])
        return registry(environ, start_response)

    with serve(app) as server:
        # Virtual time runs the page's timers at once: the refreshes happen, the DOM is dumped after them.
        dom = run_chromium(chromium, tmp_path, "--virtual-time-budget=4500", "--dump-dom", f"{server.url}/")

    assert len(loads) >= 2, loads
    page = Page(dom)
    assert "2 repositories" in page.text and "v9" in page.text  # the body was swapped for the new page
    assert "refreshing every 2 s" in page.text  # and the refresh never failed
    assert page.start_tags.count("script") == 1
    assert list(registry.requests) == []
