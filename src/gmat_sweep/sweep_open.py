"""Opening a Sweep's out folder: reopening a sweep (or a bundle) from its manifest, and the checks that a run or a
resume into an existing folder continues the very sweep it holds (design, collect, script, postprocess hook,
engine). A mixin so ``sweep.py`` stays about running.

>>> Sweep.from_manifest("sweeps/sma")  # the Sweep of that folder, ready to resume or to read
"""

from __future__ import annotations

import os
import tempfile
import weakref
from typing import TYPE_CHECKING, Any

from .design import Design
from .gmat.script import ScriptError, load_script
from .layout import RUNS, SCRIPT, writable_problem
from .manifest import Manifest, current, manifest_path, read_manifest
from .records import ScriptSource

if TYPE_CHECKING:
    from .sweep import Sweep


class SweepError(ValueError):
    """The sweep cannot start or continue as asked; the message says what to do. Nothing finished is lost."""


class SweepOpening:
    """Methods of :class:`~gmat_sweep.Sweep` that open its out folder: ``from_manifest`` and the resume checks."""

    out: str
    design: Design
    collect: list[str]
    source: ScriptSource
    postprocess: str | None
    _manifest: Manifest | None
    _tmp: tempfile.TemporaryDirectory[str] | None

    @classmethod
    def from_manifest(cls, path: str | os.PathLike[str]) -> Sweep:
        """Reopen a sweep from its out directory (or its manifest.jsonl) to resume it or read its results."""
        from . import archive

        bundle = archive.unpack(path) if archive.is_bundle(path) else None
        manifest = read_manifest(bundle[0] if bundle else path)
        header = manifest.header
        out = os.path.dirname(manifest.path)
        script = header["script"]["path"]
        saved = os.path.join(out, "script", os.path.basename(script))
        source = None
        if not (bundle or os.path.exists(os.path.join(out, archive.SUMS))):  # a bundle holds the script as run
            try:
                source = load_script(script)
            except ScriptError:
                pass
        source = source or archive.saved_source(out, header)
        if source is None:
            raise SweepError(f"the sweep's script {script} is gone and no copy is saved under {saved}; "
                             "restore the script to resume")
        sweep = cls(script, out=out, collect=header.get("collect", []), engine=header.get("engine_choice"),
                    timeout=header.get("timeout"), fsync_every=header.get("fsync_every", 1),
                    require_converged=header.get("require_converged", False),
                    postprocess=header.get("postprocess"), _design=Design.from_dict(header["design"]), _source=source)
        sweep._manifest = manifest
        if bundle:  # the unpacked copy lives as long as the Sweep (and the DataFrames that hold it)
            sweep._tmp = bundle[1]
            weakref.finalize(sweep, bundle[1].cleanup)
        return sweep

    def _open_out(self, accept_changes: bool, resume: bool) -> dict[int, dict[str, Any]]:
        path = manifest_path(self.out)
        if os.path.exists(path):
            manifest = current(self._manifest, path)  # from_manifest has usually just read it
            self._check_same_sweep(manifest, accept_changes, resume)
            self._manifest = manifest
            return manifest.entries
        if resume:
            raise SweepError(f"nothing to resume: {self.out} has no manifest.jsonl")
        # A sweep killed before its manifest header was written leaves only its own skeleton: reuse it.
        if os.path.isdir(self.out) and set(os.listdir(self.out)) - {RUNS, SCRIPT}:
            raise SweepError(f"out={self.out} is not empty and holds no gmat-sweep manifest; refusing to mix a sweep "
                             "into it. Give a new or empty folder.")
        problem = writable_problem(os.path.join(self.out, RUNS))
        if problem:
            raise SweepError(f"out={self.out} is not writable ({problem}); choose a folder you can write to")
        return {}

    def _check_same_sweep(self, manifest: Manifest, accept_changes: bool, resume: bool) -> None:
        header = manifest.header
        theirs = header.get("design")
        differs = self.design.difference(theirs) or (header.get("collect", []) != self.collect and "collect")
        if differs:
            hint = " (add runs with: gmat-sweep extend OUT --n M)" if differs.startswith("n ") else ""
            raise SweepError(
                f"out={self.out} holds a different sweep ({len(Design.from_dict(theirs))} runs of "
                f"{header['script']['path']}; it differs in {differs}){hint}; refusing to overwrite it. Give a new "
                f"out= folder, or continue that sweep with: gmat-sweep resume {self.out}")
        if header.get("postprocess") != self.postprocess and not accept_changes:
            raise SweepError(f"this sweep's runs were postprocessed by {header.get('postprocess')!r}, not "
                             f"{self.postprocess!r}; keep the same postprocess=, or accept the change with "
                             "allow_changed_script=True (CLI: --allow-changed-script)")
        if header["script"]["sha256"] != self.source.sha256:
            if header["script"]["path"] != self.source.path and not resume:
                raise SweepError(f"out={self.out} holds a sweep of another script ({header['script']['path']}); "
                                 "give a new out= folder")
            if not accept_changes:
                raise SweepError(
                    f"the script {self.source.path} (or a file it includes) changed since this sweep started, so "
                    "new runs would not match the finished ones. Restore it, start a new sweep in a new out= "
                    "folder, or accept the change with allow_changed_script=True (CLI: --allow-changed-script).")

    def _check_same_engine(self, fingerprint: dict[str, Any], accept_changes: bool) -> None:
        """Results are a function of the engine too: a resumed sweep must run on the engine that began it."""
        if self._manifest is None or accept_changes:
            return
        theirs = self._manifest.header.get("engine") or {}
        keys = ("engine", "gmat_version", "gmatpy")
        changed = [f"{k} {theirs.get(k)!r} -> {fingerprint.get(k)!r}"
                   for k in keys if theirs.get(k) != fingerprint.get(k)]
        if changed:
            raise SweepError(
                f"this sweep's finished runs came from another GMAT engine ({'; '.join(changed)}), so new runs would "
                "not match them. Use the same engine (GMAT_ROOT / engine=, the same gmatpy), start a new sweep in a "
                "new out= folder, or accept the change with allow_changed_script=True (CLI: --allow-changed-script).")
