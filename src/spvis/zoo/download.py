"""Getting a zoo file onto this machine: plain HTTPS (with a progress bar) or the Hugging Face Hub.

A download goes to a hidden ``.part`` file beside its destination and is renamed only once it is complete
(length checked against Content-Length) and its sha256 is known, so a killed or truncated transfer never
looks like a file. Network failures become one ``DownloadError`` line saying what to fetch and where to put it.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from spvis.errors import SpvisError

CHUNK = 1 << 20
TIMEOUT_S = 30.0  # per socket operation: a dead server fails in seconds, a slow one keeps going


class DownloadError(SpvisError):
    """A zoo file could not be fetched or verified."""


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def http_download(url: str, dest: Path, *, hint: str) -> str:
    """Download ``url`` to ``dest`` (atomically, with a tqdm bar on stderr); returns its sha256.

    ``hint`` ends every error line (what to download and where to put it by hand)."""
    from tqdm import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part")
    digest, received = hashlib.sha256(), 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "spvis"})
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            total = response.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            with open(part, "wb") as handle, tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                                  desc=dest.name, file=sys.stderr) as bar:
                for block in iter(lambda: response.read(CHUNK), b""):
                    handle.write(block)
                    digest.update(block)
                    received += len(block)
                    bar.update(len(block))
                handle.flush()
                os.fsync(handle.fileno())
        if total is not None and received != total:
            raise DownloadError(f"{url}: transfer ended after {received} of {total} bytes; nothing was kept. {hint}")
        os.replace(part, dest)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url}: the server answered HTTP {exc.code} ({exc.reason}). {hint}") from None
    except urllib.error.URLError as exc:
        raise DownloadError(f"{url}: cannot reach the server ({_reason(exc.reason)}). {hint}") from None
    except (OSError, http.client.HTTPException) as exc:  # reset connection, IncompleteRead, timeout
        raise DownloadError(f"{url}: download failed after {received} bytes ({_reason(exc)}); nothing was kept. "
                            f"{hint}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
    return digest.hexdigest()


def _reason(exc: object) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def hub_download(repo_id: str, filename: str, *, revision: str, endpoint: str | None, cache_dir: Path,
                 hint: str) -> tuple[Path, str | None]:
    """(local path, the Hub's sha256 of the file or None) through ``huggingface_hub`` (its own progress bar,
    cache and resume). The sha256 is the Hub's ETag of an LFS file (the file's sha256, which the caller
    checks against the downloaded bytes)."""
    from spvis.utils.optional import require

    hub = require("huggingface_hub", extra="hub", purpose="downloading from the Hugging Face Hub")
    errors = require("huggingface_hub.errors", extra="hub", purpose="downloading from the Hugging Face Hub")
    url = hub.hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint or None)
    try:
        meta = hub.get_hf_file_metadata(url, endpoint=endpoint or None)
        path = hub.hf_hub_download(repo_id, filename, revision=revision, cache_dir=str(cache_dir),
                                   endpoint=endpoint or None)
    except errors.OfflineModeIsEnabled:
        raise DownloadError(f"{url}: huggingface_hub is in offline mode (HF_HUB_OFFLINE). {hint}") from None
    except (errors.RepositoryNotFoundError, errors.RevisionNotFoundError, errors.EntryNotFoundError) as exc:
        raise DownloadError(f"{url}: not on the Hub ({type(exc).__name__}). {hint}") from None
    except errors.HfHubHTTPError as exc:
        raise DownloadError(f"{url}: the Hub refused ({_reason(exc).splitlines()[0][:160]}). {hint}") from None
    except Exception as exc:  # connection errors come from httpx/requests, whose classes vary by version
        raise DownloadError(f"{url}: cannot reach the Hub ({type(exc).__name__}: {_reason(exc)[:160]}). "
                            f"{hint}") from None
    etag = (meta.etag or "").strip('"')
    return Path(path), etag if _is_sha256(etag) else None


def _is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)
