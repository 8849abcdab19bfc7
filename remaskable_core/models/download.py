"""Opt-in download of manifest models: resumable, progress-reporting, size- and sha256-verified.

Only ``require_model`` calls this, and only when the user asked for downloads (a loader option or
``REMASKABLE_ALLOW_DOWNLOAD=1``); nothing here runs at import.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable

from ..errors import ModelFileError
from .manifest import ModelEntry, RemoteFile

Progress = Callable[[int, "int | None"], None]
CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_url(url: str, dest: Path, *, expected_size: int | None = None, progress: Progress | None = None,
              timeout: float = 60.0) -> None:
    """Stream ``url`` to ``dest`` through ``dest.part``, resuming a partial ``.part`` file with an HTTP Range."""
    part = dest.with_name(dest.name + ".part")
    done = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "ReMaskable"})
    if done:
        request.add_header("Range", f"bytes={done}-")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if done and response.status != 206:  # the server ignored the Range: start over
                done = 0
            length = response.headers.get("Content-Length")
            total = done + int(length) if length is not None else expected_size
            with open(part, "ab" if done else "wb") as out:
                while block := response.read(CHUNK):
                    out.write(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, total)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise ModelFileError(f"Downloading {url} failed ({exc}). The partial file {part} is kept and the next "
                             f"attempt resumes it; or download the file by hand and save it as {dest}.") from exc
    os.replace(part, dest)


def verify(path: Path, remote: RemoteFile) -> None:
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        path.unlink()
        raise ModelFileError(f"{path.name}: downloaded {size} bytes, but the published file has {remote.size}; "
                             f"the incomplete file was deleted, try again.")
    if remote.sha256 is not None:
        actual = sha256_of(path)
        if not actual.startswith(remote.sha256):
            path.unlink()
            raise ModelFileError(f"{path.name}: sha256 {actual} does not match the published {remote.sha256}; "
                                 f"the file was deleted. Check the source ({remote.url}).")


def download_model(entry: ModelEntry, folder_dir: Path, progress: Progress | None = None) -> Path:
    """Download every file of ``entry`` into ``folder_dir/entry.name`` and return that path."""
    target = Path(folder_dir) / entry.name
    target.parent.mkdir(parents=True, exist_ok=True)
    if not entry.is_directory:
        (remote,) = entry.files
        fetch_url(remote.url, target, expected_size=remote.size, progress=progress)
        verify(target, remote)
        return target
    target.mkdir(parents=True, exist_ok=True)
    archives: dict[str, list[RemoteFile]] = {}
    for remote in entry.files:
        if remote.archive_member:
            archives.setdefault(remote.url, []).append(remote)
        elif not (target / remote.path).is_file():
            fetch_url(remote.url, target / remote.path, expected_size=remote.size, progress=progress)
            verify(target / remote.path, remote)
    for url, members in archives.items():
        missing = [m for m in members if not (target / m.path).is_file()]
        if not missing:
            continue
        archive = target / (url.rsplit("/", 1)[-1])
        fetch_url(url, archive, progress=progress)
        try:
            with zipfile.ZipFile(archive) as zf, tempfile.TemporaryDirectory(dir=target) as scratch:
                for member in missing:
                    try:
                        extracted = Path(zf.extract(member.archive_member, scratch))
                    except KeyError:
                        raise ModelFileError(f"{archive.name} has no '{member.archive_member}'; the archive at "
                                             f"{url} changed, get the files by hand from {entry.source}.") from None
                    shutil.move(str(extracted), target / member.path)
                    verify(target / member.path, member)
        except zipfile.BadZipFile as exc:
            raise ModelFileError(f"{archive} is not a valid zip archive ({exc}); delete it and try again.") from exc
        finally:
            archive.unlink(missing_ok=True)
    return target
