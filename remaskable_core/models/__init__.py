"""Model files: the manifest of every model the pack knows, finding them, downloading them, loading weights."""

from .manifest import MODEL_FOLDERS, MODELS, ModelEntry, RemoteFile, entries_for, entry_by_name
from .locate import DirectoryLocator, ModelLocator, find_model, list_model_names, require_model
from .weights import load_state_dict

__all__ = [
    "MODEL_FOLDERS", "MODELS", "ModelEntry", "RemoteFile", "entries_for", "entry_by_name",
    "DirectoryLocator", "ModelLocator", "find_model", "list_model_names", "require_model",
    "load_state_dict",
]
