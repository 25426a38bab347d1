"""Atomic file writes: the one place that knows how a finished file gets its final name.

A file is written under a unique temporary name beside its final name, flushed to disk
(`fsync`), and then given the final name in one step, after which the folder is synced too
so the new name survives a power cut. Readers therefore see either no file or a complete
one, and two writers never write into the same temporary file.

A folder (an export, a sweep's best run) is published the same way by `publish_folder`:
written under a temporary name, every file and folder in it synced, then renamed.

Two ways to publish a file:
- `overwrite=True` (the default) replaces what is there (`os.replace`): a manifest, a
  run folder's `metrics.json`, a plot.
- `overwrite=False` publishes only if the final name is free (`os.link`, which fails on an
  existing name, then unlinking the temporary name), so a finished file is never replaced,
  even by a second process that raced for the same name. It raises `FileExistsError`.

Temporary names are `NAME.tmp-PID-RANDOM.EXT` (the extension kept last, so writers that
pick a format by extension, such as matplotlib and Keras, still work); `is_temporary`
recognises them, so a crashed writer's leftovers can be found and removed.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

_TEMPORARY = re.compile(r".*\.tmp-\d+-[0-9a-f]{8}(\.[^.]*)?")


def temporary_path(final: Path) -> Path:
    """A fresh name beside `final`, unique to this process and call."""
    final = Path(final)
    stem, suffix = (final.stem, final.suffix) if final.suffix else (final.name, "")
    return final.with_name(f"{stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def is_temporary(path: Path) -> bool:
    """Whether `path` is a temporary name made by `temporary_path`."""
    return _TEMPORARY.fullmatch(Path(path).name) is not None


@contextlib.contextmanager
def atomic_path(final: Path, *, overwrite: bool = True) -> Iterator[Path]:
    """A temporary path to write `final`'s content to; published when the block ends normally.

    On an exception the temporary file is removed and `final` is left as it was.
    """
    final = Path(final)
    temporary = temporary_path(final)
    try:
        yield temporary
        publish(temporary, final, overwrite=overwrite)
    finally:
        temporary.unlink(missing_ok=True)


def publish(temporary: Path, final: Path, *, overwrite: bool = True) -> None:
    """Make the finished `temporary` durable, then give it the name `final` in one step."""
    with open(temporary, "rb+") as file:
        os.fsync(file.fileno())
    if overwrite:
        os.replace(temporary, final)
    else:
        os.link(temporary, final)  # FileExistsError if the name is taken: nothing is replaced
        os.unlink(temporary)
    sync_folder(final.parent)


@contextlib.contextmanager
def openvino_ir(xml: Path) -> Iterator[Path]:
    """A temporary .xml path to save an OpenVINO IR to; when the block ends normally its .bin
    is published first, then the .xml, so a reader that finds the .xml finds its weights (OpenVINO
    reads them from the .xml's name with .bin)."""
    xml = Path(xml)
    temporary = temporary_path(xml)
    try:
        yield temporary
        publish(temporary.with_suffix(".bin"), xml.with_suffix(".bin"))
        publish(temporary, xml)
    finally:
        temporary.unlink(missing_ok=True)
        temporary.with_suffix(".bin").unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(final: Path) -> Iterator[Path]:
    """A new temporary folder to fill with `final`'s content; published by `publish_folder`
    when the block ends normally, removed on an exception."""
    final = Path(final)
    temporary = temporary_path(final)
    temporary.mkdir()
    try:
        yield temporary
        publish_folder(temporary, final)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def publish_folder(temporary: Path, final: Path) -> None:
    """Sync every file and folder under `temporary`, then rename it to `final`, which must not
    exist or be an empty folder (`OSError` otherwise: a finished folder is never replaced)."""
    for folder, _, files in os.walk(temporary, topdown=False):
        for name in files:
            with open(Path(folder) / name, "rb") as file:
                os.fsync(file.fileno())
        sync_folder(Path(folder))
    os.rename(temporary, final)
    sync_folder(Path(final).parent)


def sync_folder(folder: Path) -> None:
    """fsync a folder, so that names created or removed in it survive a crash."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_text(path: Path, text: str, *, overwrite: bool = True) -> None:
    """Write `text` (utf-8) to `path` atomically."""
    with atomic_path(path, overwrite=overwrite) as temporary:
        temporary.write_text(text, encoding="utf-8")
