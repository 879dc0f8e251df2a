"""Three-way merges: line-level text (``git merge-file``) and key-level YAML (ruamel round-trip).

Text merges use git's own merge machinery rather than a Python port: git is already required (the
template's history comes from it), ``git merge-file`` is the xdiff merge every developer knows from
``git merge`` (same hunks, same inline ``<<<<<<<``/``=======``/``>>>>>>>`` markers, identical changes
on both sides merge cleanly), and it is one short subprocess per file changed on both sides.

The service manifest merges by lines first (comments follow, like any file); where that clashes it
merges key by key (ruamel round-trip: the user's comments and key order kept), so a template's new key
and a user's new key at the end of the file, or changes on adjacent lines of different keys, do not
conflict. Only a real clash (both sides changed one key differently) shows the line merge's markers.
Stack entries merge key by key only (:func:`merge_mapping`).
"""

from __future__ import annotations

import io
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from infra.errors import PlatformError

MARKER = re.compile(rb"^(<{7} |>{7} |={7}$)", re.MULTILINE)
_MISSING = object()


def has_markers(data: bytes) -> bool:
    """True when *data* holds a line-start conflict marker (``<<<<<<< ``, ``=======``, ``>>>>>>> ``)."""
    return bool(MARKER.search(data))


def merge_text(base: bytes, ours: bytes, theirs: bytes, label: str) -> tuple[bytes, bool]:
    """(merged bytes, clean?) of a line-level three-way merge with git-style conflict markers."""
    with tempfile.TemporaryDirectory(prefix="platform-merge-") as tmp:
        files = []
        for role, data in (("ours", ours), ("base", base), ("theirs", theirs)):
            path = Path(tmp) / role
            path.write_bytes(data)
            files.append(str(path))
        labels = [f"{label} (yours)", f"{label} (template base)", f"{label} (template new)"]
        try:
            out = subprocess.run(
                ["git", "merge-file", "-p", *(a for lab in labels for a in ("-L", lab)), *files],
                capture_output=True,
                timeout=60,
                check=False,
            )
        except FileNotFoundError:
            raise PlatformError("git is not installed", hint="install git (apt-get install git)") from None
    if out.returncode < 0 or out.returncode > 127:
        raise PlatformError(
            f"git merge-file failed on {label}: {out.stderr.decode(errors='replace').strip()}",
            hint="is it a binary file? resolve it by hand",
        )
    return out.stdout, out.returncode == 0


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def plain(value: Any) -> Any:
    """ruamel's commented containers as plain dicts/lists (for equality)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def merge_mapping(base: Any, ours: Any, theirs: Any, path: str = "") -> list[str]:
    """Apply theirs' changes relative to base onto *ours* in place (a ruamel map); return clashes."""
    clashes: list[str] = []
    keys = list(ours) + [k for k in theirs if k not in ours]
    for key in keys:
        b, o, t = (m.get(key, _MISSING) if isinstance(m, dict) else _MISSING for m in (base, ours, theirs))
        pb, po, pt = (plain(v) if v is not _MISSING else _MISSING for v in (b, o, t))
        where = f"{path}.{key}" if path else str(key)
        if pt == pb or po == pt:
            continue
        if po == pb:
            if t is _MISSING:
                del ours[key]
            elif key in ours:
                ours[key] = t
            else:
                ours.insert(_position(ours, theirs, key), key, t)
        elif isinstance(o, dict) and isinstance(t, dict):
            clashes += merge_mapping(b if isinstance(b, dict) else {}, o, t, where)
        else:
            clashes.append(where)
    return clashes


def _position(ours: Any, theirs: Any, key: Any) -> int:
    """Where a key new in theirs goes in ours: after the nearest preceding key both have."""
    order = list(theirs)
    for before in reversed(order[: order.index(key)]):
        if before in ours:
            return list(ours).index(before) + 1
    return 0


def merge_yaml(base: bytes, ours: bytes, theirs: bytes, label: str) -> tuple[bytes, bool]:
    """Line merge; if it clashes, key-level merge of the YAML mappings (ours' comments kept); markers
    only when a key clashes too."""
    merged, clean = merge_text(base, ours, theirs, label)
    if clean:
        return merged, True
    yaml = _yaml()
    try:
        docs = [yaml.load(data.decode()) for data in (base, ours, theirs)]
    except (YAMLError, UnicodeDecodeError):
        return merged, False
    if not all(isinstance(d, dict) for d in docs):
        return merged, False
    b, o, t = docs
    if merge_mapping(b, o, t):
        return merged, False
    out = io.StringIO()
    yaml.dump(o, out)
    return out.getvalue().encode(), True
