"""Run skopeo so that nothing on the machine changes what it does, and nothing it does outlives the test.

HOME, the XDG directories, the signature policy, registries.d, certs.d, the
temporary directory and the auth file all live under one directory (normally
under tmp_path), and skopeo gets a fresh environment: no proxies,
DOCKER_CONFIG, REGISTRY_AUTH_FILE or credentials of the caller.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

SKOPEO_TIMEOUT = 60  # seconds; each call takes well under one, so hitting this means a hang


@dataclass
class SkopeoSandbox:
    path: str  # the skopeo binary
    root: Path  # everything skopeo reads or writes lives under here
    env: Dict[str, str]

    @property
    def authfile(self) -> Path:
        """An empty auth file (``{}``): pass it as ``--authfile`` so no stored credentials apply."""
        return self.root / "auth.json"

    @property
    def certs(self) -> Path:
        """An empty certs.d: no client certificates or CAs from /etc."""
        return self.root / "certs.d"

    def command(self, *args: str) -> List[str]:
        return [
            self.path,
            f"--policy={self.root / 'policy.json'}",
            f"--registries.d={self.root / 'registries.d'}",
            f"--tmpdir={self.root / 'tmp'}",
            *args,
        ]

    def run(self, *args: str, timeout: float = SKOPEO_TIMEOUT) -> "subprocess.CompletedProcess[bytes]":
        """Run skopeo in the sandbox; the caller checks the exit status."""
        return subprocess.run(self.command(*args), env=self.env, capture_output=True, timeout=timeout)


def make_sandbox(root: Path, path: str) -> SkopeoSandbox:
    """Create the sandbox's files under ``root`` for the skopeo binary at ``path``."""
    home = root / "home"
    # Empty registries.d and certs.d: no signature storage or client certificates from /etc.
    for directory in ("registries.d", "certs.d", "tmp", "run", "home/.config/containers"):
        (root / directory).mkdir(parents=True)
    # A per-user registries.conf makes containers/image skip /etc/containers/registries.conf{,.d}.
    (home / ".config" / "containers" / "registries.conf").write_text("unqualified-search-registries = []\n")
    (root / "policy.json").write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    (root / "auth.json").write_text("{}")
    env = {
        # A fresh environment: no proxies, DOCKER_CONFIG, REGISTRY_AUTH_FILE... from the caller.
        "PATH": os.pathsep.join([os.path.dirname(path), "/usr/bin", "/bin"]),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_RUNTIME_DIR": str(root / "run"),
        "TMPDIR": str(root / "tmp"),
        "REGISTRY_AUTH_FILE": str(root / "auth.json"),
    }
    if os.geteuid() == 0:
        # As root, containers/image keeps its blob-info cache (which drives layer reuse and
        # mounts) in /var/lib/containers/cache, shared by every run; as a rootless user it
        # keeps it under XDG_DATA_HOME. This variable is how podman tells it it is rootless.
        env["_CONTAINERS_ROOTLESS_UID"] = "1000"
    return SkopeoSandbox(path, root, env)
