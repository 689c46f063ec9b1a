"""Build hook: put librecommender.so inside the installed package when it can be found.

Nothing is compiled here. `pip install ./python` copies, in this order of preference, the file
named by $RECOMMENDER_LIBRARY or the repository's .build/release/librecommender.so (made by
`scripts/build-c-library`) next to the package's modules, where `recommender` looks first. When
neither exists the package installs without it and finds the library at import time (see
recommender/_library.py).
"""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildPyWithLibrary(build_py):
    def run(self):
        super().run()
        candidates = [os.environ.get("RECOMMENDER_LIBRARY"),
                      os.path.join(HERE, "..", ".build", "release", "librecommender.so")]
        for candidate in candidates:
            if candidate and os.path.isfile(candidate):
                target = os.path.join(self.build_lib, "recommender", "librecommender.so")
                shutil.copyfile(candidate, target)
                os.chmod(target, 0o755)
                break


setup(cmdclass={"build_py": BuildPyWithLibrary})
