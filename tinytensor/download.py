"""Fetch a data file once, check it, keep it in a cache folder (standard library only).

    path = download(URL, "gpt2.tiktoken", sha256=HASH, cache_subdir="gpt2")

The cache is ``$TINYTENSOR_CACHE`` or ``~/.cache/tinytensor``. A file is used only when its
sha256 matches, so a truncated or tampered file is never read. Downloads go to a temporary
file in the same folder and are renamed into place only after the checksum passes, so an
interrupted download never leaves a half-written file under the real name.
"""

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path


class DownloadError(FileNotFoundError):
    """A file could not be fetched (offline, blocked, or wrong checksum) and is not in the cache."""


def cache_dir() -> Path:
    """The folder where downloads are kept: $TINYTENSOR_CACHE, else ~/.cache/tinytensor."""
    return Path(os.environ.get("TINYTENSOR_CACHE") or Path.home() / ".cache" / "tinytensor")


def sha256_of(path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, filename: str, sha256: str, cache_subdir: str = "", local_path=None,
             digest=sha256_of) -> Path:
    """Return the path of a verified copy of ``url``, downloading it into the cache if needed.

    ``local_path``, when given, is used instead of the cache (and must match ``sha256`` too).
    ``digest(path)`` computes the hash compared with ``sha256`` (e.g. of a .gz file's uncompressed content).
    Raises DownloadError, with where to put the file by hand, when it cannot be fetched.
    """
    if local_path is not None:
        local_path = Path(local_path)
        if not local_path.is_file():
            raise DownloadError(f"{filename}: no file at the given local path {local_path}")
        _check_sha256(local_path, sha256, str(local_path), digest)
        return local_path

    folder = cache_dir() / cache_subdir
    target = folder / filename
    if target.is_file() and digest(target) == sha256:
        return target

    how_to_fix = (
        f"download it on a machine with internet access from {url} and put it at {target} "
        f"(sha256 {sha256}), or pass the path of a local copy"
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=filename + ".", suffix=".part")
    except OSError as err:
        raise DownloadError(f"cannot write {filename} into the cache folder {folder}: {err}; {how_to_fix}") from err
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=30) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
        _check_sha256(tmp, sha256, f"{filename} downloaded from {url}", digest)
        os.replace(tmp, target)  # atomic on one file system: readers see the old file or the whole new one
    except (urllib.error.URLError, OSError, ValueError) as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, DownloadError):
            raise DownloadError(f"{err}; {how_to_fix}") from err
        raise DownloadError(f"could not download {filename} from {url} ({err}); {how_to_fix}") from err
    return target


def _check_sha256(path: Path, expected: str, what: str, digest=sha256_of) -> None:
    actual = digest(path)
    if actual != expected:
        raise DownloadError(f"{what}: sha256 is {actual}, expected {expected} (file corrupt or a different version)")
