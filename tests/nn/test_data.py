"""DataLoader batching and shuffling, IDX parsing and its errors, MNIST loading (offline and from shared data)."""
import gzip
import hashlib

import numpy as np
import pytest

import tinytensor as tt
from tinytensor.nn import datasets
from tinytensor.nn.data import DataLoader, Dataset, TensorDataset
from tinytensor.nn.datasets import FashionMNIST, MNIST, DatasetFileError, RandomShift, read_idx
from tinytensor.download import DownloadError


# ------------------------------------------------------------------------------------- DataLoader
def make_dataset(n=10):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    return TensorDataset(x, np.arange(n))


def test_batches_cover_the_dataset_in_order_with_a_short_last_batch():
    loader = DataLoader(make_dataset(10), batch_size=4)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert [tuple(x.shape) for x, _ in batches] == [(4, 3), (4, 3), (2, 3)]
    assert np.concatenate([y.numpy() for _, y in batches]).tolist() == list(range(10))
    x, y = batches[1]
    assert isinstance(x, tt.Tensor) and x.dtype == tt.float32 and y.dtype == tt.int64
    np.testing.assert_array_equal(x.numpy(), np.arange(12, 24).reshape(4, 3))


def test_drop_last_skips_the_short_batch():
    loader = DataLoader(make_dataset(10), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert [len(y) for _, y in loader] == [4, 4]
    assert len(DataLoader(make_dataset(8), batch_size=4, drop_last=True)) == 2


def epoch_orders(loader, epochs=3):
    return [np.concatenate([y.numpy() for _, y in loader]).tolist() for _ in range(epochs)]


def test_shuffle_is_a_permutation_new_each_epoch_and_repeatable_from_the_seed():
    orders = epoch_orders(DataLoader(make_dataset(50), batch_size=8, shuffle=True, seed=3))
    assert all(sorted(order) == list(range(50)) for order in orders)
    assert orders[0] != orders[1] != orders[2] and orders[0] != list(range(50))
    assert orders == epoch_orders(DataLoader(make_dataset(50), batch_size=8, shuffle=True, seed=3))
    assert orders != epoch_orders(DataLoader(make_dataset(50), batch_size=8, shuffle=True, seed=4))


def test_without_a_seed_shuffling_follows_manual_seed():
    tt.manual_seed(7)
    first = epoch_orders(DataLoader(make_dataset(30), batch_size=5, shuffle=True), 1)
    tt.manual_seed(7)
    assert first == epoch_orders(DataLoader(make_dataset(30), batch_size=5, shuffle=True), 1)


def test_a_loader_without_shuffle_draws_no_random_numbers():
    tt.manual_seed(5)
    expected = tt.rand(3).numpy()
    tt.manual_seed(5)
    loader = DataLoader(make_dataset(10), batch_size=4)
    list(loader)
    loader.state_dict()
    np.testing.assert_array_equal(tt.rand(3).numpy(), expected)


def batches_of(loader, count):
    """The labels of the next `count` batches, starting a new epoch when one ends."""
    seen = []
    while len(seen) < count:
        for _, y in loader:
            seen.append(y.numpy().tolist())
            if len(seen) == count:
                break
    return seen


@pytest.mark.parametrize("stop_after", [0, 3, 5, 7])     # before any batch, mid-epoch, at an epoch's end
@pytest.mark.parametrize("shuffle", [True, False])
def test_a_restored_loader_continues_with_the_same_batches(tmp_path, stop_after, shuffle):
    dataset = make_dataset(19)                           # 5 batches of 4 per epoch, the last one short
    whole = batches_of(DataLoader(dataset, batch_size=4, shuffle=shuffle, seed=1), 12)

    first = DataLoader(dataset, batch_size=4, shuffle=shuffle, seed=1)
    head = batches_of(first, stop_after)
    tt.save({"loader": first.state_dict()}, tmp_path / "loader.npz")
    second = DataLoader(dataset, batch_size=4, shuffle=shuffle, seed=2)     # another seed: all comes from the state
    second.load_state_dict(tt.load(tmp_path / "loader.npz")["loader"])
    assert second.state_dict() == first.state_dict()     # a state taken again before iterating is the same
    assert head + batches_of(second, 12 - stop_after) == whole


def test_restored_loader_continues_the_augmentation_too():
    images = np.random.default_rng(0).random((12, 1, 6, 6)).astype(np.float32)
    dataset = TensorDataset(images, np.arange(12), transform=RandomShift(2, seed=0))
    loader = DataLoader(dataset, batch_size=4, shuffle=True, seed=0)
    iterator = iter(loader)
    next(iterator)
    state = loader.state_dict()
    expected = [x.numpy() for x, _ in iterator]

    other = DataLoader(TensorDataset(images, np.arange(12), transform=RandomShift(2, seed=9)), batch_size=4,
                       shuffle=True, seed=9)
    other.load_state_dict(state)
    again = [x.numpy() for x, _ in other]
    assert len(again) == 2
    for a, b in zip(expected, again):
        np.testing.assert_array_equal(a, b)


def test_loading_a_state_from_another_loader_is_refused():
    state = DataLoader(make_dataset(10), batch_size=4, shuffle=True, seed=0).state_dict()
    with pytest.raises(ValueError, match="state is for 10 samples in batches of 4, this loader has 12 samples"):
        DataLoader(make_dataset(12), batch_size=4, shuffle=True).load_state_dict(state)
    with pytest.raises(ValueError, match="from a loader with shuffle=True, this one has shuffle=False"):
        DataLoader(make_dataset(10), batch_size=4).load_state_dict(state)


def test_samples_stay_paired_with_their_labels_after_shuffling():
    for x, y in DataLoader(make_dataset(20), batch_size=6, shuffle=True, seed=0):
        np.testing.assert_array_equal(x.numpy()[:, 0], 3 * y.numpy())


def test_fast_path_gathers_once_per_array_not_per_sample():
    class CountingDataset(TensorDataset):
        calls = 0

        def __getitem__(self, index):
            CountingDataset.calls += 1
            return super().__getitem__(index)

    list(DataLoader(CountingDataset(np.zeros((100, 2)), np.zeros(100)), batch_size=50))
    assert CountingDataset.calls == 2


def test_any_dataset_works_sample_by_sample():
    class Squares(Dataset):
        def __len__(self):
            return 7

        def __getitem__(self, i):
            return np.array([i, i * i], dtype=np.float32), i

    batches = list(DataLoader(Squares(), batch_size=3))
    assert [tuple(x.shape) for x, _ in batches] == [(3, 2), (3, 2), (1, 2)]
    np.testing.assert_array_equal(batches[1][0].numpy(), [[3, 9], [4, 16], [5, 25]])
    assert batches[2][1].tolist() == [6]


def test_tensor_dataset_accepts_tensors_and_rejects_mismatched_lengths():
    ds = TensorDataset(tt.ones(4, 2), tt.arange(4))
    x, y = ds[2]
    assert x.tolist() == [1.0, 1.0] and int(y) == 2
    with pytest.raises(ValueError, match=r"different first dimensions \[4, 3\]"):
        TensorDataset(np.zeros((4, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        DataLoader(ds, batch_size=0)


def test_loader_moves_batches_to_the_device(device):
    (x, y), = list(DataLoader(make_dataset(4), batch_size=4, device=device))
    assert x.device.startswith(device) and y.device.startswith(device)


def test_random_shift_moves_whole_images_within_the_limit_and_fills_the_border():
    images = np.zeros((200, 1, 9, 9), np.float32)
    images[:, 0, 4, 4] = 1.0                               # one bright pixel in the centre
    shifted = RandomShift(2, fill=-1.0, seed=0)(images)
    assert shifted.shape == images.shape
    rows, cols = np.nonzero(shifted[:, 0] == 1.0)[1:]
    assert len(rows) == 200                                  # each image keeps its pixel
    assert set(rows - 4) == set(cols - 4) == {-2, -1, 0, 1, 2}
    assert (shifted[:, 0, :, 0] == -1).any()                 # a shifted-in border takes the fill value
    one = RandomShift(1, seed=0)(images[0])
    assert one.shape == (1, 9, 9) and one.sum() == 1.0


def test_random_shift_without_a_seed_follows_manual_seed():
    images = np.random.default_rng(0).random((16, 1, 6, 6)).astype(np.float32)
    tt.manual_seed(3)
    first = RandomShift(2)(images)
    tt.manual_seed(3)
    np.testing.assert_array_equal(RandomShift(2)(images), first)
    with pytest.raises(ValueError, match="max_shift must be an int >= 0, got -1"):
        RandomShift(-1)


# ------------------------------------------------------------------------------------- IDX files
def idx_bytes(array, type_code=0x08):
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(">" + array.dtype.str[1:] if array.dtype.itemsize > 1 else array.dtype).tobytes()


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_raw_and_gzipped(tmp_path, compress):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    data = idx_bytes(images)
    path = tmp_path / "images.idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    np.testing.assert_array_equal(read_idx(path), images)


def test_read_idx_big_endian_floats(tmp_path):
    values = np.array([[1.5, -2.0], [3.25, 0.0]], dtype=np.float32)
    (tmp_path / "f.idx").write_bytes(idx_bytes(values, 0x0D))
    out = read_idx(tmp_path / "f.idx")
    np.testing.assert_array_equal(out, values)
    assert out.dtype.isnative


def test_read_idx_rejects_a_foreign_file(tmp_path):
    (tmp_path / "x.gz").write_bytes(b"PK\x03\x04 a zip, not an idx file")
    with pytest.raises(DatasetFileError, match="is not an IDX file: it starts with bytes 50 4b 03 04"):
        read_idx(tmp_path / "x.gz")


def test_read_idx_rejects_truncated_and_padded_files(tmp_path):
    data = idx_bytes(np.zeros((5, 4), np.uint8))
    (tmp_path / "short").write_bytes(gzip.compress(data[:-3]))
    with pytest.raises(DatasetFileError, match=r"truncated: its header says shape \(5, 4\) of uint8 \(32 bytes with the header\) but the file has 29 bytes"):
        read_idx(tmp_path / "short")
    (tmp_path / "long").write_bytes(data + b"\0")
    with pytest.raises(DatasetFileError, match="trailing bytes"):
        read_idx(tmp_path / "long")
    (tmp_path / "broken.gz").write_bytes(gzip.compress(data)[:-10])
    with pytest.raises(DatasetFileError, match="damaged gzip"):
        read_idx(tmp_path / "broken.gz")


TINY = {"train_images": (60, 28, 28), "train_labels": (60,), "test_images": (10, 28, 28), "test_labels": (10,)}


def tiny_source(tmp_path, counts=TINY, mirror=None):
    """A made-up dataset of 60 + 10 images written as IDX files, with its own _Source."""
    folder = tmp_path / "tiny"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    files = {}
    for key, shape in counts.items():
        name = f"{key}.idx.gz"
        array = rng.integers(0, 10 if "labels" in key else 256, shape).astype(np.uint8)
        data = idx_bytes(array)
        (folder / name).write_bytes(gzip.compress(data))
        files[key] = (name, hashlib.sha256(data).hexdigest(), TINY[key])
    source = datasets._Source("tiny", [mirror or (tmp_path / "nowhere").as_uri() + "/"], files, 0.5, 0.25,
                              [str(d) for d in range(10)])
    return source, folder


class Tiny(MNIST):
    pass


def test_dataset_from_a_folder_with_split_normalisation_and_limit(tmp_path):
    Tiny.source, folder = tiny_source(tmp_path)
    train, val = Tiny("train", data_dir=folder, val_size=20), Tiny("val", data_dir=folder, val_size=20)
    test = Tiny("test", data_dir=folder, normalize=False, limit=4)
    assert (len(train), len(val), len(test)) == (40, 20, 4)
    raw = read_idx(folder / "train_images.idx.gz")
    x, y = val[:3]
    assert x.shape == (3, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(x[:, 0], (raw[40:43] / 255 - 0.5) / 0.25, rtol=1e-6)
    np.testing.assert_allclose(test[:][0][:, 0], read_idx(folder / "test_images.idx.gz")[:4] / 255, rtol=1e-6)


def test_data_dir_may_be_the_folder_that_holds_the_dataset_folder(tmp_path):
    Tiny.source, folder = tiny_source(tmp_path)          # the files are in tmp_path / "tiny"
    assert len(Tiny("test", data_dir=tmp_path)) == 10


def test_wrong_counts_are_reported(tmp_path):
    Tiny.source, folder = tiny_source(tmp_path, counts={**TINY, "train_labels": (59,)})
    with pytest.raises(DatasetFileError, match=r"expected train_labels.idx.gz with shape \(60,\).*\(59,\)"):
        Tiny("train", data_dir=folder)


def test_offline_error_lists_missing_files_and_where_to_put_them(tmp_path, monkeypatch):
    Tiny.source, _ = tiny_source(tmp_path)
    empty = tmp_path / "empty"
    tries = []
    real_download = datasets.download
    monkeypatch.setattr(datasets, "download", lambda url, *a, **k: tries.append(url) or real_download(url, *a, **k))
    with pytest.raises(DownloadError) as caught:     # the mirror is a file:// URL that does not exist
        Tiny("train", data_dir=empty)
    message = str(caught.value)
    assert "train_images.idx.gz, train_labels.idx.gz, test_images.idx.gz, test_labels.idx.gz are not on" in message
    assert f"Looked in {empty}, {empty / 'tiny'}. To fix: put the files (gzipped or raw, from file:" in message
    assert f"into {empty}, or pass --data-dir" in message and "the one that holds tiny/" in message
    assert message.count("could not download") == 1 and len(tries) == 1   # the dead mirror is asked once
    with pytest.raises(DownloadError, match="downloads are switched off"):
        Tiny("train", data_dir=empty, download=False)


def test_download_verifies_the_uncompressed_content(tmp_path):
    """Mirror files recompressed differently still pass; a file with other content is refused."""
    Tiny.source, folder = tiny_source(tmp_path, mirror=(tmp_path / "tiny").as_uri() + "/")
    target = tmp_path / "downloads"
    train = Tiny("train", data_dir=target, val_size=10)
    assert len(train) == 50 and (target / "train_images.idx.gz").is_file()
    name, sha, shape = Tiny.source.files["test_labels"]
    Tiny.source.files["test_labels"] = (name, "0" * 64, shape)
    with pytest.raises(DownloadError, match="sha256 is [0-9a-f]{64}, expected 0000"):
        Tiny("test", data_dir=tmp_path / "other")


# ------------------------------------------------------------------------------------- real MNIST
def test_real_mnist_and_fashion_from_shared_data(shared_data):
    folder = shared_data / "mnist"
    train, val, test = (MNIST(split, data_dir=folder) for split in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (55000, 5000, 10000)
    assert test.arrays[1][:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(test.arrays[1]).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    everything = np.concatenate([train.arrays[0], val.arrays[0]])
    assert abs(everything.mean()) < 1e-3 and abs(everything.std() - 1) < 1e-3   # normalised by 0.1307/0.3081
    fashion = FashionMNIST("test", data_dir=shared_data / "fashion-mnist")
    assert np.bincount(fashion.arrays[1]).tolist() == [1000] * 10
