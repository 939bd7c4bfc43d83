"""Build hook: ship the top-level signatures/ data inside the wheel as scanner/_signatures.

The signature data lives at the top level (it is data, edited by people who never touch the
code); setuptools' package-data cannot reach outside the package, so build_py copies it.
Editable installs read the repository's signatures/ directly.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithSignatures(build_py):
    def run(self) -> None:
        super().run()
        src = Path(__file__).resolve().parent / "signatures"
        if src.is_dir():
            shutil.copytree(src, Path(self.build_lib) / "scanner" / "_signatures", dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithSignatures})
