"""Where huggingface_hub's cache is, read when asked rather than once at import."""

from __future__ import annotations

import os


def hub_cache_dir() -> str | None:
    """HF_HUB_CACHE as it is now, or None for the hub's own default. huggingface_hub reads
    the variable once, when it is first imported; reading it at each call keeps a cache set
    later (by a caller, a test, a notebook) the one that is used."""
    return os.environ.get("HF_HUB_CACHE") or None
