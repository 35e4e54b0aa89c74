"""The image of docker/Dockerfile is built with ``make image`` and runs a real sweep as its non-root user.

Containers cannot be started on every machine that can build images (``podman run`` needs ``setrlimit``, which some
VMs refuse), so the image is run the way docker/README.md describes: ``podman image mount``, /proc and /dev bound
in a private mount namespace, and ``chroot --userspec`` as the image's user. The base is a Debian trixie minbase
made here with debootstrap (the mirror read from this machine's apt sources) and ``podman import``ed, because a
registry's ``python:3.12-slim`` may be out of reach; pip's configuration of this machine (its config files and
``PIP_*`` variables, merged) and the files it names are mounted into the build, never copied into the image.

Needs root, podman and debootstrap (``.ci/run`` installs the last two); skips with a reason starting "image:".
"""

from __future__ import annotations

import ast
import datetime
import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import urllib.parse

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
BASE_REPO = "localhost/gmat-sweep-debian-base"
SUITE = "trixie"  # Debian 13: its python3 is 3.13, which gmatpy's wheels support
PIP_PATH_KEYS = ("cert", "client-cert", "constraint", "requirement", "find-links", "index-url", "extra-index-url")

pytestmark = pytest.mark.timeout(2400)


def _tool(name: str) -> str | None:
    return shutil.which(name, path=SBIN)


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "image: building with podman --isolation chroot, mounting the image and chroot need root"
    missing = [t for t in ("podman", "debootstrap", "unshare", "chroot", "make") if _tool(t) is None]
    if missing:
        return (f"image: {' '.join(missing)} not installed (apt-get install podman debootstrap; .ci/run installs "
                "them when it can)")
    return None


def sh(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": SBIN}
    done = subprocess.run(args, capture_output=True, text=True, env=env, **kw)
    assert done.returncode == 0, (f"{shlex.join(args)} exit {done.returncode}:\n{done.stdout[-3000:]}\n"
                                  f"{done.stderr[-3000:]}")
    return done


# ------------------------------------------------------------------------------------------------ the base image


def apt_source_entries() -> list[tuple[str, list[str]]]:
    """(URI, suites) of every enabled ``deb`` entry of this machine's apt sources, one-line and deb822."""
    entries: list[tuple[str, list[str]]] = []
    lists = [pathlib.Path("/etc/apt/sources.list"), *sorted(pathlib.Path("/etc/apt/sources.list.d").glob("*.list"))]
    for path in lists:
        if path.is_file():
            for line in path.read_text().splitlines():
                words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb":
                    entries.append((words[1], [words[2]]))
    for path in sorted(pathlib.Path("/etc/apt/sources.list.d").glob("*.sources")):
        for paragraph in re.split(r"\n\s*\n", path.read_text()):
            fields: dict[str, str] = {}
            for line in paragraph.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes").lower() != "no":
                entries.extend((uri, fields.get("suites", "").split()) for uri in fields.get("uris", "").split())
    return entries


def debian_mirror() -> str:
    """The mirror this machine installs its own release from (the entry whose suite is its codename)."""
    release = dict(line.split("=", 1) for line in pathlib.Path("/etc/os-release").read_text().splitlines()
                   if "=" in line)
    codename = release.get("VERSION_CODENAME", "").strip('"')
    for uri, suites in apt_source_entries():
        if codename in suites or (not codename and any(s in ("stable", "testing", "sid") for s in suites)):
            return uri.rstrip("/")
    pytest.fail(f"no apt source of this machine serves its release {codename!r}: cannot choose a Debian mirror "
                "for debootstrap (see /etc/apt/sources.list and /etc/apt/sources.list.d/)")


def base_image(tmp_path: pathlib.Path) -> str:
    """A Debian minbase with python3 and python3-venv, made at most once a day (podman's store is the cache)."""
    tag = f"{BASE_REPO}:{SUITE}-{datetime.date.today():%Y%m%d}"
    if subprocess.run([_tool("podman"), "image", "exists", tag]).returncode == 0:
        return tag
    rootfs = tmp_path / "rootfs"
    sh("debootstrap", "--variant=minbase", "--include=python3,python3-venv", SUITE, str(rootfs), debian_mirror(),
       timeout=1500)
    for cache in ("var/cache/apt", "var/lib/apt/lists"):
        shutil.rmtree(rootfs / cache, ignore_errors=True)
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    sh("podman", "import", "-", tag, stdin=tar.stdout, timeout=600)
    assert tar.wait() == 0
    old = sh("podman", "images", "--format", "{{.Repository}}:{{.Tag}}", BASE_REPO).stdout.split()
    for stale in set(old) - {tag}:  # yesterday's bases
        subprocess.run([_tool("podman"), "rmi", stale], capture_output=True)
    shutil.rmtree(rootfs)
    return tag


# ------------------------------------------------------------------------------------------- pip's configuration


def pip_settings() -> dict[str, dict[str, str]]:
    """This machine's pip configuration, every file and PIP_* variable merged in pip's own precedence."""
    listed = sh(sys.executable, "-m", "pip", "config", "list").stdout
    merged: dict[str, dict[str, str]] = {}
    for line in listed.splitlines():  # 'global.cert=...' and ':env:.cert=...' (PIP_CERT), in override order
        key, sep, value = line.partition("=")
        if not sep:
            continue
        section, _, name = key.rpartition(".")
        section = "global" if section.startswith(":") else section
        merged.setdefault(section, {})[name] = ast.literal_eval(value)
    return merged


def pip_volumes(settings: dict[str, dict[str, str]], conf: pathlib.Path) -> list[str]:
    """``--volume`` options: the merged pip.conf as the image's /etc/pip.conf, and the local files it names."""
    indent = "\n    "  # a value of several lines (extra-index-url) continues on indented lines
    conf.write_text("".join(f"[{section}]\n" + "".join(f"{key} = {value.replace(chr(10), indent)}\n"
                                                      for key, value in values.items())
                            for section, values in settings.items()))
    mounts = {}  # where pip looks -> what is there on this machine (a symlinked file is mounted as its target)
    for values in settings.values():
        for key in PIP_PATH_KEYS:
            for word in values.get(key, "").split():
                path = urllib.parse.urlparse(word).path if word.startswith("file:") else word
                if key.endswith("index-url") and os.path.basename(path.rstrip("/")) == "simple":
                    path = os.path.dirname(path.rstrip("/"))  # a local index links to files beside simple/
                if path.startswith("/") and os.path.exists(path):
                    mounts[path] = os.path.realpath(path)
    return [f"--volume={conf}:/etc/pip.conf:ro", *(f"--volume={mounts[p]}:{p}:ro" for p in sorted(mounts))]


# ----------------------------------------------------------------------------------------------- running the image


def project_version() -> str:
    return re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M)[1]


def run_in_image(image: str, mnt: pathlib.Path, tmp: pathlib.Path, command: str) -> subprocess.CompletedProcess:
    """``command`` (sh) as the image's user, in the mounted image, with ``tmp`` as its /tmp."""
    config = json.loads(sh("podman", "image", "inspect", image).stdout)[0]["Config"]
    user = config.get("User", "")
    assert user and user.split(":")[0] not in ("0", "root"), f"the image runs as {user or 'root'}, not a user"
    env = dict(item.split("=", 1) for item in config.get("Env", []))
    uid = user.split(":")[0]
    passwd = (mnt / "etc" / "passwd").read_text().splitlines()
    home = next(line.split(":")[5] for line in passwd if line.split(":")[2] == uid or line.split(":")[0] == uid)
    env.update(HOME=home, LANG="C.UTF-8")
    workdir = config.get("WorkingDir") or home
    inner = f"cd {shlex.quote(workdir)} && {command}"
    # A private mount namespace: the binds vanish with it, and nothing propagates back to this machine's /dev.
    setup = (f"mount --rbind /dev {mnt}/dev && mount --bind /proc {mnt}/proc && mount --bind {tmp} {mnt}/tmp && "
             f"exec chroot --userspec={user} {mnt} /usr/bin/env -i "
             + " ".join(shlex.quote(f"{k}={v}") for k, v in env.items()) + f" /bin/sh -c {shlex.quote(inner)}")
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", setup],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "PATH": SBIN})


RESULTS = """\
import json
from gmat_sweep import Sweep
s = Sweep.from_manifest("/tmp/sweep")
df = s.results().reset_index()
runs = df.groupby("run_id")
print(json.dumps({"columns": list(df.columns), "counts": s.counts(),
                  "first": runs.first()[["Sat.SMA", "Sat.Earth.SMA", "Sat.ElapsedSecs"]].values.tolist(),
                  "last": runs.last()["Sat.ElapsedSecs"].tolist(), "status": df["status"].tolist()}))
"""


def test_make_image_builds_and_the_image_runs_a_sweep_as_its_user(tmp_path):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    base = base_image(tmp_path)
    version = project_version()
    image = f"gmat-sweep:{version}"
    before = subprocess.run([_tool("podman"), "image", "inspect", "--format", "{{.Id}}", image],
                            capture_output=True, text=True).stdout.strip()
    flags = ["--isolation", "chroot", *pip_volumes(pip_settings(), tmp_path / "pip.conf")]
    sh("make", "-C", str(ROOT), "image", "CONTAINER=podman", f"PYTHON_IMAGE={base}",
       "IMAGE_BUILD_FLAGS=" + shlex.join(flags), timeout=1800)
    built = sh("podman", "image", "inspect", "--format", "{{.Id}}", image).stdout.strip()
    if before and before != built:  # the image this tag named before is now unnamed: do not let them pile up
        subprocess.run([_tool("podman"), "rmi", before], capture_output=True)

    tmp = tmp_path / "image-tmp"
    tmp.mkdir()
    tmp.chmod(0o1777)
    shutil.copy(ROOT / "examples" / "leo_drag.script", tmp / "leo_drag.script")
    (tmp / "results.py").write_text(RESULTS)
    mnt = pathlib.Path(sh("podman", "image", "mount", image).stdout.strip())
    try:
        doctor = run_in_image(image, mnt, tmp, "gmat-sweep doctor")
        assert doctor.returncode == 0, doctor.stderr
        assert "gmat_version: R2026a" in doctor.stdout and f"gmat-sweep: {version}" in doctor.stdout, doctor.stdout
        assert "/opt/gmat-sweep/venv/" in doctor.stdout  # the image's own install, not something from outside

        sweep = run_in_image(image, mnt, tmp, "gmat-sweep run /tmp/leo_drag.script --grid Sat.SMA=6778:7078:4 "
                                              "--out /tmp/sweep --no-progress && python /tmp/results.py")
        assert sweep.returncode == 0, sweep.stdout + sweep.stderr
        assert "4 runs: 4 ok, 0 failed, 0 missing" in sweep.stdout, sweep.stdout
        table = json.loads(sweep.stdout.strip().splitlines()[-1])
    finally:
        subprocess.run([_tool("podman"), "image", "umount", image], capture_output=True)
    assert table["counts"] == {"ok": 4, "failed": 0, "missing": 0}
    assert set(table["status"]) == {"ok"}
    for column in ("run_id", "time", "Sat.SMA", "Sat.ElapsedSecs", "Sat.Earth.SMA", "Sat.Earth.ECC",
                   "Sat.Earth.Altitude", "Sat.EarthMJ2000Eq.INC", "status"):
        assert column in table["columns"], table["columns"]
    # Known values: the report's first row is the initial state (its SMA is the swept one), the last is TOF later.
    assert [row[0] for row in table["first"]] == [6778.0, 6878.0, 6978.0, 7078.0]
    for swept, reported, elapsed in table["first"]:
        assert reported == pytest.approx(swept, rel=1e-9) and elapsed == 0.0
    assert table["last"] == pytest.approx([5400.0] * 4, abs=1e-3)
    # The run folders belong to the image's user: the sweep really ran as that user, not as root.
    assert {p.stat().st_uid for p in (tmp / "sweep" / "runs").iterdir()} == {1000}
