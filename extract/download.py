"""Fetch the OpenSLR 83 corpus: resumable HTTP downloads and a zip extractor that refuses escapes.

The corpus is eleven zips of 0.3 to 1.7 GB each. A dropped connection must cost only the bytes
not yet received, and a crash must never leave a half-written file under its final name, so every
file is written under a temporary name and published (`brogue.atomic`) once it is complete. A
resumed download asks for the rest only if the file is still the one it started (`If-Range` with
the ETag or Last-Modified the first answer gave), so a file changed on the server in between is
fetched anew instead of spliced.
"""

from __future__ import annotations

import os
import re
import shutil
import zipfile
from collections.abc import Sequence
from http.client import HTTPException, HTTPResponse
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

from tqdm import tqdm

from brogue import atomic
from brogue.errors import BrogueError
from brogue.openslr83 import OPENSLR83_INDEX, OPENSLR83_SUBSETS

OPENSLR83_URL = "https://www.openslr.org/resources/83/"
# Lets tests (and mirrors) serve the corpus from elsewhere, e.g. http://127.0.0.1:PORT/.
URL_ENV = "BROGUE_OPENSLR_URL"

_CHUNK_BYTES = 1 << 20
_TIMEOUT_S = 60
_CONTENT_RANGE = re.compile(r"bytes (?:(\d+)-\d+|\*)/(\d+|\*)")


class DownloadError(BrogueError):
    """A download or extraction failed; the message is one line naming the URL or file."""


def download(url: str, dest: Path, *, progress: bool = True) -> Path:
    """Download `url` to `dest`, resuming a previous partial download, and return `dest`.

    Bytes go to `dest` + ".part", and the server's validator for them (ETag, else Last-Modified)
    to `dest` + ".part.validator"; only a file whose size matches what the server announced is
    published as `dest`, so an existing `dest` is always complete and is returned untouched.
    """
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    validator = dest.with_name(dest.name + ".part.validator")
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    if offset and validator.exists():  # a server without validators gets a plain Range
        headers["If-Range"] = validator.read_text(encoding="utf-8")
    try:
        with urlopen(Request(url, headers=headers), timeout=_TIMEOUT_S) as response:
            total = _receive(response, url, part, offset, progress, validator)
    except HTTPError as error:
        error.close()  # an HTTPError is also the open response; its headers stay readable
        if error.code != 416:
            raise DownloadError(f"{url}: HTTP {error.code} {error.reason}") from error
        # The range starts at or past the end: the part is complete, or longer than the file.
        total = _content_range(error.headers.get("Content-Range"), url)[1]
    except (OSError, HTTPException) as error:
        raise DownloadError(f"{url}: {_reason(error)}; {part.name} kept to resume") from error
    _check_size(url, part, total)
    atomic.publish(part, dest)
    validator.unlink(missing_ok=True)
    return dest


def _receive(
    response: HTTPResponse, url: str, part: Path, offset: int, progress: bool, validator: Path
) -> int | None:
    """Append (206) or write afresh (200) the response body to `part`; return the full size."""
    if response.status == 206:
        start, total = _content_range(response.headers.get("Content-Range"), url)
        if start != offset:
            raise DownloadError(f"{url}: asked to resume at byte {offset}, server sent {start}")
    else:  # 200: a first request, a server ignoring Range, or a file changed since the part.
        offset = 0
        length = response.headers.get("Content-Length")
        total = int(length) if length is not None else None
        tag = response.headers.get("ETag") or response.headers.get("Last-Modified")
        if tag:
            atomic.write_text(validator, tag)
        else:
            validator.unlink(missing_ok=True)
    with (
        open(part, "ab" if offset else "wb") as out,
        tqdm(
            total=total,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=part.stem,
            disable=None if progress else True,  # None: no bar when not a terminal
        ) as bar,
    ):
        while chunk := response.read(_CHUNK_BYTES):
            out.write(chunk)
            bar.update(len(chunk))
    return total


def _content_range(header: str | None, url: str) -> tuple[int | None, int | None]:
    """Parse `bytes START-END/TOTAL` or `bytes */TOTAL` into (START, TOTAL); '*' gives None."""
    match = _CONTENT_RANGE.fullmatch((header or "").strip())
    if match is None:
        raise DownloadError(f"{url}: unusable Content-Range header {header!r}")
    start, total = match.groups()
    return (
        int(start) if start is not None else None,
        int(total) if total != "*" else None,
    )


def _check_size(url: str, part: Path, total: int | None) -> None:
    """Refuse a part whose size differs from the announced total.

    A short part is kept so the next run resumes it; a part longer than the file can never be
    completed by resuming, so it is removed and the next run starts over.
    """
    size = part.stat().st_size
    if total is None or size == total:
        return
    if size < total:
        raise DownloadError(
            f"{url}: received {size} of {total} bytes; {part.name} kept, rerun to resume"
        )
    part.unlink()
    raise DownloadError(
        f"{url}: partial file had {size} bytes but the file has {total}; removed it, rerun"
    )


def _reason(error: BaseException) -> str:
    """One line describing a network error (URLError keeps the useful part in `.reason`)."""
    reason = getattr(error, "reason", None) or error
    return " ".join(str(reason).split()) or type(error).__name__


def extract_zip(zip_path: Path, target: Path) -> int:
    """Extract `zip_path` into `target` and return how many files were written.

    Every member is checked before anything is written, so a zip with a member that would land
    outside `target` writes nothing. A file already present with the member's size is kept, so
    rerunning after a crash only writes what is missing.
    """
    target = target.resolve()
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = [member for member in archive.infolist() if not member.is_dir()]
            places = [_member_path(zip_path, target, member.filename) for member in members]
            return sum(
                _extract_member(archive, member, place)
                for member, place in zip(members, places, strict=True)
            )
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as error:
        raise DownloadError(f"{zip_path}: {_reason(error)}") from error


def _member_path(zip_path: Path, target: Path, name: str) -> Path:
    """Where member `name` goes under `target`; absolute names and `..` escapes are refused."""
    place = (target / name).resolve()
    if not place.is_relative_to(target):
        raise DownloadError(f"{zip_path}: refusing member {name!r}, it would land outside {target}")
    return place


def _extract_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, place: Path) -> int:
    """Write one member through a temporary name; return 1 if written, 0 if already there."""
    if place.exists() and place.stat().st_size == member.file_size:
        return 0
    place.parent.mkdir(parents=True, exist_ok=True)
    with (
        atomic.atomic_path(place) as temporary,
        archive.open(member) as source,
        open(temporary, "wb") as out,
    ):
        shutil.copyfileobj(source, out, _CHUNK_BYTES)
    return 1


def openslr83_subsets(subsets: Sequence[str] | None) -> tuple[str, ...]:
    """Check subset names against the corpus; None means all eleven."""
    if subsets is None:
        return OPENSLR83_SUBSETS
    unknown = [name for name in subsets if name not in OPENSLR83_SUBSETS]
    if unknown:
        raise DownloadError(
            f"unknown OpenSLR 83 subset(s) {', '.join(unknown)}; "
            f"valid: {', '.join(OPENSLR83_SUBSETS)}"
        )
    return tuple(subsets)


def fetch_openslr83(download_dir: Path, subsets: Sequence[str] | None = None) -> Path:
    """Download the index and the chosen subsets into `download_dir`; return `download_dir`.

    Each zip is extracted into its own folder (`download_dir/<subset>/`), so that side files a
    zip may carry (a licence, a per-subset index) cannot overwrite another subset's. Once a zip is
    fully extracted a `<subset>.extracted` stamp is written and the zip is deleted: it holds the
    same wav bytes again (wav barely compresses), so keeping it would double the ~7 GB on disk
    for nothing the stamp cannot do. Nothing needed to resume goes early: a cut download resumes
    from its .part, and a crashed extraction restarts from the zip, which stays until the stamp
    exists. A rerun after completion touches no network; to fetch a subset again, delete its
    stamp (and its folder).
    """
    chosen = openslr83_subsets(subsets)
    base = os.environ.get(URL_ENV, OPENSLR83_URL).rstrip("/") + "/"
    download(base + OPENSLR83_INDEX, download_dir / OPENSLR83_INDEX)
    for subset in chosen:
        stamp = download_dir / f"{subset}.extracted"
        zip_path = download_dir / f"{subset}.zip"
        if not stamp.exists():
            download(base + zip_path.name, zip_path)
            extract_zip(zip_path, download_dir / subset)
            atomic.write_text(stamp, f"{zip_path.name} extracted into {subset}/\n")
        zip_path.unlink(missing_ok=True)
    return download_dir
