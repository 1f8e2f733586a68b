"""The page at ``/``: what the registry holds, what it was asked, and the active faults."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .registry import FakeRegistry


def render_page(registry: "FakeRegistry") -> str:
    items = "".join(f"<li>{escape(name)}</li>" for name in registry.repositories())
    return f"<!doctype html><title>fakeregistry</title><h1>fakeregistry</h1><ul>{items}</ul>"
