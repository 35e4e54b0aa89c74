"""Every runnable snippet of README.md, docs/ and docker/README.md runs as written, so the docs cannot drift.

The conventions, for whoever writes the docs:

- A fenced block whose language is ``python`` or ``sh`` is run. Blocks without a language (or ``yaml``, ``text``)
  are shown, not run: sample output, file layouts, messages.
- A block that cannot run on a developer's machine (it needs a Kubernetes cluster, Slurm, a registry, a Dask
  scheduler somewhere else) carries the reason in an HTML comment on the line right before its fence, visible in
  the doc's source::

      <!-- not run: needs a Kubernetes cluster -->

- A block right after ``<!-- output of the block above -->`` is what the python block before it prints: the test
  compares the two, so sample output that the code generates (a Slurm job script) stays true.
- The python blocks of one document are one session: they run in order in one fresh interpreter, as a file
  (``python doc.py``, no ``if __name__ == "__main__":`` guard added), so a later block may use what an earlier one
  made (``df``, ``s``), just as a reader pasting them one after the other would. Its ``sh`` blocks then run in
  order, with bash, in the same folder and with this environment's ``gmat-sweep`` first on ``PATH``.
- The folder is a fresh temporary one holding a copy of ``examples/``: snippets use ``examples/leo_drag.script``
  and write under relative folders (``sweeps/...``), which land there.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "docker" / "README.md"]
RUN = ("python", "sh")
SHOWN = ("", "yaml", "text")
NOT_RUN = re.compile(r"<!--\s*not run:\s*(?P<reason>.*?)\s*-->")  # a line of its own
OUTPUT = re.compile(r"<!--\s*output of the block above\s*-->")
FENCE = re.compile(r"^```(?P<lang>[\w+-]*)\s*$")
#: What the session script prints before each block, so that each block's own output can be cut out.
DELIMITER = "\x00gmat-sweep-docs block {}\x00"


@dataclasses.dataclass
class Block:
    doc: pathlib.Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    not_run: str | None = None  # the reason given in the doc
    output_of_previous: bool = False

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def blocks(doc: pathlib.Path) -> list[Block]:
    """The fenced blocks of ``doc`` with the marker on the line before each (if any)."""
    lines = doc.read_text().splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start, lang = i, match["lang"]
        i += 1
        body = []
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"{doc.relative_to(ROOT)}:{start + 1}: the block is never closed")
        before = lines[start - 1] if start > 0 else ""
        not_run = NOT_RUN.fullmatch(before.strip())
        found.append(Block(doc, start + 1, lang, "\n".join(body) + "\n", not_run["reason"] if not_run else None,
                           bool(OUTPUT.fullmatch(before.strip()))))
        i += 1
    return found


ALL = {doc: blocks(doc) for doc in DOCS}


def runnable(doc: pathlib.Path, lang: str) -> list[Block]:
    return [b for b in ALL[doc] if b.lang == lang and b.not_run is None and not b.output_of_previous]


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: str(d.relative_to(ROOT)))
def test_every_block_is_run_shown_or_marked_with_a_reason(doc):
    lines = [line.strip() for line in doc.read_text().splitlines()]
    for block in ALL[doc]:
        assert block.lang in RUN + SHOWN, f"{block.where}: language {block.lang!r}: use python or sh (run) or none"
        if block.not_run is not None:
            assert block.lang in RUN and block.not_run, f"{block.where}: 'not run' needs a reason, on a run block"
    markers = sum(bool(NOT_RUN.fullmatch(line) or OUTPUT.fullmatch(line)) for line in lines)
    marked = sum(b.not_run is not None or b.output_of_previous for b in ALL[doc])
    assert markers == marked, f"{doc.relative_to(ROOT)}: a marker that is not on the line right before a fence"
    for previous, block in zip(ALL[doc], ALL[doc][1:]):
        if block.output_of_previous:
            assert previous.lang == "python" and previous.not_run is None, f"{block.where}: output of what?"


def session_script(python_blocks: list[Block]) -> str:
    """One file running the blocks in order, printing a delimiter before each one's output."""
    parts = []
    for n, block in enumerate(python_blocks):
        parts.append(f"print({DELIMITER.format(n)!r}, flush=True)  # {block.where}\n")
        parts.append(block.text)
    return "\n".join(parts)


def run_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{pathlib.Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def folder_with_examples(tmp_path: pathlib.Path) -> pathlib.Path:
    work = tmp_path / "work"
    shutil.copytree(ROOT / "examples", work / "examples")
    return work


def check_outputs(doc: pathlib.Path, python_blocks: list[Block], stdout: str) -> None:
    printed = dict(enumerate(stdout.split("\x00")[2::2]))  # the text after each delimiter
    blocks_of_doc = ALL[doc]
    for previous, block in zip(blocks_of_doc, blocks_of_doc[1:]):
        if block.output_of_previous:
            got = printed[python_blocks.index(previous)]
            assert got.strip("\n") == block.text.strip("\n"), (
                f"{block.where}: the doc shows another output than {previous.where} prints:\n{got}")


RUNNABLE_DOCS = [doc for doc in DOCS if runnable(doc, "python") or runnable(doc, "sh")]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("doc", RUNNABLE_DOCS, ids=lambda d: str(d.relative_to(ROOT)))
def test_doc_runs_as_written(doc, tmp_path):
    work = folder_with_examples(tmp_path)
    env = run_env()
    python_blocks = runnable(doc, "python")
    if python_blocks:
        script = work / f"{doc.stem}_session.py"
        script.write_text(session_script(python_blocks))
        done = subprocess.run([sys.executable, script.name], cwd=work, env=env, capture_output=True, text=True,
                              timeout=540)
        last = max(map(int, re.findall(r"\x00gmat-sweep-docs block (\d+)\x00", done.stdout)), default=0)
        assert done.returncode == 0, f"{python_blocks[last].where} fails as written:\n{done.stderr[-4000:]}"
        check_outputs(doc, python_blocks, done.stdout)
    for block in runnable(doc, "sh"):
        done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block.text], cwd=work, env=env,
                              capture_output=True, text=True, timeout=540)
        assert done.returncode == 0, (
            f"{block.where} fails as written (exit {done.returncode}):\n{textwrap.indent(block.text, '  ')}\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


# ------------------------------------------------------------------------------------------ the install lines

#: ``pip install gmat-sweep`` (any extra, any quoting) installs the package index's other project of that name.
OTHER_PROJECT = re.compile(r"""pip install(?:\s+-[-\w=]+)*\s+['"]?gmat-sweep(?![\w-])""")


def test_no_install_line_names_the_other_project_on_the_package_index():
    files = [*DOCS, ROOT / "Makefile", ROOT / "docker" / "Dockerfile", *sorted((ROOT / "src").rglob("*.py"))]
    offenders = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}" for path in files
                 for n, line in enumerate(path.read_text().splitlines(), 1) if OTHER_PROJECT.search(line)]
    assert not offenders, "these install the index's gmat-sweep, another project:\n" + "\n".join(offenders)
    assert OTHER_PROJECT.search("pip install 'gmat-sweep[dask]'") and OTHER_PROJECT.search("pip install -U gmat-sweep")
    assert not OTHER_PROJECT.search("pip install 'gmat-param-sweep[dask]' (or '.[dask]' in a gmat-sweep clone)")


@pytest.mark.timeout(600)
def test_the_install_line_installs_this_project(tmp_path):
    """``pip install .`` from the source: a distribution named gmat-param-sweep, with ``gmat-sweep`` and gmat_sweep."""
    from gmat_sweep.distribution import DISTRIBUTION

    source = tmp_path / "source"  # what a clone holds of what the build reads (as docker/Dockerfile copies)
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copy(ROOT / "README.md", source)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    target = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                           str(source)], capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stderr[-3000:]
    dist_infos = [p.name for p in target.glob("*.dist-info")]
    assert dist_infos == [f"{DISTRIBUTION.replace('-', '_')}-{project_version()}.dist-info"], dist_infos
    entry_points = (target / dist_infos[0] / "entry_points.txt").read_text()
    assert re.search(r"^gmat-sweep = gmat_sweep\.cli:main$", entry_points, re.M), entry_points
    assert (target / "bin" / "gmat-sweep").is_file()
    # The installed command runs the installed copy, which knows its own name and version.
    env = {**run_env(), "PYTHONPATH": str(target)}
    shown = subprocess.run([str(target / "bin" / "gmat-sweep"), "--version"], capture_output=True, text=True,
                           env=env, cwd=tmp_path, timeout=120)
    assert shown.stdout.strip() == f"gmat-sweep, version {project_version()}", shown.stdout + shown.stderr
    where = subprocess.run([sys.executable, "-c", "import gmat_sweep; print(gmat_sweep.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert where.stdout.startswith(str(target)), where.stdout + where.stderr


def project_version() -> str:
    return re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M)[1]


# ------------------------------------------------------------------------------------------ the command's help


def test_run_help_lists_options_in_the_order_a_user_needs_them():
    from click.testing import CliRunner

    from gmat_sweep.cli import main

    for command in ("run", "resume"):
        shown = CliRunner().invoke(main, [command, "--help"], terminal_width=200).output
        options = re.findall(r"^\s+(?:-\w, )?(--[\w-]+)", shown, re.M)
        kubernetes = [o for o in options if o in ("--image", "--claim", "--mount", "--namespace", "--allow-unpinned",
                                                  "--scheduler-service-type")]
        assert options[-len(kubernetes) - 1:-1] == kubernetes, options  # last, before --help
        first = ["--grid", "--samples", "--collect", "--out"] if command == "run" else ["--allow-changed-script"]
        assert options[:len(first) + 3] == [*first, "--backend", "--workers", "--timeout"], options
    shown = CliRunner().invoke(main, ["run", "--help"], terminal_width=200).output
    assert "Sat.SMA=7000:7300:4 (4 values from 7000 to 7300, both included)" in shown
