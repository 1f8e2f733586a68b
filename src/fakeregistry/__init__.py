"""fakeregistry: an in-memory fake of a container registry, for testing registry clients.

The names below are imported on first use, so that the pytest plugin (loaded
by every pytest run once fakeregistry is installed) costs nothing until a
fixture asks for a registry.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import BlobUnknown, InternalError, ManifestUnknown, NameUnknown, RegistryError, UploadUnknown
    from .images import Image
    from .journal import Journal, RequestRecord
    from .loading import Loaded, LoadError
    from .registry import FakeRegistry
    from .server import RegistryServer, serve

_EXPORTS = {
    "BlobUnknown": "errors",
    "InternalError": "errors",
    "ManifestUnknown": "errors",
    "NameUnknown": "errors",
    "RegistryError": "errors",
    "UploadUnknown": "errors",
    "Image": "images",
    "Journal": "journal",
    "RequestRecord": "journal",
    "LoadError": "loading",
    "Loaded": "loading",
    "FakeRegistry": "registry",
    "RegistryServer": "server",
    "serve": "server",
}
__all__ = [
    "BlobUnknown",
    "FakeRegistry",
    "Image",
    "InternalError",
    "Journal",
    "LoadError",
    "Loaded",
    "ManifestUnknown",
    "NameUnknown",
    "RegistryError",
    "RegistryServer",
    "RequestRecord",
    "UploadUnknown",
    "serve",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fakeregistry' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
