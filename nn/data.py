"""Datasets and the DataLoader that cuts them into (shuffled) mini-batches.

    train = TensorDataset(images, labels)                  # arrays or Tensors, same first dimension
    loader = DataLoader(train, batch_size=128, shuffle=True, seed=0)
    for x, y in loader:                                    # x: (128, ...) Tensor, y: (128,) Tensor
        ...

A TensorDataset keeps whole arrays, so a batch is gathered with one fancy index per array
(`images[indices]`), never sample by sample. Any other Dataset (`__getitem__` + `__len__`) works too,
on the slow path: one `dataset[i]` per sample, stacked.
"""
import numpy as np

import tinytensor as tt
from tinytensor import backend


class Dataset:
    """A sized collection of samples: subclasses define `__getitem__(i)` and `__len__()`."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} has no __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} has no __len__")


class TensorDataset(Dataset):
    """Samples are rows of arrays that share their first dimension: `dataset[i]` is `(a[i], b[i], ...)`.

    `transform`, when given, is applied to the first array of whatever is fetched, one sample or a whole
    batch (so it must work on a leading batch axis), e.g. random shifts of images. The arrays stay on the
    device they were given on (a Tensor on the GPU keeps its batches there)."""

    def __init__(self, *arrays, transform=None):
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        self.arrays = tuple(_as_array(a) for a in arrays)
        lengths = [len(a) for a in self.arrays]
        if len(set(lengths)) != 1:
            shapes = ", ".join(str(tuple(a.shape)) for a in self.arrays)
            raise ValueError(f"TensorDataset: the arrays have different first dimensions {lengths} "
                             f"(shapes {shapes}); each row must be one sample")
        self.transform = transform

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, index):
        """One sample (int index) or a batch (slice or integer array), as a tuple of arrays."""
        items = tuple(a[index] for a in self.arrays)
        if self.transform is not None:
            items = (self.transform(items[0]),) + items[1:]
        return items

    def state_dict(self):
        """The transform's state, when it has one (a random augmentation's generator), else {}."""
        return {"transform": self.transform.state_dict()} if hasattr(self.transform, "state_dict") else {}

    def load_state_dict(self, state):
        if "transform" in state:
            self.transform.load_state_dict(state["transform"])


class DataLoader:
    """Iterate over `dataset` in batches of Tensors.

    shuffle: a new order every epoch, drawn from a generator seeded once with `seed` (None: from
    tinytensor's generator, so tt.manual_seed makes runs repeatable); the k-th epoch of two loaders
    with the same seed is the same. Without shuffle nothing is drawn, so making a validation loader
    leaves the random numbers of everything else unchanged. drop_last: skip a final batch smaller than
    batch_size. device: where the batches go ('cpu', 'cuda'); by default they stay where the dataset's
    arrays are.

    state_dict() records where the loader is: the shuffle generator as it was when the current epoch's
    order was drawn, the batches of that epoch already given out, and the dataset's own state (e.g. a
    random augmentation's generator). A loader given it by load_state_dict() continues with the next
    batch of that same order, as PyTorch's stateful loaders do."""

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, device=None):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, batch_size, shuffle, drop_last
        self.device = None if device is None else backend.parse_device(device)
        self._rng = None
        if shuffle:
            if seed is None:
                seed = int(tt.random.generator("cpu").integers(2 ** 63))
            self._rng = np.random.default_rng(seed)
        self._epoch_start = None     # the shuffle generator's state before this epoch's order was drawn
        self._batches_done = 0       # batches of the current epoch given out so far
        self._skip = 0               # batches to skip at the start of the next epoch (after load_state_dict)

    def __len__(self):
        full, rest = divmod(len(self.dataset), self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            self._epoch_start = self._rng.bit_generator.state
            order = self._rng.permutation(n)
        else:
            order = np.arange(n)
        first, self._skip = self._skip, 0
        for index in range(first, len(self)):
            start = index * self.batch_size
            batch = self._batch(order[start:start + self.batch_size])
            self._batches_done = index + 1   # counted before it is used: a state taken meanwhile resumes after it
            yield batch
        self._batches_done = 0

    def state_dict(self):
        """{'generator': shuffle generator state or None, 'batches_done': int, 'dataset': its state,
        and the sizes the state is for}. Plain numbers and strings: tt.save writes it as it is."""
        generator = self._rng.bit_generator.state if self.shuffle else None
        done = self._skip                    # restored and not iterated yet: the position it was given
        if 0 < self._batches_done < len(self):
            generator, done = self._epoch_start, self._batches_done
        state = {"generator": generator, "batches_done": done, "samples": len(self.dataset),
                 "batch_size": self.batch_size}
        if hasattr(self.dataset, "state_dict"):
            state["dataset"] = self.dataset.state_dict()
        return state

    def load_state_dict(self, state):
        """Continue from `state` (from state_dict()): the next iteration gives the batches not given yet."""
        saved, here = (state["samples"], state["batch_size"]), (len(self.dataset), self.batch_size)
        if saved != here:
            raise ValueError(f"DataLoader.load_state_dict: the state is for {saved[0]} samples in batches of "
                             f"{saved[1]}, this loader has {here[0]} samples in batches of {here[1]}; "
                             "the order and position would not carry over")
        if (state["generator"] is None) == self.shuffle:
            raise ValueError(f"DataLoader.load_state_dict: the state is from a loader with shuffle="
                             f"{state['generator'] is not None}, this one has shuffle={self.shuffle}")
        if self.shuffle:
            self._rng.bit_generator.state = state["generator"]
        self._skip, self._batches_done = state["batches_done"], 0
        if "dataset" in state:
            self.dataset.load_state_dict(state["dataset"])

    def _batch(self, indices):
        if isinstance(self.dataset, TensorDataset):       # fast path: one gather per array
            device = backend.device_of(self.dataset.arrays[0])
            with backend.on_device(device):
                arrays = self.dataset[backend.move(indices, device)]   # CuPy wants CuPy indices
        else:                                              # any Dataset: sample by sample, then stack
            samples = [self.dataset[int(i)] for i in indices]
            if not isinstance(samples[0], tuple):
                samples = [(s,) for s in samples]
            arrays = tuple(_stack([s[k] for s in samples]) for k in range(len(samples[0])))
        return tuple(self._to_tensor(a) for a in arrays)

    def _to_tensor(self, array):
        device = self.device or backend.device_of(array)
        array = backend.move(array, device)
        if array.dtype == np.float64:     # float data trains in float32 (the default dtype)
            with backend.on_device(device):
                array = array.astype(np.float32)
        return tt.as_tensor(array)   # a fresh array from the gather: shared, not copied


def _as_array(value):
    """The array of a Tensor, NumPy or CuPy array (kept on its device), or a list as a NumPy array."""
    if isinstance(value, tt.Tensor):
        return value.detach().data
    return value if backend.is_array(value) else np.asarray(value)


def _stack(values):
    """Stack samples (arrays, Tensors or Python numbers) along a new first axis."""
    values = [v.detach().data if isinstance(v, tt.Tensor) else v for v in values]
    if backend.is_array(values[0]):
        xp = backend.xp_for(backend.device_of(values[0]))
        return xp.stack(values)
    return np.asarray(values)
