"""llama.cpp's own tools (llama-bench, llama-server, llama-perplexity), built once per machine
from the very llama.cpp source the installed llama-cpp-python was built from.

Comparing benchkit's in-process figures with llama-bench's, or with llama-server's, only
means something when all of them run the same llama.cpp with the same backend. The
llama-cpp-python source distribution vendors llama.cpp (`vendor/llama.cpp`, with its git
metadata, so the commit is known); this module downloads that distribution with pip (or
takes `--source DIR`), configures it with the backend the installed wheel was built with
(CUDA, Metal, Vulkan, HIP, CPU: read from the wheel's library names) and builds only the
three tools, into

    ${BENCHKIT_CACHE:-~/.cache/benchkit}/tools/<llama.cpp commit>-<backend>[-<args hash>]/bin/

with a `build.json` manifest beside `bin/` that says what was built from what.
Other engines find the tools through `find_tool(name, explicit)`: an explicit path from
the suite, then `BENCHKIT_<NAME>` (e.g. BENCHKIT_LLAMA_SERVER), then PATH, then this cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator

from benchkit.core.errors import BenchkitError

TOOLS = ("llama-bench", "llama-server", "llama-perplexity")
PACKAGE = "llama-cpp-python"
MANIFEST = "build.json"

# The options every build gets: the three tools, nothing else, and nothing that needs the
# network at build time (the server's web UI would be fetched from a bucket).
BASE_CMAKE_ARGS = (
    "-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_TOOLS=ON", "-DLLAMA_BUILD_APP=OFF", "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
)

# ggml backend library stem in the wheel's lib folder -> (backend name, CMake switches).
BACKENDS = {
    "ggml-cuda": ("cuda", ("-DGGML_CUDA=ON",)),
    "ggml-metal": ("metal", ("-DGGML_METAL=ON", "-DGGML_METAL_EMBED_LIBRARY=ON")),
    "ggml-hip": ("hip", ("-DGGML_HIP=ON",)),
    "ggml-vulkan": ("vulkan", ("-DGGML_VULKAN=ON",)),
    "ggml-sycl": ("sycl", ("-DGGML_SYCL=ON",)),
    "ggml-blas": ("blas", ("-DGGML_BLAS=ON",)),
}
# Backends that are the accelerator when present (BLAS only helps the CPU).
_GPU_BACKENDS = ("cuda", "metal", "hip", "vulkan", "sycl")

Log = Callable[[str], None]


def cache_root() -> Path:
    """BENCHKIT_CACHE, or ~/.cache/benchkit."""
    env = os.environ.get("BENCHKIT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "benchkit"


def tools_root() -> Path:
    return cache_root() / "tools"


def _stderr(line: str) -> None:
    """A line of the build's output (cmake, the compiler: colours and all), printable."""
    from benchkit.core.textsafe import terminal

    print(terminal(line), file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the wheel

@dataclass(frozen=True)
class WheelBuild:
    """What the installed llama-cpp-python was built with, as far as its files tell."""

    version: str
    backend: str                       # cpu | cuda | metal | hip | vulkan | sycl (+blas)
    cmake_args: tuple[str, ...]        # the backend switches that reproduce it
    lib_dir: str | None
    libraries: tuple[str, ...] = ()


def wheel_build() -> WheelBuild:
    """The installed llama-cpp-python's version and backend, from its library names.

    llama-cpp-python ships each ggml backend as its own shared library (libggml-cuda.so,
    libggml-metal.dylib, ggml-cuda.dll) in `llama_cpp/lib`; their names say which backends
    it was compiled with, without loading them.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version(PACKAGE)
    except PackageNotFoundError:
        raise BenchkitError(f"{PACKAGE} is not installed: the tools are built from the "
                            f"llama.cpp source it vendors (pip install {PACKAGE})") from None
    lib_dir = _wheel_lib_dir()
    names = tuple(sorted(p.name for p in lib_dir.iterdir())) if lib_dir else ()
    found = [stem for stem in BACKENDS if any(_lib_stem(n) == stem for n in names)]
    gpu = [BACKENDS[s][0] for s in found if BACKENDS[s][0] in _GPU_BACKENDS]
    if not gpu and _supports_gpu_offload(names):
        raise BenchkitError(f"the installed {PACKAGE} offloads to a GPU but its libraries "
                            f"({', '.join(names) or 'none found'}) do not say which backend; "
                            f"pass the switch yourself, e.g. --cmake-arg=-DGGML_CUDA=ON")
    backend = "-".join(gpu + (["blas"] if "ggml-blas" in found else [])) or "cpu"
    args = tuple(a for s in found for a in BACKENDS[s][1])
    return WheelBuild(ver, backend, args, str(lib_dir) if lib_dir else None, names)


def _wheel_lib_dir() -> Path | None:
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    lib = Path(list(spec.submodule_search_locations)[0]) / "lib"
    return lib if lib.is_dir() else None


def _lib_stem(filename: str) -> str:
    """libggml-cuda.so.0.9 / ggml-cuda.dll / libggml-metal.dylib -> ggml-cuda / ggml-metal."""
    stem = filename.split(".")[0]
    return stem[3:] if stem.startswith("lib") else stem


def _supports_gpu_offload(names: tuple[str, ...]) -> bool:
    """llama_supports_gpu_offload(), asked only when no backend library is separate (a
    static build). Loads llama.cpp, so only in that unusual case."""
    if any(_lib_stem(n).startswith("ggml-") for n in names):
        return False          # backends are separate libraries: none of them is a GPU one
    try:
        import llama_cpp

        return bool(llama_cpp.llama_supports_gpu_offload())
    except Exception:  # noqa: BLE001 - cannot load it: the build will say what is wrong
        return False


# --------------------------------------------------------------------------- the source

def source_dir(version: str, explicit: str | os.PathLike[str] | None = None,
               log: Log = _stderr) -> Path:
    """The llama.cpp source folder to build: `explicit` (an unpacked llama-cpp-python sdist
    or a llama.cpp checkout), else the cached sdist of `version`, downloaded with pip once."""
    if explicit is not None:
        return _llama_cpp_root(Path(explicit))
    target = cache_root() / "src" / f"llama_cpp_python-{version}"
    if not (target / "vendor" / "llama.cpp" / "CMakeLists.txt").is_file():
        _fetch_sdist(version, target.parent, log)
    return _llama_cpp_root(target)


def _llama_cpp_root(path: Path) -> Path:
    for candidate in (path / "vendor" / "llama.cpp", path):
        if (candidate / "CMakeLists.txt").is_file() and (candidate / "tools").is_dir():
            return candidate
    raise BenchkitError("not llama.cpp source (no CMakeLists.txt and tools/ here or in "
                        "vendor/llama.cpp)", file=str(path), field="--source")


def _fetch_sdist(version: str, dest: Path, log: Log) -> None:
    """pip download the sdist (from the configured index or cache) and unpack it."""
    dest.mkdir(parents=True, exist_ok=True)
    log(f"benchkit: downloading the {PACKAGE} {version} source distribution with pip")
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                               "--no-binary", ":all:", "-d", tmp, f"{PACKAGE}=={version}"],
                              capture_output=True, text=True)
        sdists = sorted(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if proc.returncode != 0 or not sdists:
            raise BenchkitError(f"pip could not download the {PACKAGE} {version} source "
                                f"distribution: {output_tail(proc.stderr or proc.stdout)} "
                                f"(or give --source DIR)")
        log(f"benchkit: unpacking {sdists[0].name}")
        with tarfile.open(sdists[0]) as tar:
            tar.extractall(dest, filter="data")


def llama_cpp_commit(root: Path) -> str | None:
    """The vendored llama.cpp's git commit, read from its git metadata (no git needed)."""
    git = root / ".git"
    if git.is_file():                    # a submodule: "gitdir: ../../.git/modules/..."
        m = re.match(r"gitdir:\s*(.+)", git.read_text(encoding="utf-8").strip())
        git = (root / m[1]).resolve() if m else git
    head = git / "HEAD"
    if not head.is_file():
        return None
    ref = head.read_text(encoding="utf-8").strip()
    if ref.startswith("ref:"):
        name = ref[4:].strip()
        loose = git / name
        if loose.is_file():
            ref = loose.read_text(encoding="utf-8").strip()
        else:
            packed = git / "packed-refs"
            lines = packed.read_text(encoding="utf-8").splitlines() if packed.is_file() else []
            ref = next((ln.split()[0] for ln in lines if ln.endswith(" " + name)), "")
    return ref if re.fullmatch(r"[0-9a-f]{40}", ref) else None


# --------------------------------------------------------------------------- the build

@dataclass
class BuildResult:
    """Where a build is and what it was built from (also written as build.json)."""

    dir: str
    bin: str
    llama_cpp_commit: str | None
    llama_cpp_python: str
    backend: str
    cmake_args: list[str]
    source: str
    tools: dict[str, str] = field(default_factory=dict)
    built_at: str | None = None
    build_seconds: float | None = None
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_tag(commit: str | None, version: str, backend: str, extra: list[str]) -> str:
    """<commit>-<backend>, with a hash of any extra CMake arguments (they change the build)."""
    tag = f"{commit[:7] if commit else 'v' + version}-{backend}"
    if extra:
        tag += "-" + hashlib.sha256("\0".join(extra).encode()).hexdigest()[:8]
    return tag


def build_tools(*, source: str | os.PathLike[str] | None = None,
                cmake_args: list[str] | None = None, force: bool = False,
                jobs: int | None = None, log: Log = _stderr) -> BuildResult:
    """Build (or find cached) llama-bench, llama-server and llama-perplexity."""
    wheel = wheel_build()
    extra = list(cmake_args or [])
    if not force and source is None:      # cached: no need for the source (or the network)
        done = _cached_build(wheel, [*BASE_CMAKE_ARGS, *wheel.cmake_args, *extra])
        if done is not None:
            log(f"benchkit: llama.cpp tools already built ({done.backend}, llama.cpp "
                f"{(done.llama_cpp_commit or '?')[:7]}): {done.bin}")
            return done
    root = source_dir(wheel.version, source, log)
    commit = llama_cpp_commit(root)
    dest = tools_root() / build_tag(commit, wheel.version, wheel.backend, extra)
    args = [*BASE_CMAKE_ARGS, *wheel.cmake_args, *extra]
    result = BuildResult(dir=str(dest), bin=str(dest / "bin"), llama_cpp_commit=commit,
                         llama_cpp_python=wheel.version, backend=wheel.backend,
                         cmake_args=args, source=str(root))
    have = {t: dest / "bin" / _exe(t) for t in TOOLS}
    with _locked(dest, log):
        if not force and (dest / MANIFEST).is_file() and all(p.is_file() for p in have.values()):
            cached = read_manifest(dest)
            cached.cached = True
            log(f"benchkit: llama.cpp tools already built ({cached.backend}, llama.cpp "
                f"{(cached.llama_cpp_commit or '?')[:7]}): {cached.bin}")
            return cached
        return _build(root, result, jobs or os.cpu_count() or 1, log)


@contextlib.contextmanager
def _locked(dest: Path, log: Log) -> Iterator[None]:
    """One build per folder at a time: a second `engines build` (another shell, the test
    script) waits for the first, then finds its result cached."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:                   # Windows: no advisory locks; builds are rare there
        yield
        return
    with (dest / ".lock").open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"benchkit: another build of {dest.name} is running; waiting for it")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _build(root: Path, result: BuildResult, jobs: int, log: Log) -> BuildResult:
    """Configure and build into result.dir; write its manifest."""
    dest = Path(result.dir)
    log(f"benchkit: building {', '.join(TOOLS)} from llama.cpp "
        f"{(result.llama_cpp_commit or '(unknown commit)')[:7]} ({PACKAGE} "
        f"{result.llama_cpp_python}, backend {result.backend}) in {dest}")
    started = time.monotonic()
    _cmake(root, dest, result.cmake_args, jobs, log)
    have = {t: Path(result.bin) / _exe(t) for t in TOOLS}
    missing = [t for t, p in have.items() if not p.is_file()]
    if missing:
        raise BenchkitError(f"the build finished but {', '.join(missing)} is missing",
                            file=result.bin)
    result.tools = {t: str(p) for t, p in have.items()}
    result.built_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result.build_seconds = round(time.monotonic() - started, 1)
    manifest = {k: v for k, v in result.to_dict().items() if k != "cached"}
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    log(f"benchkit: built in {result.build_seconds:.0f} s: {result.bin}")
    return result


def _exe(name: str) -> str:
    return name + (".exe" if os.name == "nt" else "")


def _cmake(root: Path, dest: Path, args: list[str], jobs: int, log: Log) -> None:
    """Configure and build, the full output in dest/build.log, progress lines on stderr."""
    if shutil.which("cmake") is None:
        raise BenchkitError("cmake is not installed (it and a C++ compiler build the tools)")
    dest.mkdir(parents=True, exist_ok=True)
    logfile = dest / "build.log"
    # Ninja when there is one, for a fresh tree only (a configured tree keeps its generator)
    fresh = not (dest / "CMakeCache.txt").exists()
    generator = ["-G", "Ninja"] if fresh and shutil.which("ninja") else []
    with logfile.open("w", encoding="utf-8") as out:
        log("benchkit: configuring (cmake)")
        _step(["cmake", "-S", str(root), "-B", str(dest), *generator, *args], out, logfile, log,
              progress=False)
        log(f"benchkit: compiling with {jobs} jobs (full log: {logfile})")
        _step(["cmake", "--build", str(dest), "--config", "Release", "-j", str(jobs),
               "--target", *TOOLS], out, logfile, log, progress=True)


_PROGRESS = re.compile(r"^\[\s*(\d+)/(\d+)\]|^\[\s*(\d+)%\]")


def _step(cmd: list[str], out: Any, logfile: Path, log: Log, *, progress: bool) -> None:
    """Run one cmake command, teeing to the log; every tenth of the way is one stderr line."""
    out.write("$ " + " ".join(cmd) + "\n")
    out.flush()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace")
    shown, tail = -1, []
    assert proc.stdout is not None
    for line in proc.stdout:
        out.write(line)
        tail = (tail + [line.rstrip()])[-20:]
        m = _PROGRESS.match(line) if progress else None
        if m:
            pct = int(m[3]) if m[3] else 100 * int(m[1]) // max(int(m[2]), 1)
            if pct // 10 > shown:
                shown = pct // 10
                log(f"benchkit: build {pct}%")
    if proc.wait() != 0:
        errors = [ln for ln in tail if "error" in ln.lower()] or tail[-3:]
        raise BenchkitError(f"{' '.join(cmd[:2])} failed: {' | '.join(errors[-3:])} "
                            f"(full log: {logfile})")


def read_manifest(dest: Path) -> BuildResult:
    """A build's manifest, its paths taken from where it is now (a cache may be moved)."""
    data = json.loads((dest / MANIFEST).read_text(encoding="utf-8"))
    b = BuildResult(**{k: v for k, v in data.items() if k in BuildResult.__dataclass_fields__})
    b.dir, b.bin = str(dest), str(dest / "bin")
    b.tools = {t: str(dest / "bin" / _exe(t)) for t in TOOLS}
    return b


def _cached_build(wheel: WheelBuild, cmake_args: list[str]) -> BuildResult | None:
    """A finished build of this wheel's version and backend with these CMake arguments."""
    for b in cached_builds():
        if (b.llama_cpp_python, b.backend, b.cmake_args) == (wheel.version, wheel.backend,
                                                             cmake_args) and all(
                (Path(b.bin) / _exe(t)).is_file() for t in TOOLS):
            b.cached = True
            return b
    return None


def cached_builds() -> list[BuildResult]:
    """Every build in the cache, newest first."""
    root = tools_root()
    found = []
    for manifest in root.glob(f"*/{MANIFEST}") if root.is_dir() else []:
        try:
            found.append(read_manifest(manifest.parent))
        except (OSError, ValueError, TypeError):
            continue
    return sorted(found, key=lambda b: b.built_at or "", reverse=True)


# --------------------------------------------------------------------------- finding tools

def env_var(name: str) -> str:
    """BENCHKIT_LLAMA_SERVER for llama-server."""
    return "BENCHKIT_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


def find_tool(name: str, explicit: str | None = None) -> Path:
    """The binary of `name`: `explicit` (a suite's `binary`), then $BENCHKIT_<NAME>, then
    PATH, then the build of `benchkit engines build` matching the installed
    llama-cpp-python. One error line saying how to get it when none is found."""
    if explicit:
        return _executable(Path(explicit).expanduser(), name, "binary")
    env = os.environ.get(env_var(name))
    if env:
        return _executable(Path(env).expanduser(), name, env_var(name))
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)
    built = cached_tool(name)
    if built is not None:
        return built
    raise BenchkitError(f"{name} not found (not on PATH, ${env_var(name)} unset, not built): "
                        f"run `benchkit engines build` to build it from the llama.cpp source "
                        f"of the installed {PACKAGE}, or give its path")


def cached_tool(name: str) -> Path | None:
    """The tool from the cache: a build of the installed wheel's version and backend first,
    then, when no wheel is installed, the newest build."""
    builds = cached_builds()
    try:
        wheel: WheelBuild | None = wheel_build()
    except BenchkitError:
        wheel = None
    if wheel is not None:
        builds = [b for b in builds
                  if b.llama_cpp_python == wheel.version and b.backend == wheel.backend]
        # the build made with exactly the wheel's own flags first: one made with extra CMake
        # arguments (e.g. without AVX-512) is another build and computes other figures
        plain = [*BASE_CMAKE_ARGS, *wheel.cmake_args]
        builds.sort(key=lambda b: b.cmake_args != plain)
    for b in builds:
        path = Path(b.bin) / _exe(name)
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def _executable(path: Path, name: str, where: str) -> Path:
    if not path.is_file():
        raise BenchkitError(f"{name} binary not found: {path}", field=where)
    if not os.access(path, os.X_OK):
        raise BenchkitError(f"{name} binary is not executable: {path}", field=where)
    return path


def tool_version(path: str | os.PathLike[str]) -> dict[str, Any]:
    """`TOOL --version` parsed: llama.cpp prints `version: V (build N, commit C)` (older
    builds: `version: N (C)`) and `built with COMPILER for TARGET`. Cached per file and
    modification time."""
    p = Path(path)
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        raise BenchkitError(f"binary not found: {p}") from None
    return dict(_tool_version(str(p), mtime))


@lru_cache(maxsize=32)
def _tool_version(path: str, mtime: int) -> dict[str, Any]:  # noqa: ARG001 - cache key
    try:
        proc = subprocess.run([path, "--version"], capture_output=True, text=True,
                              timeout=60, errors="replace")
    except (OSError, subprocess.SubprocessError) as exc:
        raise BenchkitError(f"cannot run {path} --version: {exc}") from None
    text = proc.stdout + "\n" + proc.stderr
    info: dict[str, Any] = {"path": path, "version": None, "build_number": None,
                            "build_commit": None, "compiler": None, "target": None}
    # "version: 0.5.0-dev (build 1, commit 0c1e570)" (2026), "version: 4567 (0c1e570)" (before)
    m = re.search(r"^version:\s*(\S+)\s*\(build (\d+), commit ([^)\s]+)\)", text, re.M)
    old = re.search(r"^version:\s*(\d+)\s*\(([^)\s]+)\)", text, re.M)
    if m:
        info.update(version=m[1], build_number=int(m[2]), build_commit=m[3])
    elif old:
        info.update(version=old[1], build_number=int(old[1]), build_commit=old[2])
    m = re.search(r"^built with (.+?) for (.+?)\s*$", text, re.M)
    if m:
        info["compiler"], info["target"] = m[1], m[2]
    if info["build_commit"] is None:
        raise BenchkitError(f"{path} --version printed no llama.cpp version "
                            f"(exit {proc.returncode}): {output_tail(text)}")
    return info


def output_tail(text: str | None, lines: int = 3, empty: str = "(no output)") -> str:
    """The last non-blank lines of a tool's output as one line, so that an error quoting
    it stays one line; `empty` when there are none."""
    kept = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return " | ".join(kept[-lines:]) or empty
