"""Resolve a suite's model reference to a local GGUF file.

Three kinds of reference:
- `path:`    a file, relative to the suite file's folder or absolute;
- `package:` `PACKAGE/FILE`, a file shipped inside an installed Python package (found
             without importing the package: importing may need its own dependencies);
- `hf:`      `ORG/REPO/PATH/IN/REPO.gguf`, a Hugging Face hub file, downloaded once with
             huggingface_hub and then read from its cache.

Offline, a hub file that is not cached fails AT ONCE (a short reachability probe, no
long retries) with a message that says how to get it. With `--synthetic`, a hub model
that is not cached is replaced by its `standin:` (a shape-exact synthetic GGUF from
benchkit.models.synth, benchkit.models.standins), and the result says so.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchkit.core.errors import BenchkitError
from benchkit.models.hubcache import hub_cache_dir
from benchkit.run.suite import ModelSpec

HF_HOST = "huggingface.co"
PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class ResolvedModel:
    """A model reference and the local file it stands for."""

    spec: ModelSpec
    path: Path
    source: dict[str, Any]            # recorded in the result: {"hf": ...} / {"path": ...}
    standin_for: str | None = None    # the hub ref, when a synthetic stand-in replaces it


def resolve(spec: ModelSpec, *, synthetic: bool = False) -> ResolvedModel:
    """The local file for `spec`, or one BenchkitError naming the suite file and field."""
    if spec.kind == "path":
        return ResolvedModel(spec, _local_path(spec), {"path": spec.ref})
    if spec.kind == "package":
        return ResolvedModel(spec, package_file(spec.ref, spec), {"package": spec.ref})
    return _resolve_hf(spec, synthetic)


def package_file(ref: str, spec: ModelSpec | None = None) -> Path:
    """`PACKAGE/FILE` -> the file inside the installed package's folder."""
    package, _, rel = ref.partition("/")
    where = _where(spec)
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        found = None
    if found is None or not found.submodule_search_locations:
        raise BenchkitError(f"Python package {package!r} is not installed "
                            f"(pip install {package.replace('_', '-')})", **where)
    for folder in found.submodule_search_locations:
        path = Path(folder) / rel
        if path.is_file():
            return path
    raise BenchkitError(f"package {package!r} has no file {rel!r}", **where)


def split_hf(ref: str) -> tuple[str, str]:
    """`ORG/REPO/PATH/IN/REPO.gguf` -> (`ORG/REPO`, `PATH/IN/REPO.gguf`)."""
    org, repo, filename = ref.split("/", 2)
    return f"{org}/{repo}", filename


def cached_hf(ref: str, revision: str | None = None) -> Path | None:
    """The hub file from the local cache only, or None: never touches the network."""
    from huggingface_hub import hf_hub_download

    repo_id, filename = split_hf(ref)
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, local_files_only=True,
                                    cache_dir=hub_cache_dir()))
    except Exception:  # noqa: BLE001 - any miss (not cached, bad revision) means "not local"
        return None


def download_hf(ref: str, revision: str | None = None, *, spec: ModelSpec | None = None) -> Path:
    """Download a hub file into the huggingface_hub cache (or reuse it) and return its path.

    Fails at once when the hub cannot be reached, rather than after long retries.
    """
    local = cached_hf(ref, revision)
    if local is not None:
        return local
    where = _where(spec)
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or not hub_reachable():
        raise BenchkitError(_offline_message(ref, spec), **where)
    from huggingface_hub import hf_hub_download

    repo_id, filename = split_hf(ref)
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision,
                                    cache_dir=hub_cache_dir()))
    except Exception as exc:  # noqa: BLE001 - hub errors come in many types; say which
        raise BenchkitError(f"could not download hf:{ref} ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})", **where) from None


def hub_reachable(host: str = HF_HOST, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Can we open a TCP connection to the hub within `timeout` seconds (DNS included)?

    The probe runs in a thread so that a hanging DNS lookup cannot stall the run.
    """
    ok: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            ok.append(True)
        except OSError:
            ok.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(ok and ok[0])


def _resolve_hf(spec: ModelSpec, synthetic: bool) -> ResolvedModel:
    source = {"hf": spec.ref, **({"revision": spec.revision} if spec.revision else {})}
    if spec.ref.count("/") == 1:            # ORG/REPO: an MLX model folder on the hub
        return _resolve_mlx_repo(spec, synthetic, source)
    local = cached_hf(spec.ref, spec.revision)
    if local is not None:
        return ResolvedModel(spec, local, source)
    if synthetic:
        if not spec.standin:
            raise BenchkitError(
                "--synthetic needs a `standin: {preset: NAME, quant: TYPE}` for this hub model",
                file=spec.suite_file, field=spec.field, line=spec.line)
        from benchkit.models.standins import standin_path

        standin_field = spec.field.rsplit(".", 1)[0] + ".standin"
        path = standin_path(spec.standin, suite_file=spec.suite_file, field=standin_field)
        return ResolvedModel(spec, Path(path), {"standin": dict(spec.standin), **source},
                             standin_for=f"hf:{spec.ref}")
    return ResolvedModel(spec, download_hf(spec.ref, spec.revision, spec=spec), source)


def _resolve_mlx_repo(spec: ModelSpec, synthetic: bool, source: dict[str, Any]) -> ResolvedModel:
    """`hf: ORG/REPO`, an MLX model repository: the hub cache's snapshot; with --synthetic
    and no snapshot, the `standin:` (format: mlx); else downloaded (offline: one line)."""
    from benchkit.models.mlx import hub_folder, standin_for_suite

    local = hub_folder(spec.ref, spec.revision)
    if local is not None:
        return ResolvedModel(spec, local, source)
    if synthetic:
        field = spec.field.rsplit(".", 1)[0] + ".standin"
        path = standin_for_suite(spec.standin, file=spec.suite_file, field=field)
        return ResolvedModel(spec, path, {"standin": dict(spec.standin or {}), **source},
                             standin_for=f"hf:{spec.ref}")
    where = _where(spec)
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or not hub_reachable():
        raise BenchkitError(
            f"hf:{spec.ref} is not in the local Hugging Face cache and the hub cannot be "
            f"reached; get it with `huggingface-cli download {spec.ref}` when online, or a "
            f"local copy with `path:`, or `benchkit run SUITE --synthetic` with a `standin: "
            f"{{preset: NAME, format: mlx, bits: 4}}`", **where)
    from huggingface_hub import snapshot_download

    try:
        return ResolvedModel(spec, Path(snapshot_download(spec.ref, revision=spec.revision)),
                             source)
    except Exception as exc:  # noqa: BLE001 - hub errors come in many types; say which
        raise BenchkitError(f"could not download hf:{spec.ref} ({type(exc).__name__})",
                            **where) from None


def _local_path(spec: ModelSpec) -> Path:
    path = Path(os.path.expanduser(spec.ref))
    if not path.is_absolute():
        path = Path(spec.suite_dir) / path
    if not path.exists():
        raise BenchkitError(f"model file not found: {spec.ref}", file=spec.suite_file,
                            field=spec.field, line=spec.line)
    if not path.is_file() and not path.is_dir():
        raise BenchkitError(f"model path is not a file or an MLX model folder: {spec.ref}",
                            file=spec.suite_file, field=spec.field, line=spec.line)
    return path


def _offline_message(ref: str, spec: ModelSpec | None) -> str:
    how = [f"`benchkit models pull hf:{ref}` when online", "a local copy with `path:`"]
    if spec is None or spec.standin:
        how.append("`benchkit run SUITE --synthetic` to measure its synthetic stand-in")
    else:
        how.append("a `standin:` and `--synthetic`")
    return (f"hf:{ref} is not in the local Hugging Face cache and the hub cannot be reached; "
            f"get it with {', or '.join(how)}")


def _where(spec: ModelSpec | None) -> dict[str, Any]:
    if spec is None:
        return {}
    return {"file": spec.suite_file, "field": spec.field, "line": spec.line}
