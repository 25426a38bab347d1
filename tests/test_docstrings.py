"""Every module a package's docstring names exists: the words that map the code stay true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[1]
SETUP = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
FOLDERS = SETUP["package-dir"]  # import name -> the repository's folder


def folder(package: str) -> Path:
    """The folder of an installed package, by pyproject's mapping (a subpackage in its parent's)."""
    parts = package.split(".")
    for cut in range(len(parts), 0, -1):
        if ".".join(parts[:cut]) in FOLDERS:
            return REPO / FOLDERS[".".join(parts[:cut])] / Path(*parts[cut:])
    raise KeyError(package)


PACKAGES = [name for name in SETUP["packages"] if (folder(name) / "__init__.py").is_file()]
FILE_NAME = re.compile(r"`([a-z_]+)\.py`")  # `name.py`
LISTED = re.compile(r"^- `([a-z_]+)`", re.MULTILINE)  # a list item opening with `name`
DOTTED = re.compile(r"`(brogue(?:\.[A-Za-z_]+)+)")  # `brogue.package.module...`
# A paragraph opening with "Modules" names modules in backquotes, in prose.
MODULES = re.compile(r"^Modules\b.*?(?:\n\n|\Z)", re.MULTILINE | re.DOTALL)
BARE = re.compile(r"`([a-z_]+)`")
DEV = re.compile(r"`dev\.([a-z_]+)")  # the clone's `dev.module`


def is_module(package: Path, name: str) -> bool:
    return (package / f"{name}.py").is_file() or (package / name / "__init__.py").is_file()


def missing_names(package: str) -> list[str]:
    """The names in `package`'s docstring that are neither a module nor a package."""
    text = (folder(package) / "__init__.py").read_text()
    docstring = text.split('"""')[1] if text.startswith('"""') else ""
    here = package.rsplit(".", 1)[-1]
    prose = [name for paragraph in MODULES.findall(docstring) for name in BARE.findall(paragraph)]
    named = {*FILE_NAME.findall(docstring), *LISTED.findall(docstring), *prose}
    missing = [name for name in named if name != here and not is_module(folder(package), name)]
    missing += [f"dev.{name}" for name in DEV.findall(docstring)
                if not is_module(REPO / "dev", name)]  # fmt: skip
    for dotted in DOTTED.findall(docstring):
        parts = dotted.split(".")
        known = max(cut for cut in range(1, len(parts) + 1) if ".".join(parts[:cut]) in FOLDERS)
        inside = parts[known:]
        # The first name inside a package is a module of it, unless it is a class it exports.
        if inside and inside[0][0].islower() and not is_module(folder(".".join(parts[:known])),
                                                                inside[0]):  # fmt: skip
            missing.append(dotted)
    return sorted(missing)


def test_every_package_is_found() -> None:
    assert {"brogue", "brogue.cache", "brogue.extract", "brogue.inference", "brogue.train",
            "brogue.serve"} <= set(PACKAGES)  # fmt: skip


def test_a_stale_name_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text(
        '"""Modules: `here`, `lost`.\n\n- `here`: is;\n- `gone.py`: is not; see '
        '`brogue.train.predict` and `dev.nothing`; `prose` is no module.\n"""\n')
    (tmp_path / "pkg" / "here.py").write_text("")
    monkeypatch.setitem(FOLDERS, "brogue.pkg", str(tmp_path / "pkg"))
    assert missing_names("brogue.pkg") == ["brogue.train.predict", "dev.nothing", "gone", "lost"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_a_package_docstring_names_exists(package: str) -> None:
    assert missing_names(package) == [], f"{package}'s docstring names modules that are not there"
