"""Downloading the public GZ2 catalogue, filename mapping and image archive, resumably.

Files are fetched to ``<name>.part`` with HTTP Range requests, so an interrupted download
continues where it stopped; each finished file is checked against the MD5 that Zenodo
publishes for it (the S3 catalogue publishes none: its sha256 is recorded instead) and
only then renamed to its final name. ``mirror`` replaces the hosts, for institutional
mirrors and for tests against a local server.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from galzoo_tf.errors import BadInputError
from galzoo_tf.fileio import sha256_file, write_json_atomic

CATALOGUE_URL = "https://gz2hart.s3.amazonaws.com/gz2_hart16.csv.gz"
ZENODO_API_URL = "https://zenodo.org/api/records/3565489"
ZENODO_FILE_URL = "https://zenodo.org/records/3565489/files/{name}?download=1"
CATALOGUE_FILE = "gz2_hart16.csv.gz"
MAPPING_FILE = "gz2_filename_mapping.csv"
IMAGES_FILE = "images_gz2.zip"
LOG_FILE = "downloads.json"
BLOCK = 1 << 20

# (description, bytes done, bytes total or None)
ByteProgress = Callable[[str, int, int | None], None]


def with_mirror(url: str, mirror: str | None) -> str:
    """``url`` with its scheme and host replaced by the mirror's (the mirror's path prefixes it)."""
    if not mirror:
        return url
    parts, base = urllib.parse.urlsplit(url), urllib.parse.urlsplit(mirror)
    return urllib.parse.urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + parts.path,
                                    parts.query, ""))


def zenodo_md5s(api_url: str, timeout: float = 30) -> dict[str, str]:
    """File name -> MD5 from a Zenodo record's JSON (``files[].key`` and ``checksum: "md5:..."``)."""
    with urllib.request.urlopen(api_url, timeout=timeout) as response:
        record = json.load(response)
    files = record.get("files", [])
    if isinstance(files, dict):  # newer API shape: {"entries": {name: {...}}}
        files = list(files.get("entries", {}).values())
    return {f["key"]: f["checksum"].removeprefix("md5:") for f in files if "checksum" in f}


def md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _total_size(response: http.client.HTTPResponse, offset: int) -> int | None:
    """Full size of the file from Content-Range (partial reply) or Content-Length (full reply)."""
    content_range = response.headers.get("Content-Range", "")
    if "/" in content_range and content_range.rsplit("/", 1)[1].isdigit():
        return int(content_range.rsplit("/", 1)[1])
    length = response.headers.get("Content-Length")
    return int(length) + (offset if response.status == 206 else 0) if length else None


def _fetch_once(url: str, part: Path, timeout: float, progress: ByteProgress | None, label: str) -> int | None:
    """One request appending to ``part`` from its current size; returns the file's full size."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # nothing left to send: the part is complete
            return offset
        raise
    with response:
        if response.status != 206:  # server ignored the range: start again
            offset = 0
        total = _total_size(response, offset)
        with open(part, "ab" if offset else "wb") as handle:
            done = offset
            while block := response.read(BLOCK):
                handle.write(block)
                done += len(block)
                if progress is not None:
                    progress(label, done, total)
    return total


def fetch(url: str, dest: Path, *, md5: str | None = None, retries: int = 5, timeout: float = 60,
          progress: ByteProgress | None = None) -> dict:
    """Download ``url`` to ``dest`` with resume and retries; verify MD5 when known; atomic rename."""
    dest = Path(dest)
    if dest.is_file() and (md5 is None or md5_file(dest) == md5):
        return {"url": url, "path": str(dest), "md5": md5, "sha256": sha256_file(dest), "resumed": False}
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            total = _fetch_once(url, part, timeout, progress, dest.name)
            if total is None or part.stat().st_size == total:
                break
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as error:
            if attempt == retries or (isinstance(error, urllib.error.HTTPError) and error.code < 500):
                raise BadInputError("download failed", f"{url}: {error} (partial file kept in {part}; "
                                                       "run again to resume)") from error
        time.sleep(min(2**attempt, 30) * 0.1)
    else:
        raise BadInputError("download failed", f"{url}: still incomplete after {retries} retries; run again")
    if md5 is not None and md5_file(part) != md5:
        part.unlink()
        raise BadInputError("checksum mismatch", f"{url}: MD5 differs from the published {md5}; "
                                                 "the partial file was removed, run again")
    os.replace(part, dest)
    return {"url": url, "path": str(dest), "md5": md5, "sha256": sha256_file(dest), "resumed": True}


def extract_images(archive: Path, dest: Path, progress: ByteProgress | None = None) -> Path:
    """Unpack the ``.jpg`` members of the image archive flat into ``dest`` (skipping finished ones).

    Only each member's base name is used, so a crafted archive cannot write outside ``dest``.
    """
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = [m for m in bundle.infolist() if m.filename.lower().endswith(".jpg") and not m.is_dir()]
            for done, member in enumerate(members, 1):
                target = dest / Path(member.filename).name
                if not (target.is_file() and target.stat().st_size == member.file_size):
                    temporary = target.with_name(f".{target.name}.tmp")
                    with bundle.open(member) as source, open(temporary, "wb") as sink:
                        shutil.copyfileobj(source, sink)
                    os.replace(temporary, target)
                if progress is not None:
                    progress("extracting images", done, len(members))
    except zipfile.BadZipFile as error:
        raise BadInputError("unreadable archive", f"{archive}: not a valid zip archive ({error})") from error
    return dest


def download_gz2(cache: Path, *, mirror: str | None = None, images: bool = True,
                 progress: ByteProgress | None = None, warn: Callable[[str], None] = print) -> dict[str, Path]:
    """Fetch catalogue, mapping and (optionally) images into ``cache``; returns their local paths."""
    cache = Path(cache)
    try:
        md5s = zenodo_md5s(with_mirror(ZENODO_API_URL, mirror))
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError, KeyError) as error:
        warn(f"could not read Zenodo checksums ({error}); files will be kept without MD5 verification")
        md5s = {}
    wanted = [(CATALOGUE_FILE, with_mirror(CATALOGUE_URL, mirror)),
              (MAPPING_FILE, with_mirror(ZENODO_FILE_URL.format(name=MAPPING_FILE), mirror))]
    if images:
        wanted.append((IMAGES_FILE, with_mirror(ZENODO_FILE_URL.format(name=IMAGES_FILE), mirror)))
    log = [fetch(url, cache / name, md5=md5s.get(name), progress=progress) for name, url in wanted]
    write_json_atomic(cache / LOG_FILE, {"files": log})
    paths = {"catalogue": cache / CATALOGUE_FILE, "mapping": cache / MAPPING_FILE, "images": cache / "images"}
    if images:
        extract_images(cache / IMAGES_FILE, paths["images"], progress)
    return paths
