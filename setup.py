"""Packaging hook: install ``modeltrack_autolog.pth`` into site-packages.

Everything else is declared in ``pyproject.toml``. The ``.pth`` file makes
``MODELTRACK_AUTOLOG=1 python train.py`` switch autologging on at interpreter start-up; its
one line only reads an environment variable when that is unset. It goes to the root of the
wheel for normal installs (``build_py``) and of the editable wheel for ``pip install -e .``
(``editable_wheel``); ``modeltrack run`` works without it (it puts ``modeltrack/_boot`` on
the child's ``PYTHONPATH``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = Path(__file__).resolve().parent / "modeltrack" / "_boot" / "modeltrack_autolog.pth"


class BuildPyWithPth(build_py):
    """``build_py`` that also puts the ``.pth`` file at the root of the build (the wheel)."""

    def run(self) -> None:
        super().run()
        if not getattr(self, "editable_mode", False):
            self.copy_file(str(PTH), str(Path(self.build_lib) / PTH.name))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        if not getattr(self, "editable_mode", False):
            outputs.append(str(Path(self.build_lib) / PTH.name))
        return outputs


cmdclass: dict[str, type] = {"build_py": BuildPyWithPth}

try:
    from setuptools.command.editable_wheel import editable_wheel
except ImportError:  # setuptools < 64: no PEP 660 editable installs
    editable_wheel = None

if editable_wheel is not None and hasattr(editable_wheel, "_run_build_commands"):

    class EditableWheelWithPth(editable_wheel):  # type: ignore[misc, valid-type]
        """Editable wheels: whatever lies in the unpacked wheel directory is installed."""

        def _run_build_commands(self, dist_name, unpacked_wheel, build_lib, tmp_dir):  # type: ignore[no-untyped-def]
            result = super()._run_build_commands(dist_name, unpacked_wheel, build_lib, tmp_dir)
            shutil.copyfile(PTH, Path(unpacked_wheel) / PTH.name)
            return result

    cmdclass["editable_wheel"] = EditableWheelWithPth

setup(cmdclass=cmdclass)
