"""The local zoo cache: ``$SPVIS_HOME`` (default ``~/.cache/spvis``) holds one model folder per entry.

Layout::

    $SPVIS_HOME/models/<name>/       model.safetensors, config.yaml, MODEL_CARD.md, SOURCE.json
    $SPVIS_HOME/downloads/<file>     official files, until converted (manual downloads go here too)
    $SPVIS_HOME/hub/                 huggingface_hub's cache of Hub files
    $SPVIS_HOME/checksums.json       sha256 of every file at its first download, checked on every later one

``ensure_model`` returns a model folder, fetching and converting on first use: the official file is
verified (a published sha256, the Hub's checksum, or the one recorded at its first download), converted by
the importer (which names every missing, unexpected or mis-shaped key), and the folder is assembled in a
temporary folder and renamed into place, so a half-made model is never found. A cached folder is checked
against the sha256 its SOURCE.json records before it is used. ``SPVIS_OFFLINE=1`` never touches the network.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from spvis.errors import SpvisError
from spvis.utils.atomic_io import atomic_write_json, atomic_write_text
from spvis.zoo.download import DownloadError, hub_download, http_download, sha256_of
from spvis.zoo.registry import ZooEntry

HOME_ENV, OFFLINE_ENV = "SPVIS_HOME", "SPVIS_OFFLINE"
SOURCE_NAME = "SOURCE.json"


def spvis_home() -> Path:
    """``$SPVIS_HOME``, else ``~/.cache/spvis``."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".cache" / "spvis").expanduser()


def is_offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def model_folder(entry: ZooEntry) -> Path:
    return spvis_home() / "models" / entry.name


def download_path(entry: ZooEntry) -> Path:
    """Where the official file of ``entry`` is (or goes, for a download by hand)."""
    return spvis_home() / "downloads" / Path(entry.filename or f"{entry.name}.pth").name


def is_cached(entry: ZooEntry) -> bool:
    return (model_folder(entry) / SOURCE_NAME).is_file()


# --- checksums --------------------------------------------------------------------------------------------------

def _checksums_path() -> Path:
    return spvis_home() / "checksums.json"


def _recorded(key: str) -> str | None:
    path = _checksums_path()
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8")).get(key)
    except (OSError, json.JSONDecodeError, AttributeError):
        raise SpvisError(f"{path}: unreadable checksum record; delete it to start the record again") from None


def _record(key: str, digest: str) -> None:
    path = _checksums_path()
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    data[key] = digest
    atomic_write_json(path, data, indent=1)


def _source_key(entry: ZooEntry) -> str:
    if entry.kind == "hub":
        return f"hub:{entry.repo_id}@{entry.revision}/{entry.filename}"
    return entry.url if entry.kind == "url" else f"manual:{entry.name}"


def verify_file(entry: ZooEntry, path: Path, digest: str, *, hub_sha256: str | None = None) -> None:
    """Check ``digest`` (the file's sha256) against the published, the Hub's and the recorded checksums (the
    first download's is recorded when none is known); DownloadError naming both values otherwise."""
    expected = [(entry.sha256, "the sha256 published for this entry"), (hub_sha256, "the Hub's checksum"),
                (_recorded(_source_key(entry)), f"the sha256 recorded at its first download ({_checksums_path()})")]
    for want, what in expected:
        if want and want != digest:
            raise DownloadError(f"{path}: sha256 {digest} does not match {what} ({want}); the file is corrupt or "
                                f"was replaced, so it is not used")
    if not any(want for want, _ in expected):
        _record(_source_key(entry), digest)


# --- fetching ---------------------------------------------------------------------------------------------------

def _hint(entry: ZooEntry) -> str:
    where = download_path(entry)
    if entry.kind == "hub":
        what = f"{entry.filename} from https://huggingface.co/{entry.repo_id} (revision {entry.revision})"
    else:
        what = entry.url
    return f"Download {what} and put it at {where}, then run again"


def obtain_official_file(entry: ZooEntry) -> tuple[Path, str, bool]:
    """(path of the verified official file, its sha256, whether spvis downloaded it and may delete it)."""
    local = download_path(entry)
    if local.is_file():  # downloaded by hand, or left by an interrupted conversion
        digest = sha256_of(local)
        verify_file(entry, local, digest)
        return local, digest, False
    if entry.kind == "manual":
        raise DownloadError(f"model {entry.name!r}: its authors host it where no script can download it. "
                            f"{_hint(entry)}")
    if is_offline():
        raise DownloadError(f"model {entry.name!r} is not cached and {OFFLINE_ENV}=1 forbids downloading. "
                            f"{_hint(entry)} (or unset {OFFLINE_ENV})")
    if entry.kind == "hub":
        path, hub_sha = hub_download(entry.repo_id, entry.filename, revision=entry.revision,
                                     endpoint=entry.endpoint or None, cache_dir=spvis_home() / "hub",
                                     hint=_hint(entry))
        digest = sha256_of(path)
        verify_file(entry, path, digest, hub_sha256=hub_sha)
        return path, digest, False  # huggingface_hub manages its own cache
    digest = http_download(entry.url, local, hint=_hint(entry))
    try:
        verify_file(entry, local, digest)
    except DownloadError:
        local.unlink()
        raise
    return local, digest, True


def _official_config(entry: ZooEntry, work: Path) -> Path:
    """The official yaml the importer reads: built from ``entry.arch``, or ``official_config`` (path or URL)."""
    if entry.arch:
        import yaml

        from spvis.zoo.official_arch import official_tree

        path = work / "official_config.yaml"
        atomic_write_text(path, yaml.safe_dump(official_tree(**entry.arch), sort_keys=False))
        return path
    source = entry.official_config
    if source.startswith(("http://", "https://")):
        if is_offline():
            raise DownloadError(f"model {entry.name!r}: its config {source} is not cached and {OFFLINE_ENV}=1")
        path = work / "official_config.yaml"
        http_download(source, path, hint=f"Download {source} and give it as the entry's official_config")
        return path
    return Path(source)


def _convert(entry: ZooEntry, official: Path, digest: str, folder: Path) -> None:
    """Import ``official`` into ``folder`` (model.safetensors, config.yaml, MODEL_CARD.md, SOURCE.json)."""
    from spvis.checkpoints.importer import build_official_model
    from spvis.checkpoints.io import save_weights
    from spvis.zoo.card import zoo_card_text

    config = _official_config(entry, folder)
    model, cfg = build_official_model(official, config, entry.fmt)
    if entry.class_names:
        cfg.MODEL.CLASS_NAMES = list(entry.class_names)
    cfg.merge_overrides(list(entry.overrides))
    cfg.MODEL.DEVICE = "auto"
    weights = save_weights(folder, model, cfg)
    atomic_write_text(folder / "MODEL_CARD.md", zoo_card_text(entry, cfg, source_sha256=digest))
    source: dict[str, Any] = {"entry": entry.to_dict(), "official_sha256": digest,
                              "weights_sha256": sha256_of(weights)}
    atomic_write_json(folder / SOURCE_NAME, source, indent=1)


def check_cached(entry: ZooEntry) -> Path:
    """The cached model folder after checking its weights against SOURCE.json; SpvisError when they differ."""
    folder = model_folder(entry)
    try:
        source = json.loads((folder / SOURCE_NAME).read_text(encoding="utf-8"))
        want = source["weights_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        raise SpvisError(f"{folder / SOURCE_NAME}: unreadable; delete {folder} to fetch the model again") from None
    weights = folder / "model.safetensors"
    got = sha256_of(weights) if weights.is_file() else "missing"
    if got != want:
        raise SpvisError(f"{weights}: sha256 {got} differs from the {want} recorded when it was converted; the "
                         f"cached model is damaged, delete {folder} to fetch it again")
    return folder


def ensure_model(entry: ZooEntry) -> Path:
    """The model folder of ``entry``: cached, or fetched, verified and converted now (see the module docstring)."""
    if not entry.loadable:
        raise SpvisError(f"model {entry.name!r} is listed for reference but cannot be loaded yet: {entry.unsupported}")
    if entry.kind == "builtin":
        raise SpvisError(f"model {entry.name!r} is built in; load it by name, there is nothing to fetch")
    if is_cached(entry):
        return check_cached(entry)
    folder = model_folder(entry)
    if folder.exists():
        raise SpvisError(f"{folder}: exists but holds no {SOURCE_NAME} (not made by spvis, or damaged); move or "
                         f"delete it to fetch {entry.name!r}")
    official, digest, downloaded = obtain_official_file(entry)
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=folder.parent))
    try:
        _convert(entry, official, digest, work)
        os.chmod(work, 0o755)
        os.replace(work, folder)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if downloaded:  # the converted folder is what is used; the official file's sha256 stays recorded
        with contextlib.suppress(OSError):
            official.unlink()
    return folder
