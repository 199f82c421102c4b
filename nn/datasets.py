"""MNIST and Fashion-MNIST: 28x28 grey images of digits / clothes, 10 classes, 60,000 + 10,000 images.

    train = MNIST("train")                    # 55,000 images: the training set minus its last 5,000
    val = MNIST("val")                        # those last 5,000, for early stopping and model choice
    test = MNIST("test")                      # the 10,000 test images, kept apart until the end
    x, y = train[:8]                          # x (8, 1, 28, 28) float32, normalised; y (8,) int64

Where the files come from, first found wins: `data_dir` when given; else `$TINYTENSOR_DATA/mnist`,
`../shared/data/mnist` (from the working directory or beside the repository) and the download cache
(`tinytensor.download.cache_dir()/mnist`, normally ~/.cache/tinytensor/mnist); else they are downloaded
into `data_dir` or the cache. Each of the four files may be gzipped or raw. Files found locally are
checked by their IDX headers and counts; downloaded and cached ones by the sha256 of their uncompressed
content (so a mirror that recompressed the .gz still passes).
"""
import functools
import gzip
import hashlib
import os
import zlib
from pathlib import Path

import numpy as np

import tinytensor as tt
from tinytensor import backend
from tinytensor.download import DownloadError, cache_dir, download

from .data import TensorDataset

# IDX header: 0x00 0x00, a type code, the number of dimensions; then each dimension as a big-endian uint32.
IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
             0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


class DatasetFileError(ValueError):
    """A data file exists but is not what it should be (foreign, truncated, wrong counts)."""


def read_idx(path):
    """Read an IDX file (gzipped or raw) into a NumPy array, checking its header against its size."""
    path = Path(path)
    raw = _read_maybe_gzipped(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise DatasetFileError(f"{path} is not an IDX file: it starts with bytes {raw[:4].hex(' ') or '(none)'}, "
                               "expected 00 00 <type 08-0e> <number of dimensions>")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetFileError(f"{path} is truncated: {len(raw)} bytes, shorter than its {header}-byte header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(IDX_TYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        problem = "is truncated" if len(raw) < expected else "has trailing bytes"
        raise DatasetFileError(f"{path} {problem}: its header says shape {shape} of {dtype} "
                               f"({expected} bytes with the header) but the file has {len(raw)} bytes")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _read_maybe_gzipped(path):
    """The bytes of a file, decompressed when it is gzipped (recognised by content, not by name)."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise DatasetFileError(f"{path} is a damaged gzip file ({err}); delete it and fetch it again") from None


def uncompressed_sha256(path):
    """sha256 of a file's content after gunzip (of the file itself when it is not gzipped)."""
    try:
        return hashlib.sha256(_read_maybe_gzipped(Path(path))).hexdigest()
    except DatasetFileError as err:   # download() reports a mismatch, with the file's name
        return f"unreadable ({err})"


class _Source:
    """Where one dataset's files live and what they must contain."""

    def __init__(self, name, mirrors, files, mean, std, classes):
        self.name, self.mirrors, self.files = name, mirrors, files
        self.mean, self.std, self.classes = mean, std, classes


# file key -> (file name, sha256 of the uncompressed content, expected shape)
MNIST_SOURCE = _Source(
    "mnist",
    mirrors=["https://ossci-datasets.s3.amazonaws.com/mnist/", "https://yann.lecun.com/exdb/mnist/"],
    files={
        "train_images": ("train-images-idx3-ubyte.gz",
                         "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", (60000, 28, 28)),
        "train_labels": ("train-labels-idx1-ubyte.gz",
                         "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", (60000,)),
        "test_images": ("t10k-images-idx3-ubyte.gz",
                        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", (10000, 28, 28)),
        "test_labels": ("t10k-labels-idx1-ubyte.gz",
                        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", (10000,)),
    },
    mean=0.1307, std=0.3081, classes=[str(d) for d in range(10)])

FASHION_SOURCE = _Source(
    "fashion-mnist",
    mirrors=["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
    files={
        "train_images": ("train-images-idx3-ubyte.gz",
                         "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", (60000, 28, 28)),
        "train_labels": ("train-labels-idx1-ubyte.gz",
                         "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", (60000,)),
        "test_images": ("t10k-images-idx3-ubyte.gz",
                        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", (10000, 28, 28)),
        "test_labels": ("t10k-labels-idx1-ubyte.gz",
                        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", (10000,)),
    },
    mean=0.2860, std=0.3530,
    classes=["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
             "Ankle boot"])


def local_folders(source):
    """Folders searched before downloading (no data_dir given), in order."""
    folders = []
    if os.environ.get("TINYTENSOR_DATA"):
        folders.append(Path(os.environ["TINYTENSOR_DATA"]) / source.name)
    folders.append(Path.cwd().parent / "shared" / "data" / source.name)
    folders.append(Path(__file__).resolve().parents[2] / "shared" / "data" / source.name)
    return folders


def _find_local(folder, filename):
    """The file in `folder`, gzipped (its usual name) or raw (without .gz); None when absent."""
    for candidate in (folder / filename, folder / filename.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def fetch_files(source, data_dir=None, allow_download=True):
    """Path of each of the source's four files: found locally, in the cache, or downloaded there.
    data_dir may hold the files or a folder named after the source (data_dir/mnist) that holds them."""
    folders = [Path(data_dir), Path(data_dir) / source.name] if data_dir is not None else local_folders(source)
    target = Path(data_dir) if data_dir is not None else cache_dir() / source.name
    paths, missing, failed_mirrors = {}, [], {}
    for key, (filename, sha256, _) in source.files.items():
        found = next((p for p in map(lambda f: _find_local(f, filename), folders) if p is not None), None)
        if found is None and allow_download:
            found = _download(source, filename, sha256, target, failed_mirrors)
        elif found is None:
            cached = target / filename
            found = cached if cached.is_file() and uncompressed_sha256(cached) == sha256 else None
        if found is None:
            missing.append(filename)
        paths[key] = found
    if missing:
        looked = ", ".join(str(f) for f in dict.fromkeys(folders + [target]))
        why = ("downloads are switched off" if not allow_download
               else "downloading failed: " + "; ".join(failed_mirrors.values()))
        raise DownloadError(
            f"{source.name}: {', '.join(missing)} are not on this machine, and {why}. Looked in {looked}. "
            f"To fix: put the files (gzipped or raw, from {source.mirrors[0]}) into {target}, or pass "
            f"--data-dir (data_dir=) naming the folder that holds them or the one that holds {source.name}/.")
    return paths


def _download(source, filename, sha256, target, failed_mirrors):
    """Try each mirror that has not failed yet; the verified path, or None. `failed_mirrors` collects
    mirror -> why it failed, and a failed mirror is not asked again for the next files (offline, that
    is one wait per mirror, not one per file)."""
    # An absolute cache_subdir replaces the cache folder, so a data_dir receives the download itself.
    for mirror in source.mirrors:
        if mirror in failed_mirrors:
            continue
        try:
            return download(mirror + filename, filename, sha256, cache_subdir=str(target.resolve()),
                            digest=uncompressed_sha256)
        except DownloadError as err:
            failed_mirrors[mirror] = str(err).split("; ")[0]
    return None


@functools.lru_cache(maxsize=4)
def load_raw(source, data_dir=None, allow_download=True):
    """The four uint8 arrays of a source, checked: {'train_images': (60000, 28, 28), ...}. Cached in memory."""
    arrays = {}
    for key, path in fetch_files(source, data_dir, allow_download).items():
        array = read_idx(path)
        filename, _, shape = source.files[key]
        if array.shape != shape or array.dtype != np.uint8:
            raise DatasetFileError(f"{path}: expected {filename} with shape {shape} of uint8, found shape "
                                   f"{array.shape} of {array.dtype} (a different file under this name?)")
        arrays[key] = array
    for split in ("train", "test"):
        labels = arrays[f"{split}_labels"]
        if labels.max() >= len(source.classes):
            raise DatasetFileError(f"{source.name} {split} labels go up to {labels.max()}, "
                                   f"but there are {len(source.classes)} classes")
    return arrays


class RandomShift:
    """Shift each image by a random whole number of pixels in [-max_shift, max_shift] along both axes,
    filling the uncovered border with `fill` (the background value). Works on a batch (N, ..., H, W) or
    one image (..., H, W) at once, with one gather: no loop over images. seed None draws the seed from
    tinytensor's generator, so tt.manual_seed makes the shifts repeatable."""

    def __init__(self, max_shift=2, fill=0.0, seed=None):
        if not isinstance(max_shift, int) or max_shift < 0:
            raise ValueError(f"RandomShift: max_shift must be an int >= 0, got {max_shift!r}")
        self.max_shift, self.fill = max_shift, fill
        if seed is None:
            seed = int(tt.random.generator("cpu").integers(2 ** 63))
        self.rng = np.random.default_rng(seed)

    def __call__(self, images):
        with backend.on_device(backend.device_of(images)):     # a GPU array is worked on by its own GPU
            return self._shift(images)

    def _shift(self, images):
        xp = backend.xp_for(backend.device_of(images))
        single = images.ndim == 3 or images.ndim == 2
        batch = images[None] if single else images
        n, h, w, s = batch.shape[0], batch.shape[-2], batch.shape[-1], self.max_shift
        flat = batch.reshape(n, -1, h, w)                                    # (N, C, H, W)
        padded = xp.pad(flat, ((0, 0), (0, 0), (s, s), (s, s)), constant_values=self.fill)
        dy, dx = (xp.asarray(self.rng.integers(0, 2 * s + 1, n)) for _ in range(2))
        rows = (dy[:, None] + xp.arange(h))[:, None, :, None]                 # (N, 1, H, 1)
        cols = (dx[:, None] + xp.arange(w))[:, None, None, :]                 # (N, 1, 1, W)
        shifted = padded[xp.arange(n)[:, None, None, None], xp.arange(flat.shape[1])[:, None, None], rows, cols]
        shifted = shifted.reshape(batch.shape)
        return shifted[0] if single else shifted

    def state_dict(self):
        """The shift generator's state, to resume a run with the same shifts."""
        return {"generator": self.rng.bit_generator.state}

    def load_state_dict(self, state):
        self.rng.bit_generator.state = state["generator"]


class MNIST(TensorDataset):
    """MNIST as a TensorDataset of (images (N, 1, 28, 28) float32, labels (N,) int64).

    split: 'train' (the training set minus its last val_size images), 'val' (those last val_size) or
    'test'. normalize: (x/255 - mean) / std with the training set's mean and std, else x/255.
    augment: random shifts of up to 2 pixels each time a batch is drawn (for the training split).
    limit: keep only the first `limit` images (quick runs). device: where the arrays live."""

    source = MNIST_SOURCE

    def __init__(self, split="train", data_dir=None, val_size=5000, normalize=True, augment=False,
                 limit=None, device="cpu", download=True, seed=None):
        if split not in ("train", "val", "test"):
            raise ValueError(f"{type(self).__name__}: split must be 'train', 'val' or 'test', got {split!r}")
        if not 0 <= val_size < 60000:
            raise ValueError(f"{type(self).__name__}: val_size must be in [0, 60000), got {val_size}")
        raw = load_raw(self.source, None if data_dir is None else str(data_dir), download)
        prefix = "test" if split == "test" else "train"
        images, labels = raw[f"{prefix}_images"], raw[f"{prefix}_labels"]
        if split != "test":
            cut = len(images) - val_size
            part = slice(None, cut) if split == "train" else slice(cut, None)
            images, labels = images[part], labels[part]
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        mean, std = (self.source.mean, self.source.std) if normalize else (0.0, 1.0)
        lookup = ((np.arange(256) / 255.0 - mean) / std).astype(np.float32)   # pixel value -> input
        device = backend.parse_device(device)
        images = backend.move(lookup[images][:, None], device)                # (N, 1, 28, 28)
        labels = backend.move(labels.astype(np.int64), device)
        transform = RandomShift(2, fill=float(lookup[0]), seed=seed) if augment else None
        super().__init__(images, labels, transform=transform)
        self.split, self.classes = split, self.source.classes


class FashionMNIST(MNIST):
    """Fashion-MNIST (Zalando): the same layout as MNIST, ten kinds of clothing. See MNIST for options."""

    source = FASHION_SOURCE


DATASETS = {"mnist": MNIST, "fashion": FashionMNIST}
