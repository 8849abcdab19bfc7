"""Finding model files in ComfyUI-style model folders, and the error that tells users where to put them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Protocol

from ..errors import ModelFileError
from .manifest import MODEL_FOLDERS, ModelEntry, entry_by_name


class ModelLocator(Protocol):
    """Where a model folder lives on disk: ComfyUI's ``folder_paths`` inside ComfyUI, a plain directory elsewhere."""

    def search_dirs(self, folder: str) -> list[Path]: ...


class DirectoryLocator:
    """A ComfyUI-style models directory: ``<root>/<folder>/<file>``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def search_dirs(self, folder: str) -> list[Path]:
        return [self.root / folder]


def _accepts(folder: str, path: Path) -> bool:
    extensions = MODEL_FOLDERS.get(folder, ())
    if "" in extensions:
        return path.is_dir()
    return path.is_file() and path.name.lower().endswith(extensions)


def list_model_names(locator: ModelLocator, folder: str, kind: str | None = None,
                     include_known: bool = True) -> list[str]:
    """Names a loader offers: files present in the folder, plus the manifest's names for ``kind`` (which the
    loader can then report as missing, with where to get them, instead of failing validation)."""
    found: set[str] = set()
    for directory in locator.search_dirs(folder):
        if not directory.is_dir():
            continue
        if MODEL_FOLDERS.get(folder) == ("",):
            # directory models (insightface packs) live one level down: <folder>/models/<pack>
            packs = directory / "models"
            if packs.is_dir():
                found.update(f"models/{p.name}" for p in packs.iterdir() if p.is_dir())
            continue
        for path in directory.rglob("*"):
            if _accepts(folder, path):
                found.add(path.relative_to(directory).as_posix())
    if include_known and kind is not None:
        from .manifest import entries_for

        found.update(e.name for e in entries_for(kind) if e.folder == folder)
    return sorted(found)


def find_model(locator: ModelLocator, folder: str, name: str) -> Path | None:
    """The first existing ``<dir>/<name>`` over the folder's search directories; names may not leave the folder."""
    if Path(name).is_absolute() or ".." in Path(name).parts:
        raise ModelFileError(f"Model name '{name}' must be a path inside the '{folder}' folder.")
    for directory in locator.search_dirs(folder):
        candidate = directory / name
        if candidate.exists():
            return candidate
    return None


def missing_model_message(locator: ModelLocator, folder: str, name: str) -> str:
    dirs = [str(d) for d in locator.search_dirs(folder)] or [f"models/{folder}"]
    message = (f"Model file '{name}' was not found in ComfyUI's '{folder}' model folder "
               f"(searched: {', '.join(dirs)}).")
    entry = entry_by_name(folder, name)
    if entry is not None:
        for remote in entry.files:
            target = f"{dirs[0]}/{name}/{remote.path}" if remote.path else f"{dirs[0]}/{name}"
            origin = f"{remote.url} (inside the archive as '{remote.archive_member}')" if remote.archive_member \
                else remote.url
            message += f" Download {origin} and save it as {target}."
        message += f" Source: {entry.source}; licence: {entry.licence_note()}."
        message += (" Or let ReMaskable fetch it: set the loader's 'download_if_missing' option, or the environment "
                    "variable REMASKABLE_ALLOW_DOWNLOAD=1.")
    else:
        message += f" Put the file into {dirs[0]} (or a folder added for '{folder}' in extra_model_paths.yaml)."
    return message


def require_model(locator: ModelLocator, folder: str, name: str, *, allow_download: bool = False,
                  progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Path of model ``name`` in ``folder``; downloads it first only when allowed and the manifest knows it."""
    path = find_model(locator, folder, name)
    entry = entry_by_name(folder, name)
    if path is not None:
        if entry is not None and entry.is_directory:
            check_directory_model(path, entry)
        return path
    allow_download = allow_download or os.environ.get("REMASKABLE_ALLOW_DOWNLOAD", "") == "1"
    if allow_download and entry is not None:
        from .download import download_model

        dirs = locator.search_dirs(folder)
        return download_model(entry, dirs[0], progress=progress)
    raise ModelFileError(missing_model_message(locator, folder, name))


def check_directory_model(path: Path, entry: ModelEntry) -> None:
    """Multi-file models fail with a clear message when a file is missing, and spot the common nested-folder mistake
    (``antelopev2/antelopev2/*.onnx`` after unzipping into a folder of the same name)."""
    missing = [f.path for f in entry.files if not (path / f.path).is_file()]
    if not missing:
        return
    nested = path / path.name
    if nested.is_dir() and all((nested / f).is_file() for f in missing):
        raise ModelFileError(
            f"'{path}' holds its files one folder too deep, in '{nested}'. Move the files of '{nested}' up into "
            f"'{path}' and delete the empty folder.")
    raise ModelFileError(f"'{path}' is missing {', '.join(missing)}. "
                         f"Get the complete '{entry.variant}' pack from {entry.source}.")
