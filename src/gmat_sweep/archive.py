"""A sweep as one deterministic zip: the script as run with its includes, the manifest, every run's outputs, a
SHA-256 list of the members and a README that says how to reproduce it. ``Sweep.from_manifest`` opens a bundle
(or an unpacked copy of one) like an out folder.

The same sweep always gives the same bytes: members in sorted order, one fixed timestamp, fixed permissions, and
nothing in the README that the sweep's own records do not hold. A checksum of the bundle is therefore a checksum
of the sweep.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from collections.abc import Iterator
from typing import Any

from .atomic import replacing
from .layout import RUNS, SCRIPT
from .manifest import MANIFEST_NAME, read_manifest
from .records import ScriptSource
from .reproduce import cli_commands, design_files, is_dispersion, python_design

SUMS = "SHA256SUMS"
README = "README.md"
LOG = "gmat.log"
#: The zip format's earliest date: a fixed timestamp for every member.
EPOCH = (1980, 1, 1, 0, 0, 0)


class ArchiveError(ValueError):
    """A bundle cannot be written or read as asked; the message says what to do."""


def archive(sweep: Any, path: str | os.PathLike[str], logs: bool = True) -> str:
    """Write ``sweep`` (a Sweep or its out folder) to the zip ``path``; ``logs=False`` leaves GMAT's logs out.

    >>> archive("sweeps/leo", "leo-bundle.zip")
    """
    from .sweep import Sweep

    sweep = sweep if isinstance(sweep, Sweep) else Sweep.from_manifest(sweep)
    target = os.path.abspath(os.fspath(path))
    out = os.path.realpath(sweep.out)
    if os.path.commonpath([out, os.path.realpath(os.path.dirname(target))]) == out:
        raise ArchiveError(f"{target} is inside the sweep's own folder {sweep.out}; write the bundle somewhere else "
                           "(inside, it would be part of the sweep it archives)")
    if not target.endswith(".zip"):
        raise ArchiveError(f"{target}: name the bundle with a .zip suffix")
    if not os.path.isdir(os.path.dirname(target)):
        raise ArchiveError(f"{os.path.dirname(target)} does not exist; create the folder or write the bundle elsewhere")
    manifest = read_manifest(sweep.out)
    top = os.path.basename(out.rstrip(os.sep)) or "sweep"
    members = dict(_members(out, manifest.entries, logs))
    sums = "".join(f"{_sha256_file(os.path.join(out, name))}  {name}\n" for name in sorted(members))
    # Written from the sweep's records, not copied: the README and the files its reproduce command reads.
    made = {README: readme_text(sweep, manifest.header, top, logs).encode(), **design_files(manifest.header)}
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in made.items()) + sums
    with replacing(target) as temporary, zipfile.ZipFile(temporary, "w") as bundle:
        _write(bundle, f"{top}/{README}", made.pop(README))
        _write(bundle, f"{top}/{SUMS}", sums.encode())
        for name in sorted(made):
            _write(bundle, f"{top}/{name}", made[name])
        for name in sorted(members):
            with open(os.path.join(out, name), "rb") as handle:
                _write(bundle, f"{top}/{name}", handle.read())
    return target


def _members(out: str, entries: dict[int, dict[str, Any]], logs: bool) -> Iterator[tuple[str, None]]:
    """Paths relative to ``out``: the manifest, the saved script tree, and the folders of recorded runs."""
    yield MANIFEST_NAME, None
    for folder in (SCRIPT,) + tuple(f"{RUNS}/{run_id}" for run_id in sorted(entries)):
        root = os.path.join(out, folder)
        for directory, subdirs, files in os.walk(root):
            subdirs.sort()
            for name in sorted(files):
                if not logs and name == LOG:
                    continue
                yield os.path.relpath(os.path.join(directory, name), out).replace(os.sep, "/"), None


def _write(bundle: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, whatever machine writes it, so the permission bits below mean the same
    info.external_attr = 0o100644 << 16
    bundle.writestr(info, data, compresslevel=6)


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------- reading


def is_bundle(path: str | os.PathLike[str]) -> bool:
    return os.path.isfile(path) and zipfile.is_zipfile(path)


def unpack(path: str | os.PathLike[str]) -> tuple[str, tempfile.TemporaryDirectory[str]]:
    """Unpack a bundle into a temporary folder, checking every member against its SHA-256 list; returns the
    sweep's folder in it and the folder's owner (the caller keeps it alive as long as it reads the sweep)."""
    path = os.fspath(path)
    folder = tempfile.TemporaryDirectory(prefix="gmat-sweep-bundle-")
    with zipfile.ZipFile(path) as bundle:
        names = bundle.namelist()
        tops = {n.split("/", 1)[0] for n in names}
        sums_name = next((n for n in names if n.endswith("/" + SUMS) and n.count("/") == 1), None)
        if len(tops) != 1 or sums_name is None:
            raise ArchiveError(f"{path} is not a gmat-sweep bundle (no single folder with a {SUMS} list); make one "
                               "with: gmat-sweep archive OUT bundle.zip")
        top = tops.pop()
        for name in names:
            if name.startswith("/") or ".." in name.split("/"):
                raise ArchiveError(f"{path}: member {name!r} would land outside its folder; not unpacking it")
        bundle.extractall(folder.name)
    out = os.path.join(folder.name, top)
    check(out)
    return out, folder


def check(out: str) -> None:
    """Every file the SHA-256 list names is there with that digest (an unpacked bundle, or one just opened)."""
    with open(os.path.join(out, SUMS), encoding="utf-8") as handle:
        for line in handle:
            digest, name = line.rstrip("\n").split("  ", 1)
            member = os.path.join(out, name)
            if not os.path.exists(member):
                raise ArchiveError(f"the bundle lacks {name}, listed in its {SUMS}; it is incomplete")
            if _sha256_file(member) != digest:
                raise ArchiveError(f"{name} in the bundle does not match its SHA-256 in {SUMS}: it was changed or "
                                   "damaged after archiving")


def saved_source(out: str, header: dict[str, Any]) -> ScriptSource | None:
    """The script and includes exactly as run, from the copy a sweep keeps under ``script/``."""
    script = header["script"]
    saved = os.path.join(out, "script")
    main = os.path.join(saved, os.path.basename(script["path"]))
    if not os.path.exists(main):
        return None
    includes: dict[str, str] = {}
    if script.get("includes"):
        root = os.path.commonpath([os.path.dirname(script["path"]), *script["includes"]])
        for original in script["includes"]:
            copy = os.path.join(saved, "includes", os.path.relpath(original, root))
            if not os.path.exists(copy):
                return None
            with open(copy, encoding="utf-8") as handle:
                includes[original] = handle.read()
    with open(main, encoding="utf-8") as handle:
        text = handle.read()
    return ScriptSource(script["path"], text, includes, script["sha256"])


# ---------------------------------------------------------------------------------------------- README


def readme_text(sweep: Any, header: dict[str, Any], top: str, logs: bool) -> str:
    counts = sweep.counts()
    script = os.path.basename(header["script"]["path"])
    engine = header.get("engine") or {}
    versions = header.get("versions") or {}
    lines = [
        f"# gmat-sweep bundle: {top}",
        "",
        f"{len(sweep)} runs of `{script}` (SHA-256 {header['script']['sha256']}): {counts['ok']} ok, "
        f"{counts['failed']} failed, {counts['missing']} missing. Design: {header['design']['kind']} over "
        f"{', '.join(sweep.design.parameters)}" + (f" (n={header['design']['n']}, seed={header['design']['seed']})"
                                                   if is_dispersion(header["design"]) else "") + ".",
        "",
        "## Contents",
        "",
        "- `manifest.jsonl`: the sweep's record (header, then one line per finished run)",
        f"- `script/{script}`: the script exactly as run" + (", and `script/includes/`: its includes"
                                                               if header["script"].get("includes") else ""),
        "- `runs/<run_id>/`: each run's reports (Parquet) and other outputs" + ("" if logs else
                                                                              " (GMAT logs left out)"),
        *(["- `design/`: the mean (first row) and covariance of each correlated perturbation, for the command "
           "below"] if design_files(header) else []),
        f"- `{SUMS}`: the SHA-256 of every other member (`sha256sum -c {SUMS}` checks them)",
        "",
        "## Read it",
        "",
        "```python",
        "from gmat_sweep import Sweep",
        f's = Sweep.from_manifest("{top}.zip")   # the zip itself, or the unpacked folder {top}/',
        "s.results(); s.summary(); s.failed()",
        "```",
        "",
        "## Reproduce it",
        "",
        f"The runs used GMAT {engine.get('gmat_version', '?')} ({engine.get('engine', '?')} engine, gmatpy "
        f"{engine.get('gmatpy', versions.get('gmatpy', '?'))}) and gmat-sweep {versions.get('gmat-sweep', '?')}; "
        "install the same versions for identical results. From the unpacked folder:",
        "",
    ]
    commands = cli_commands(header, f"script/{script}")
    if commands:
        lines += ["```sh", *commands, "```", "", "or, in Python:", ""]
    collect = f", collect={header.get('collect')!r}" if header.get("collect") else ""
    lines += ["```python", "from gmat_sweep import Sweep",
              'old = Sweep.from_manifest(".")',
              f'new = Sweep("script/{script}", {python_design(header)}{collect}, out="rerun").run()',
              "```", ""]
    return "\n".join(lines)
