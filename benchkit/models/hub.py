"""`benchkit models pull`: download a hub GGUF once, with progress, and verify it.

The download itself is huggingface_hub's `hf_hub_download`: its progress bar, its cache
(the same one `hf:` model references in suites are read from), and its resume of an
interrupted download (the partial `.incomplete` file is continued, not restarted). What
this module adds is the check that the bytes on disk are the bytes the hub has: the size
and, for LFS files (every GGUF on the hub), the SHA-256 the hub reports, so that a
truncated or corrupted file is caught here and not as a strange speed later.

Offline (HF_HUB_OFFLINE=1, or the hub unreachable within a few seconds) a file that is
not cached fails at once, saying how else to get a model.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from benchkit.core.errors import BenchkitError
from benchkit.models.hubcache import hub_cache_dir

_REF = re.compile(r"^hf:(?P<repo>[^/\s@]+/[^/\s@]+)/(?P<file>[^@\s]+?)(?:@(?P<rev>[^@\s]+))?$")


@dataclass(frozen=True)
class HubRef:
    """`hf:ORG/REPO/PATH/IN/REPO.gguf[@REVISION]`."""

    repo_id: str
    filename: str
    revision: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.repo_id}/{self.filename}"

    def __str__(self) -> str:
        return f"hf:{self.ref}" + (f"@{self.revision}" if self.revision else "")


@dataclass(frozen=True)
class Pulled:
    """A pulled file and what was checked about it."""

    path: Path
    ref: HubRef
    size_bytes: int
    sha256: str | None        # None when the hub gave none to check against
    verified: str             # "size and sha256" | "size" | "not verified (offline)"
    downloaded: bool          # False when the file was already in the cache


def parse_ref(ref: str) -> HubRef:
    """Parse `hf:ORG/REPO/FILE[@REVISION]`; anything else is one clear error."""
    m = _REF.match(ref.strip())
    if not m:
        raise BenchkitError(f"not a hub reference: {ref!r} (expected hf:ORG/REPO/FILE.gguf, "
                            "optionally @REVISION)", field="REF")
    return HubRef(m["repo"], m["file"], m["rev"])


def offline() -> bool:
    """Whether huggingface_hub is told to stay offline."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def pull(ref: str, *, progress: bool = True) -> Pulled:
    """Download `ref` into the Hugging Face cache (or find it there) and verify it."""
    from benchkit.models.ref import cached_hf, hub_reachable

    hub = parse_ref(ref)
    local = cached_hf(hub.ref, hub.revision)
    if offline() or not hub_reachable():
        if local is None:
            why = "HF_HUB_OFFLINE is set" if offline() else "the hub cannot be reached"
            raise BenchkitError(
                f"{hub} is not in the local Hugging Face cache and {why}; pull it when "
                "online, copy the file and use it with `path:`, or measure a shape-exact "
                "stand-in with `benchkit models synth PRESET --quant TYPE`", field="REF")
        return Pulled(local, hub, local.stat().st_size, None, "not verified (offline)", False)
    size, sha256 = remote_checksum(hub)
    path = local if local is not None else _download(hub, progress)
    verify_file(path, size, sha256, ref=str(hub))
    return Pulled(path, hub, path.stat().st_size, sha256,
                  "size and sha256" if sha256 else "size", local is None)


def remote_checksum(hub: HubRef) -> tuple[int, str | None]:
    """The size and (for LFS files) the SHA-256 the hub reports for the file."""
    from huggingface_hub import HfApi

    try:
        infos = HfApi().get_paths_info(hub.repo_id, [hub.filename], revision=hub.revision)
    except Exception as exc:  # noqa: BLE001 - hub errors come in many types; say which
        raise BenchkitError(f"cannot look up {hub}: {_why(exc)}", field="REF") from None
    files = [i for i in infos if getattr(i, "path", None) == hub.filename and hasattr(i, "size")]
    if not files:
        raise BenchkitError(f"{hub}: no such file in {hub.repo_id}", field="REF")
    info = files[0]
    lfs = getattr(info, "lfs", None)
    return int(info.size), (getattr(lfs, "sha256", None) if lfs else None)


def _download(hub: HubRef, progress: bool) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    if not progress:
        disable_progress_bars()
    try:
        return Path(hf_hub_download(hub.repo_id, hub.filename, revision=hub.revision,
                                    cache_dir=hub_cache_dir()))
    except KeyboardInterrupt:
        raise BenchkitError(f"interrupted; `benchkit models pull {hub}` resumes the download",
                            exit_code=130) from None
    except Exception as exc:  # noqa: BLE001
        raise BenchkitError(f"could not download {hub}: {_why(exc)}", field="REF") from None
    finally:
        if not progress:
            enable_progress_bars()


def verify_file(path: Path, size: int | None, sha256: str | None, *, ref: str) -> None:
    """Refuse a file whose size or SHA-256 differs from the hub's, and remove it.

    Removing it (the cache blob behind the snapshot link) means the next pull downloads
    it again instead of trusting the bad copy.
    """
    from benchkit.models.gguf import sha256_file

    have = path.stat().st_size
    problem = None
    if size is not None and have != size:
        problem = f"size {have} bytes, the hub says {size}"
    elif sha256:
        digest = sha256_file(path)
        if digest != sha256.lower():
            problem = f"sha256 {digest}, the hub says {sha256}"
    if problem:
        _remove_cached(path)
        raise BenchkitError(f"{ref}: downloaded file is corrupt ({problem}); removed it, "
                            "pull again", file=str(path))


def _remove_cached(path: Path) -> None:
    real = path.resolve()
    for p in {path, real}:
        try:
            p.unlink()
        except OSError:
            pass


def _why(exc: BaseException) -> str:
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first}"[:300]


def cached_hub_files() -> list[dict[str, object]]:
    """GGUF files in the Hugging Face cache, as `hf:` references (never touches the network)."""
    from huggingface_hub import scan_cache_dir

    try:
        cache = scan_cache_dir()
    except Exception:  # noqa: BLE001 - no cache folder yet (CacheNotFound) or unreadable
        return []
    out: list[dict[str, object]] = []
    for repo in sorted(cache.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        seen: set[str] = set()
        for revision in repo.revisions:
            for f in revision.files:
                if f.file_name.endswith(".gguf") and f.file_name not in seen:
                    seen.add(f.file_name)
                    rel = f.file_path.relative_to(revision.snapshot_path).as_posix()
                    out.append({"ref": f"hf:{repo.repo_id}/{rel}", "file": str(f.file_path),
                                "size_bytes": f.size_on_disk})
    return out
