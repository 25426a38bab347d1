"""Check the import-linter contracts in pyproject.toml (`make lint`, `make test`).

import-linter finds a package's modules by walking its one folder, and brogue's stages are
folders of their own (pyproject's `package-dir`: `brogue.cache` is `cache/`, ...). So the check
reads a mirror of symlinks in a temporary folder that puts each stage inside `brogue/`, first on
the path, and runs `lint-imports` on it with the repository's own pyproject.toml.

    python -m dev.lint_imports
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]


def mirror(folder: Path) -> None:
    """`brogue/` in `folder`: the root package's files, and each stage's folder where its
    package name puts it."""
    folders = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"]
    root = folder / "brogue"
    root.mkdir()
    for entry in (REPO / folders["brogue"]).iterdir():
        (root / entry.name).symlink_to(entry)
    for package, source in folders.items():
        if package != "brogue":
            (root / package.removeprefix("brogue.").replace(".", "/")).symlink_to(REPO / source)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="brogue-imports-") as folder:
        mirror(Path(folder))
        lint = Path(sys.executable).with_name("lint-imports")
        environment = {**os.environ, "PYTHONPATH": folder}
        return subprocess.run([str(lint), "--no-cache", str(REPO / "pyproject.toml")],
                              env=environment, cwd=folder).returncode  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
