"""What must not be published, and the one scrubber that removes it.

`scrub` cuts what identifies a machine or a person from a result before it is shared
(private keys, home folders, serial-number and MAC patterns, absolute paths, this
machine's host and user names); `scrub_home` replaces this user's home folder with `~`
in everything a run writes (result files, the suite copied into them), so no file
benchkit writes names the home folder. Both walk a JSON-like value the same way.
"""

from __future__ import annotations

import getpass
import re
import socket
from pathlib import Path
from typing import Any, Callable

# Keys that identify a machine or a person; a benchkit result never has them, a result that
# went through other hands might.
_PRIVATE_KEYS = {
    "hostname": "host name", "host": "host name", "host_name": "host name",
    "node": "host name", "nodename": "host name", "fqdn": "host name",
    "serial": "serial number", "serial_number": "serial number",
    "serialnumber": "serial number", "uuid": "serial number", "hardware_uuid": "serial number",
    "platform_uuid": "serial number", "udid": "serial number", "machine_id": "serial number",
    "mac": "network address", "mac_address": "network address", "ip": "network address",
    "user": "user name", "username": "user name", "user_name": "user name",
    "login": "user name", "email": "e-mail address",
}
_HOME_PATTERNS = (
    re.compile(r"(?<![\w.~-])/(?:home|Users|var/home)/[^/\s\"'<>|:;,]+"),
    re.compile(r"(?<![\w.~-])/root(?=/|$|[\s\"'])"),
    re.compile(r"\b[A-Za-z]:\\(?:Users|Documents and Settings)\\[^\\\s\"']+", re.IGNORECASE),
)
_SERIAL_PATTERNS = (
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                r"[0-9a-fA-F]{12}\b"), "<uuid>", "serial number"),
    (re.compile(r"\b(?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}\b"), "<mac>", "network address"),
)
_PATH_KEYS = {"path", "file"}


def scrub(doc: dict[str, Any], *, local: bool = True) -> tuple[dict[str, Any], list[str]]:
    """A copy of `doc` with what must not be published removed, and what was removed.

    Generic rules (home folders, private keys, serial-number and MAC patterns, absolute
    model and suite paths) apply everywhere; with `local`, this machine's host name and
    user name are removed too (submit runs on the machine that measured). The list says
    which fields changed and why, never the removed values.
    """
    words = _local_words() if local else []
    removed: list[str] = []
    clean = _scrub_value(doc, words, removed, local)
    return clean, sorted(set(removed))


def private_fields(doc: dict[str, Any]) -> list[str]:
    """What must not be in a file that claims to be ready for publishing: the generic
    rules only (absolute paths outside a home folder are cut by submit, not refused)."""
    return scrub(doc, local=False)[1]


def _local_words() -> list[tuple[re.Pattern[str], str, str]]:
    """This machine's host name and user name, as whole-word patterns."""
    out = []
    try:
        host = socket.gethostname()
    except OSError:
        host = ""
    for name in {host, host.split(".")[0]}:
        if len(name) >= 3 and name.lower() != "localhost":
            out.append((re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])"), "<host>",
                        "host name"))
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = ""
    if len(user) >= 2:
        out.append((re.compile(rf"(?<=[/\\]){re.escape(user)}(?=[/\\]|$)"), "<user>",
                    "user name in a path"))
    return out


def scrub_home(value: Any) -> Any:
    """Replace this user's home folder with `~` at the start of every string of a JSON-like
    value: what a run writes (result files, the suite copied into them) must not name it."""
    home = str(Path.home())

    def strip(text: str, _path: list[str]) -> str:
        return "~" + text[len(home):] if home not in ("", "/") and text.startswith(home) \
            else text

    return walk(value, strip)


def walk(value: Any, on_string: Callable[[str, list[str]], str],
         keep: Callable[[list[str]], bool] = lambda _path: True,
         path: list[str] | None = None) -> Any:
    """A copy of a JSON-like value with every string passed through `on_string(text,
    path)` and the dict entries whose path `keep` refuses left out; the path names the
    keys and list indices from the top. Both scrubbers walk a document this way."""
    path = path or []
    if isinstance(value, dict):
        return {key: walk(item, on_string, keep, path + [str(key)])
                for key, item in value.items() if keep(path + [str(key)])}
    if isinstance(value, list):
        return [walk(item, on_string, keep, path + [str(i)]) for i, item in enumerate(value)]
    if isinstance(value, str):
        return on_string(value, path)
    return value


def _scrub_value(value: Any, words: list, removed: list[str], cut_paths: bool) -> Any:
    def keep(path: list[str]) -> bool:
        reason = _PRIVATE_KEYS.get(path[-1].lower())
        if reason:
            removed.append(f"{'.'.join(path)}: removed ({reason})")
        return not reason

    return walk(value, lambda text, path: _scrub_string(text, path, words, removed, cut_paths),
                keep)


def _scrub_string(text: str, path: list[str], words: list, removed: list[str],
                  cut_paths: bool) -> str:
    where = ".".join(path)
    new = text
    if cut_paths and (path and path[-1] in _PATH_KEYS or (len(path) >= 2 and path[0] == "command")) \
            and _is_absolute(new):
        new = re.split(r"[/\\]", new.rstrip("/\\"))[-1]
        removed.append(f"{where}: absolute path cut to the file name")
        return new
    for pattern in _HOME_PATTERNS:
        new, n = pattern.subn("~", new)
        if n:
            removed.append(f"{where}: home folder replaced by ~")
    for pattern, repl, reason in (*_SERIAL_PATTERNS, *words):
        new, n = pattern.subn(repl, new)
        if n:
            removed.append(f"{where}: {reason} removed")
    return new


def _is_absolute(text: str) -> bool:
    return text.startswith(("/", "~/", "\\\\")) or bool(re.match(r"^[A-Za-z]:[\\/]", text))
