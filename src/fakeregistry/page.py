"""The page at ``/``: what the registry holds, what it was asked, and the active faults.

Plain server-rendered HTML, standard library only. Everything shown comes from
clients (repository names, tags, annotations, paths, manifest bodies), so every
value goes through ``html.escape``. The store is copied under its lock and
rendered outside it; long lists are capped and say how many were left out.

The page refreshes itself every few seconds: a small script fetches it again
and swaps the body, which keeps the scroll position and the open ``<details>``
(and waits while text is selected, so a digest can be copied). Without
JavaScript a ``<meta http-equiv="refresh">`` does it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from .manifests import IMAGE_MANIFEST_TYPES, INDEX_TYPES, OCI_ARTIFACT_MANIFEST

if TYPE_CHECKING:
    from .journal import RequestRecord
    from .registry import FakeRegistry
    from .store import Manifest

REFRESH_SECONDS = 2
MAX_REPOSITORIES = 50  # shown in full; the rest by name only
MAX_NAMES = 1000  # repository names in the index at the top of the section
MAX_TAGS = 20  # chips on one manifest
MAX_MANIFESTS = 20  # per repository
MAX_DESCRIPTORS = 50  # layers, index entries, artifact blobs per manifest
MAX_ANNOTATIONS = 20
MAX_REFERRERS = 50  # per subject
MAX_UPLOADS = 50
MAX_REQUESTS = 50
MAX_FAULTS = 100
MAX_JSON_CHARS = 64 * 1024  # of a manifest's pretty-printed JSON
MAX_TEXT = 200  # characters of a path or an annotation value before it is cut

STYLE = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#fff;--soft:#f6f8fa;--link:#0969da;
--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--chip:#ddf4ff}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;--line:#3d444d;--bg:#0d1117;
--soft:#151b23;--link:#4493f8;--ok:#3fb950;--warn:#d29922;--bad:#f85149;--chip:#1f3a5f}}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Liberation Sans",sans-serif;
color:var(--fg);background:var(--bg)}
a{color:var(--link);text-decoration:none}a:hover{text-decoration:underline}
header{position:sticky;top:0;z-index:1;background:var(--soft);border-bottom:1px solid var(--line);
padding:.45rem 1.25rem;display:flex;flex-wrap:wrap;gap:.3rem 1.25rem;align-items:baseline}
header h1{font-size:1.05rem;margin:0}header nav{display:flex;gap:.9rem}
main{max-width:1320px;margin:0 auto;padding:.25rem 1.25rem 3rem}
h2{font-size:1.05rem;margin:1.4rem 0 .5rem;padding-bottom:.2rem;border-bottom:1px solid var(--line)}
h3{font-size:.95rem;margin:0 0 .35rem}h4{font-size:.85rem;margin:.6rem 0 .2rem;color:var(--muted)}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono","Liberation Mono",monospace;
font-size:12.5px}
pre{background:var(--soft);border:1px solid var(--line);border-radius:6px;padding:.5rem .7rem;margin:.35rem 0;
overflow:auto;max-height:28rem}
table{border-collapse:collapse;width:100%;margin:.2rem 0 .4rem}
th,td{text-align:left;padding:.18rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;font-weight:600;color:var(--muted);white-space:nowrap}
td.n,th.n{text-align:right;white-space:nowrap}
td.path{word-break:break-all;width:40%}.nowrap{white-space:nowrap}
.box{border:1px solid var(--line);border-radius:8px;padding:.55rem .8rem;margin:.7rem 0}
.muted{color:var(--muted)}.small{font-size:12px}
.chip{display:inline-block;background:var(--chip);border-radius:1em;padding:0 .5em;margin:0 .15em .15em 0;
font-size:12.5px}
.names a,.names span{display:inline-block;margin:0 .8em .1em 0}
details{margin:.2rem 0}summary{cursor:pointer}
details.manifest{border-top:1px solid var(--line);padding:.3rem 0}
details.manifest>summary{list-style-position:outside;margin-left:1rem}
details.manifest>.inner{margin:.2rem 0 .4rem 1.6rem}
.s2{color:var(--ok)}.s3{color:var(--link)}.s4{color:var(--warn)}.s5,.err{color:var(--bad)}
.s2,.s3,.s4,.s5{font-weight:600}
.spent{opacity:.55}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:.05rem .8rem;margin:.2rem 0}
dl.kv dt{color:var(--muted)}dl.kv dd{margin:0;word-break:break-all}
"""

# Refetch the page and swap the body: the scroll position and the open <details> stay.
SCRIPT = """
setInterval(async () => {
  if (document.hidden || String(getSelection())) return;
  const live = document.getElementById("live");
  try {
    const answer = await fetch(location.pathname, {cache: "no-store"});
    if (!answer.ok) throw new Error(answer.status);
    const page = new DOMParser().parseFromString(await answer.text(), "text/html");
    const open = [...document.querySelectorAll("details[open][id]")].map((d) => d.id);
    document.body.replaceWith(page.body);
    for (const id of open) { const d = document.getElementById(id); if (d) d.open = true; }
  } catch (error) {
    if (live) live.textContent = "the registry is not answering";
  }
}, %d);
""" % (REFRESH_SECONDS * 1000)


@dataclass
class _Repository:
    name: str
    tags: Dict[str, str]
    manifests: List["Manifest"]
    blob_count: int
    blob_bytes: int


@dataclass
class _Upload:
    id: str
    name: str
    size: int


@dataclass
class _Snapshot:
    repositories: List[_Repository]  # the first MAX_REPOSITORIES, copied in full
    names: List[str]  # every repository name
    manifest_count: int
    tag_count: int
    blob_count: int
    blob_bytes: int
    uploads: List[_Upload]


def _snapshot(registry: "FakeRegistry") -> _Snapshot:
    """Copy what the page shows, under the store's lock. Manifests are immutable, so shared."""
    store = registry.store
    with store.lock:
        sizes = {digest: blob.nbytes for digest, blob in store.blobs.items()}
        names = sorted(store.repositories)
        manifest_count = sum(len(r.manifests) for r in store.repositories.values())
        tag_count = sum(len(r.tags) for r in store.repositories.values())
        shown = [store.repositories[name] for name in names[:MAX_REPOSITORIES]]
        copies = [(r.name, dict(r.tags), list(r.manifests.values()), list(r.blobs)) for r in shown]
        uploads = [_Upload(u.id, u.name, u.size) for u in store.uploads.values()]
    repositories = [
        _Repository(name, tags, manifests, len(blobs), sum(sizes.get(d, 0) for d in blobs))
        for name, tags, manifests, blobs in copies
    ]
    return _Snapshot(repositories, names, manifest_count, tag_count, len(sizes), sum(sizes.values()), uploads)


def render_page(registry: "FakeRegistry") -> str:
    snapshot = _snapshot(registry)
    records = list(registry.requests)  # a copy: the server appends as we render
    faults = [(fault.as_json(), fault.active) for fault in registry.faults]
    active = sum(1 for _, is_active in faults if is_active)
    now = time.perf_counter()

    summary = (
        f"{_count(len(snapshot.names), 'repository', 'repositories')} · "
        f"{_count(snapshot.manifest_count, 'manifest')} · {_count(snapshot.tag_count, 'tag')} · "
        f"{_count(snapshot.blob_count, 'blob')}, {_size(snapshot.blob_bytes)} · "
        f"{_count(len(snapshot.uploads), 'upload')} in progress · "
        f"{_count(len(records), 'request')} · {_count(active, 'active fault')}"
    )
    nav = "".join(
        f'<a href="#{anchor}">{label}</a>'
        for anchor, label in (
            ("repositories", "Repositories"),
            ("uploads", "Uploads"),
            ("requests", "Requests"),
            ("faults", "Faults"),
        )
    )
    parts = [
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>",
        '<meta name=viewport content="width=device-width, initial-scale=1">',
        "<link rel=icon href='data:,'>",  # no /favicon.ico request to land in the journal
        f'<noscript><meta http-equiv="refresh" content="{REFRESH_SECONDS}"></noscript>',
        "<title>fakeregistry</title>",
        f"<style>{STYLE}</style><script>{SCRIPT}</script></head><body>",
        f"<header><h1>fakeregistry</h1><span id=summary>{summary}</span><nav>{nav}</nav>",
        f'<span class="muted small" id=live>{time.strftime("%H:%M:%S")}, '
        f"refreshing every {REFRESH_SECONDS} s</span></header><main>",
    ]
    parts += _repositories_section(snapshot)
    parts += _uploads_section(snapshot.uploads)
    parts += _requests_section(records, now)
    parts += _faults_section(faults)
    parts.append("</main></body></html>\n")
    return "".join(parts)


# sections


def _repositories_section(snapshot: _Snapshot) -> List[str]:
    parts = [f"<section id=repositories><h2>Repositories ({len(snapshot.names)})</h2>"]
    if not snapshot.names:
        parts.append("<p class=muted>None yet: push something.</p></section>")
        return parts
    if len(snapshot.repositories) > 1:
        links = "".join(f'<a href="#{_anchor("r", r.name)}">{escape(r.name)}</a>' for r in snapshot.repositories)
        parts.append(f"<p class=names>{links}</p>")
    for repository in snapshot.repositories:
        parts += _repository(repository)
    rest = snapshot.names[len(snapshot.repositories) :]
    if rest:
        names = "".join(f"<span>{escape(name)}</span>" for name in rest[:MAX_NAMES])
        more = _count(len(rest), "more repository", "more repositories")
        parts.append(
            f"<details id=more-repositories><summary class=muted>{more} not shown in full "
            f"(the first {MAX_REPOSITORIES} are): their names</summary>"
            f"<p class=names>{names}</p>{_more(len(rest), MAX_NAMES, 'names')}</details>"
        )
    parts.append("</section>")
    return parts


def _repository(repository: _Repository) -> List[str]:
    """Its manifests, tagged first (tags -> digest on each line), then the referrers under their subjects."""
    name = repository.name
    by_digest: Dict[str, List[str]] = {}
    for tag, digest in sorted(repository.tags.items()):
        by_digest.setdefault(digest, []).append(tag)
    manifests = {manifest.digest: manifest for manifest in repository.manifests}
    parts = [
        f'<div class=box id="{_anchor("r", name)}"><h3>{escape(name)} '
        f'<span class="muted small">{_count(len(repository.tags), "tag")} · '
        f"{_count(len(repository.manifests), 'manifest')} · {_count(repository.blob_count, 'blob')}, "
        f"{_size(repository.blob_bytes)}</span></h3>"
    ]

    plain = [m for m in repository.manifests if m.parsed.subject is None]
    tagged = sorted((m for m in plain if m.digest in by_digest), key=lambda m: by_digest[m.digest][0])
    ordered = tagged + [m for m in plain if m.digest not in by_digest]
    for manifest in ordered[:MAX_MANIFESTS]:
        parts.append(_manifest(name, manifest, by_digest.get(manifest.digest, []), manifests))
    parts.append(_more(len(ordered), MAX_MANIFESTS, "manifests"))

    referrers: Dict[str, List["Manifest"]] = {}
    for manifest in repository.manifests:
        if manifest.parsed.subject is not None:
            referrers.setdefault(manifest.parsed.subject, []).append(manifest)
    # Subjects in the repository first, then those not (yet) pushed.
    groups = sorted(referrers.items(), key=lambda item: (item[0] not in manifests, item[0]))
    for subject, children in groups[:MAX_MANIFESTS]:
        tags = _chips(by_digest.get(subject, []))
        link = _digest(subject, name if subject in manifests else None)
        absent = "" if subject in manifests else ' <span class="muted small">(not in this repository)</span>'
        parts.append(f"<h4>Referrers of {link} {tags}{absent}</h4><div class=referrers>")
        for child in children[:MAX_REFERRERS]:
            parts.append(_manifest(name, child, by_digest.get(child.digest, []), manifests))
        parts.append(f"{_more(len(children), MAX_REFERRERS, 'referrers')}</div>")
    parts.append(_more(len(groups), MAX_MANIFESTS, "subjects with referrers"))
    parts.append("</div>")
    return parts


def _manifest(name: str, manifest: "Manifest", tags: Sequence[str], manifests: Dict[str, "Manifest"]) -> str:
    parsed = manifest.parsed
    try:
        document: Any = json.loads(manifest.data)
    except ValueError:  # stored only once validated, so never; but a page must not fail
        document = None
    if not isinstance(document, dict):
        document = {}

    chips = _chips(tags) if tags else "<span class='muted small'>untagged</span>"
    kind = escape(manifest.media_type)
    summary = (
        f"{chips} <code>{escape(manifest.digest)}</code> <span class=small>{kind}</span> · {_size(len(manifest.data))}"
    )
    if parsed.artifact_type is not None and parsed.subject is not None:
        summary += f" · <span class=small>{escape(parsed.artifact_type)}</span>"
    if parsed.media_type in IMAGE_MANIFEST_TYPES:
        descriptors = [d for d in [document.get("config"), *_list(document.get("layers"))] if isinstance(d, dict)]
        total = sum(d["size"] for d in descriptors if isinstance(d.get("size"), int))
        summary += f" · image {_size(total)}, {_count(len(_list(document.get('layers'))), 'layer')}"

    body: List[str] = []
    facts: List[Tuple[str, str]] = []
    if parsed.artifact_type is not None and ("artifactType" in document or parsed.subject is not None):
        facts.append(("artifactType", escape(parsed.artifact_type)))
    if parsed.subject is not None:
        facts.append(("subject", _digest(parsed.subject, name if parsed.subject in manifests else None)))
    if facts:
        body.append("<dl class=kv>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>")

    if parsed.media_type in IMAGE_MANIFEST_TYPES:
        config = document.get("config")
        layers = _list(document.get("layers"))
        roles = ["config"] + [f"layer {i + 1}" for i in range(len(layers))]
        body.append(_descriptor_table([config, *layers], name, roles=roles))
    elif parsed.media_type in INDEX_TYPES:
        entries = _list(document.get("manifests"))
        body.append(_descriptor_table(entries, name, index=True))
    elif parsed.media_type == OCI_ARTIFACT_MANIFEST:
        blobs = _list(document.get("blobs"))
        body.append(_descriptor_table(blobs, name, roles=[f"blob {i + 1}" for i in range(len(blobs))]))

    if parsed.annotations:
        body.append("<h4>annotations</h4>" + _annotations(parsed.annotations))

    anchor = _anchor("m", f"{name}@{manifest.digest}")
    pretty = escape(_pretty(manifest.data))
    body.append(f'<details id="{anchor}-json"><summary class=small>JSON</summary><pre>{pretty}</pre></details>')
    inner = "".join(body)
    return f'<details class=manifest id="{anchor}"><summary>{summary}</summary><div class=inner>{inner}</div></details>'


def _descriptor_table(descriptors: Sequence[Any], name: str, *, roles: Sequence[str] = (), index: bool = False) -> str:
    """Descriptors as rows: digest (linked for an index's manifests), media type, size, and what else they carry."""
    shown = [d for d in descriptors[:MAX_DESCRIPTORS] if isinstance(d, dict)]
    if not shown:
        return "<p class='muted small'>none</p>"
    annotated = any(isinstance(d.get("annotations"), dict) and d["annotations"] for d in shown)
    head = "<tr>" + ("<th></th>" if roles else "") + "<th>digest</th><th>media type</th><th class=n>size</th>"
    head += ("<th>platform</th>" if index else "") + ("<th>annotations</th>" if annotated else "") + "</tr>"
    rows = []
    for i, descriptor in enumerate(shown):
        size = descriptor.get("size")
        foreign = " <span class='muted small'>(foreign: urls)</span>" if descriptor.get("urls") else ""
        row = f"<td class='muted small'>{escape(roles[i] if i < len(roles) else '')}</td>" if roles else ""
        row += f"<td>{_digest(str(descriptor.get('digest', '')), name if index else None)}{foreign}</td>"
        row += f"<td class=small>{escape(str(descriptor.get('mediaType', '')))}</td>"
        row += f"<td class=n>{_size(size) if isinstance(size, int) else escape(repr(size))}</td>"
        if index:
            row += f"<td class=small>{escape(_platform(descriptor.get('platform')))}</td>"
        if annotated:
            annotations = descriptor.get("annotations")
            row += f"<td>{_annotations_inline(annotations if isinstance(annotations, dict) else {})}</td>"
        rows.append(f"<tr>{row}</tr>")
    return f"<table>{head}{''.join(rows)}</table>{_more(len(descriptors), MAX_DESCRIPTORS, 'descriptors')}"


def _uploads_section(uploads: List[_Upload]) -> List[str]:
    parts = [f"<section id=uploads><h2>Uploads in progress ({len(uploads)})</h2>"]
    if not uploads:
        parts.append("<p class=muted>None.</p></section>")
        return parts
    rows = "".join(
        f"<tr><td><code>{escape(u.id)}</code></td><td>{escape(u.name)}</td><td class=n>{_size(u.size)}</td></tr>"
        for u in uploads[:MAX_UPLOADS]
    )
    parts.append(
        f"<table><tr><th>id</th><th>repository</th><th class=n>bytes so far</th></tr>{rows}</table>"
        f"{_more(len(uploads), MAX_UPLOADS, 'uploads')}</section>"
    )
    return parts


def _requests_section(records: List["RequestRecord"], now: float) -> List[str]:
    latest = records[-MAX_REQUESTS:][::-1]
    shown = f"the latest {len(latest)} of {len(records)}, newest first" if len(records) > len(latest) else ""
    parts = [f"<section id=requests><h2>Requests ({len(records)}) <span class='muted small'>{shown}</span></h2>"]
    if not records:
        parts.append("<p class=muted>None yet.</p></section>")
        return parts
    rows = []
    for record in latest:
        path = record.path + (f"?{record.query}" if record.query else "")
        status = record.status
        status_cell = f"<span class=s{status // 100}>{status}</span>" if status else "<span class=muted>…</span>"
        duration = f"{record.duration * 1000:.1f} ms" if record.duration is not None else "…"
        fault = f"#{escape(record.fault)}" if record.fault else ""
        rows.append(
            f"<tr><td class='n muted'>{_age(now - record.started)}</td><td><code>{escape(record.method)}</code></td>"
            f"<td class=path><code title='{escape(path)}'>{escape(_cut(path))}</code></td>"
            f"<td class=nowrap>{escape(record.route or 'no route')}</td><td class=n>{status_cell}</td>"
            f"<td class=err>{escape(record.error or '')}</td><td>{fault}</td>"
            f"<td class=n>{_bytes(record.bytes_received)}</td><td class=n>{_bytes(record.bytes_sent)}</td>"
            f"<td class=n>{duration}</td></tr>"
        )
    parts.append(
        "<table><tr><th class=n>when</th><th>method</th><th>path</th><th>route</th><th class=n>status</th>"
        "<th>error</th><th>fault</th><th class=n>received</th><th class=n>sent</th><th class=n>duration</th></tr>"
        + "".join(rows)
        + "</table></section>"
    )
    return parts


def _faults_section(faults: List[Tuple[Dict[str, Any], bool]]) -> List[str]:
    active = sum(1 for _, is_active in faults if is_active)
    parts = [f"<section id=faults><h2>Faults ({active} active of {len(faults)})</h2>"]
    if not faults:
        parts.append("<p class=muted>None injected.</p></section>")
        return parts
    rows = []
    for document, is_active in faults[:MAX_FAULTS]:
        options = " ".join(
            f"<code>{escape(key)}={escape(_option(value))}</code>"
            for key, value in document.items()
            if key not in ("id", "route", "hits", "seen") and not _default_option(document, key)
        )
        state = "active" if is_active else "spent"
        rows.append(
            f"<tr class={state}><td>#{escape(str(document.get('id')))}</td>"
            f"<td>{escape(str(document.get('route')))}</td><td>{options}</td>"
            f"<td class=n>{document.get('hits', 0)}</td><td class=n>{document.get('seen', 0)}</td><td>{state}</td></tr>"
        )
    parts.append(
        "<table><tr><th>id</th><th>route</th><th>options</th><th class=n>hits</th><th class=n>seen</th>"
        f"<th>state</th></tr>{''.join(rows)}</table>{_more(len(faults), MAX_FAULTS, 'faults')}</section>"
    )
    return parts


# pieces


def _digest(digest: str, repository: Optional[str] = None) -> str:
    """A digest in full; with ``repository``, a link to that manifest on the page."""
    if repository is None:
        return f"<code>{escape(digest)}</code>"
    return f'<a class=mono href="#{_anchor("m", f"{repository}@{digest}")}">{escape(digest)}</a>'


def _chips(tags: Sequence[str]) -> str:
    chips = "".join(f"<span class=chip>{escape(tag)}</span>" for tag in tags[:MAX_TAGS])
    return chips + (f"<span class='muted small'>+{len(tags) - MAX_TAGS} tags</span>" if len(tags) > MAX_TAGS else "")


def _annotations(annotations: Dict[str, Any]) -> str:
    items = sorted(annotations.items())
    rows = "".join(f"<dt>{escape(str(k))}</dt><dd>{escape(_cut(str(v)))}</dd>" for k, v in items[:MAX_ANNOTATIONS])
    return f"<dl class=kv>{rows}</dl>{_more(len(items), MAX_ANNOTATIONS, 'annotations')}"


def _annotations_inline(annotations: Dict[str, Any]) -> str:
    items = sorted(annotations.items())
    shown = "<br>".join(
        f"<span class='small mono'>{escape(str(k))}=</span>{escape(_cut(str(v)))}" for k, v in items[:5]
    )
    return shown + (f" <span class='muted small'>(+{len(items) - 5})</span>" if len(items) > 5 else "")


def _platform(value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    parts = [str(value.get(key)) for key in ("os", "architecture", "variant") if value.get(key)]
    return "/".join(parts)


def _pretty(data: bytes) -> str:
    try:
        text = json.dumps(json.loads(data), indent=2, ensure_ascii=False)
    except ValueError:
        text = data.decode("utf-8", "replace")
    if len(text) > MAX_JSON_CHARS:
        text = text[:MAX_JSON_CHARS] + f"\n… {len(text) - MAX_JSON_CHARS} more characters"
    return text


def _default_option(document: Dict[str, Any], key: str) -> bool:
    """Options left as they were that say nothing: ``after=0``, and ``seed`` without a probability."""
    return (key == "after" and document[key] == 0) or (key == "seed" and "probability" not in document)


def _option(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return "none" if value is None else str(value)


def _list(value: Any) -> List[Any]:
    return value if isinstance(value, list) else []


def _anchor(kind: str, key: str) -> str:
    return escape(f"{kind}-{key}")


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def _more(total: int, shown: int, what: str) -> str:
    return f"<p class='muted small'>… {total - shown} more {what} not shown</p>" if total > shown else ""


def _count(n: int, singular: str, plural: Optional[str] = None) -> str:
    return f"{n:,} {singular if n == 1 else plural or singular + 's'}"


def _size(n: int) -> str:
    """Exact bytes, and a rounded unit past 1 KiB: ``1,536 B (1.5 KiB)``."""
    if n < 1024:
        return f"{n:,} B"
    value, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{n:,} B <span class=muted>({value:.1f} {unit})</span>"


def _bytes(n: int) -> str:
    return _size(n) if n else "<span class=muted>0</span>"


def _age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"
