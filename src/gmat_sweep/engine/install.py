"""A full GMAT install (``GMAT_ROOT``): its own ``bin/gmatpy`` started with its ``bin/api_startup_file.txt``.

This is how users reach what the wheel leaves out (optimizers such as VF13ad, estimation, GMAT functions).
The install's package is also called ``gmatpy``, so it is loaded under a private module name to live beside the
wheel without shadowing it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

from .base import Engine, EngineError

_MODULE = "gmat_sweep_install_gmatpy"


class InstallEngine(Engine):
    kind = "install"

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self._gmat: Any = None

    @property
    def bin_dir(self) -> str:
        return os.path.join(self.root, "bin")

    @property
    def startup_file(self) -> str:
        return os.path.join(self.bin_dir, "api_startup_file.txt")

    def _check_layout(self) -> str:
        package = os.path.join(self.bin_dir, "gmatpy", "__init__.py")
        if not os.path.isdir(self.root):
            raise EngineError(
                f"GMAT install not found: {self.root} does not exist. Set GMAT_ROOT (or engine=) to the top folder "
                "of a GMAT install, the one holding bin/ and data/, or unset it to use the embedded engine."
            )
        if not os.path.isfile(package):
            raise EngineError(
                f"{self.root} is not a GMAT install with the Python API: {package} is missing. Point GMAT_ROOT at "
                "the top folder of a GMAT R2020a or newer install (the one holding bin/gmatpy), or unset it to "
                "use the embedded engine."
            )
        if not os.path.isfile(self.startup_file):
            raise EngineError(
                f"{self.startup_file} is missing. Create it by running 'python BuildApiStartupFile.py' in "
                f"{os.path.join(self.root, 'api')} (GMAT's API setup step), then try again."
            )
        return package

    def start(self) -> None:
        if self._gmat is not None:
            return
        package = self._check_layout()
        # bin/ is deliberately not put on sys.path: the package is loaded by file location, its own imports are
        # relative, and its shared libraries are found by the loader (rpath), not through sys.path. With bin/ on
        # sys.path, every later ``import gmatpy`` in this process would get the install's package, not the wheel.
        try:
            spec = importlib.util.spec_from_file_location(
                _MODULE, package, submodule_search_locations=[os.path.dirname(package)]
            )
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[_MODULE] = module
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(_MODULE, None)
            raise EngineError(
                f"could not import GMAT's Python API from {package}: {exc}. The install's gmatpy must match this "
                f"Python ({sys.version_info.major}.{sys.version_info.minor}); GMAT ships builds for specific "
                "Python versions (bin/gmatpy/_py3XX)."
            ) from exc
        try:
            module.Setup(self.startup_file)
        except Exception as exc:
            raise EngineError(f"GMAT failed to start from {self.startup_file}: {exc}") from exc
        # GMAT's Setup does not raise when the startup file names folders or files that do not exist: it leaves
        # the Moderator uninitialised, and the first mission then crashes the process.
        if not module.Moderator.Instance().IsInitialized():
            raise EngineError(
                f"GMAT did not start from {self.startup_file}, most often because a folder or file it names does "
                "not exist (check its ROOT_PATH, DATA_PATH and the paths built on them). Rebuild it for this install "
                f"by running 'python BuildApiStartupFile.py' in {os.path.join(self.root, 'api')}, then try again."
            )
        self._gmat = module

    def _api(self) -> Any:
        self.start()
        return self._gmat

    @property
    def location(self) -> str:
        return self.root
