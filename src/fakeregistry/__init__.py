"""fakeregistry: an in-memory fake of a container registry, for testing registry clients."""

from .errors import BlobUnknown, ManifestUnknown, NameUnknown, RegistryError, UploadUnknown
from .images import Image
from .registry import FakeRegistry

__all__ = [
    "BlobUnknown",
    "FakeRegistry",
    "Image",
    "ManifestUnknown",
    "NameUnknown",
    "RegistryError",
    "UploadUnknown",
]
__version__ = "0.1.0"
