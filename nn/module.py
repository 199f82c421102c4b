"""Module: the building block of networks. It owns Parameters, buffers and other Modules.

Assigning `self.weight = Parameter(...)` or `self.fc = Linear(...)` inside `__init__` registers it
(`__setattr__` below), which is how `parameters()`, `state_dict()` and `to()` find everything. Names in
a state dict join the attribute path with dots, as in PyTorch: `0.weight`, `bn.running_mean`.
"""
from collections import OrderedDict

import numpy as np

import tinytensor as tt
from tinytensor import backend


class Parameter(tt.Tensor):
    """A tensor that is a trainable weight of a Module: a leaf with requires_grad=True by default.

    Wraps the data of `data` without copying it."""
    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        array = data.data if isinstance(data, tt.Tensor) else tt.tensor(data).data
        self._set(array)
        self.requires_grad = requires_grad

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer and model: subclasses set attributes in __init__ and define forward."""

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward method")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() before "
                                 f"assigning attribute {name!r}")
        if isinstance(value, (Parameter, Module)):
            registry = self._parameters if isinstance(value, Parameter) else self._modules
            self._forget(name, keep=registry)   # a reassigned name keeps its place in order
            registry[name] = value
        elif name in self._buffers:
            if value is not None and not isinstance(value, tt.Tensor):
                raise TypeError(f"cannot assign a {type(value).__name__} to buffer {name!r} "
                                "(a Tensor or None is expected)")
            self._buffers[name] = value
        elif name in self._parameters or name in self._modules:
            if value is not None:
                kind = "nn.Parameter" if name in self._parameters else "Module"
                raise TypeError(f"cannot assign a {type(value).__name__} to {name!r}, which holds a "
                                f"{kind} (an {kind} or None is expected)")
            (self._parameters if name in self._parameters else self._modules)[name] = None
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name, keep=None):
        for registry in (self.__dict__, self._parameters, self._buffers, self._modules):
            if registry is not keep:
                registry.pop(name, None)
        self._non_persistent.discard(name)

    def __getattr__(self, name):   # called only when normal lookup fails
        for registry in ("_parameters", "_buffers", "_modules"):
            values = self.__dict__.get(registry)
            if values is not None and name in values:
                return values[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute {name!r}")

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        """Register `param` (a Parameter or None) under `name`, like `self.name = param`."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be an nn.Parameter or None, "
                            f"not {type(param).__name__}")
        self._check_new_name(name, self._parameters)
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """A tensor that belongs to the module's state but is not trained (e.g. running statistics).

        Persistent buffers are saved in state_dict; all buffers move with `to()`."""
        if tensor is not None and not isinstance(tensor, tt.Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor or None, not {type(tensor).__name__}")
        self._check_new_name(name, self._buffers)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name, module):
        """Register a submodule under `name`, like `self.name = module`."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module or None, not {type(module).__name__}")
        self._check_new_name(name, self._modules)
        self._modules[name] = module

    def _check_new_name(self, name, registry):
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"invalid name {name!r}: a non-empty string without '.' is expected")
        if name in self.__dict__ or any(name in r for r in (self._parameters, self._buffers, self._modules)
                                        if r is not registry):
            raise KeyError(f"attribute {name!r} already exists on {type(self).__name__}")

    # ------------------------------------------------------------------ walking the tree
    def named_modules(self, prefix="", memo=None):
        """(dotted name, module) for this module and every descendant, each module once."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self):
        return (module for _, module in self.named_modules())

    def named_children(self):
        return ((name, module) for name, module in self._modules.items() if module is not None)

    def children(self):
        return (module for _, module in self.named_children())

    def _named_members(self, registry, recurse=True):
        seen = set()
        modules = self.named_modules() if recurse else [("", self)]
        for prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{prefix}.{name}" if prefix else name), value

    def named_parameters(self, recurse=True):
        """(dotted name, Parameter) in registration order, own parameters first; shared ones once."""
        return self._named_members("_parameters", recurse)

    def parameters(self, recurse=True):
        return (param for _, param in self.named_parameters(recurse))

    def named_buffers(self, recurse=True):
        return self._named_members("_buffers", recurse)

    def buffers(self, recurse=True):
        return (buffer for _, buffer in self.named_buffers(recurse))

    def num_parameters(self, trainable_only=False):
        """How many numbers the parameters hold (each shared parameter counted once)."""
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    def apply(self, fn):
        """Call fn(module) on every submodule, then on self (e.g. a custom initialisation)."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes, gradients, devices
    def train(self, mode=True):
        """Training mode (dropout drops, batch norm uses batch statistics); returns self."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode: same as train(False)."""
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        """Forget the gradients: None (the default, and cheapest), or new zero arrays."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = tt.zeros_like(p.grad)

    def to(self, target):
        """Move every parameter and buffer to a device ('cpu', 'cuda') or cast the floating ones to a
        dtype, in place: the Parameter objects stay the same, so an optimizer made earlier still holds
        them. Returns self."""
        if isinstance(target, str) and target.startswith(("cpu", "cuda")):
            device = backend.parse_device(target)

            def convert(array):
                with backend.on_device(device):
                    return backend.move(array, device)
        else:
            try:
                dtype = np.dtype(target)
            except TypeError:
                raise TypeError(f"Module.to: expected a device ('cpu', 'cuda', 'cuda:N') or a floating "
                                f"dtype, got {target!r}") from None
            if dtype.kind != "f":
                raise TypeError(f"Module.to: only floating dtypes can be given, not {dtype}")

            def convert(array):
                return array.astype(dtype) if array.dtype.kind == "f" else array
        for tensor in list(self.parameters()) + list(self.buffers()):
            tensor.data = convert(tensor.data)
            if tensor.grad is not None:
                tensor.grad = tt.as_tensor(convert(tensor.grad.data))
            tensor.mark_modified()
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self, index=0):
        return self.to(f"cuda:{index}")

    def float(self):
        return self.to(tt.float32)

    def double(self):
        return self.to(tt.float64)

    def requires_grad_(self, flag=True):
        for p in self.parameters():
            p.requires_grad = flag
        return self

    # ------------------------------------------------------------------ state dict
    def state_dict(self):
        """Parameters and persistent buffers by dotted name, as detached tensors sharing their memory
        (copy them, e.g. `{k: v.numpy().copy() ...}`, to keep a snapshot while training goes on)."""
        return OrderedDict((key, value.detach()) for key, value in self._state_entries().items())

    def _state_entries(self, prefix=""):
        """dotted name -> the Parameter or persistent buffer saved under it: this module's own
        parameters, then its buffers, then each child's entries. A module reachable by two paths
        (weight tying) is listed under both, as in PyTorch, so the keys match its state dicts."""
        entries = OrderedDict()
        for name, value in list(self._parameters.items()) + list(self._buffers.items()):
            if value is not None and name not in self._non_persistent:
                entries[prefix + name] = value
        for name, module in self.named_children():
            entries.update(module._state_entries(f"{prefix}{name}."))
        return entries

    def load_state_dict(self, state_dict, strict=True):
        """Copy values (Tensors or arrays) into the parameters and buffers, keeping them on their
        device and dtype. With strict, a missing or unexpected key is an error; a wrong shape always is.
        Returns (missing_keys, unexpected_keys)."""
        entries = self._state_entries()
        missing = [key for key in entries if key not in state_dict]
        unexpected = [key for key in state_dict if key not in entries]
        problems = []
        if strict and missing:
            problems.append(f"missing keys {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys {unexpected}")
        for key, target in entries.items():
            if key in state_dict:
                shape = tuple(np.shape(_raw(state_dict[key])))
                if shape != tuple(target.shape):
                    problems.append(f"size mismatch for {key}: the checkpoint has shape {shape}, "
                                    f"the model has {tuple(target.shape)}")
        if problems:
            raise RuntimeError(f"load_state_dict into {type(self).__name__}: " + "; ".join(problems))
        for key, target in entries.items():
            if key in state_dict:
                with backend.on_device(target.device):
                    target.data[...] = backend.move(_as_array(state_dict[key]), target.device)
                target.mark_modified()
        return missing, unexpected

    # ------------------------------------------------------------------ printing
    def extra_repr(self):
        """The text inside the parentheses of this module's line in repr (its settings)."""
        return ""

    def __repr__(self):
        lines = [f"({name}): " + repr(module).replace("\n", "\n  ") for name, module in self.named_children()]
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        body = "\n  ".join(([extra] if extra else []) + lines)
        return f"{type(self).__name__}(\n  {body}\n)"


def _raw(value):
    return value.data if isinstance(value, tt.Tensor) else value


def _as_array(value):
    """A NumPy or CuPy array from a Tensor, an array, or a nested list of numbers."""
    value = _raw(value)
    return value if backend.is_array(value) else np.asarray(value)


class _ModuleSequence(Module):
    """Modules kept in order under the names "0", "1", ...: indexing, len, iteration, append."""

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return self._from_items(items[index])
        return items[self._position(index)][1]

    def _position(self, index):
        if not -len(self) <= index < len(self):
            raise IndexError(f"{type(self).__name__} index {index} is out of range for {len(self)} module(s)")
        return index % len(self)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self


class Sequential(_ModuleSequence):
    """Modules applied one after another: Sequential(Linear(2, 8), ReLU(), Linear(8, 1)).

    Also takes one OrderedDict of name -> module. Indexing gives a module (or a Sequential for a slice)."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], dict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for module in modules:
                self.append(module)

    @staticmethod
    def _from_items(items):
        return Sequential(OrderedDict(items))

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x


class ModuleList(_ModuleSequence):
    """A list of modules whose parameters the parent sees (a plain Python list would hide them)."""

    def __init__(self, modules=()):
        super().__init__()
        self.extend(modules)

    @staticmethod
    def _from_items(items):
        return ModuleList(module for _, module in items)

    def __setitem__(self, index, module):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList holds Modules, not {type(module).__name__}")
        self._modules[str(self._position(index))] = module

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def insert(self, index, module):
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._modules.clear()
        self.extend(modules)


class ModuleDict(Module):
    """A dict of modules (string keys, insertion order) whose parameters the parent sees."""

    def __init__(self, modules=None):
        super().__init__()
        for name, module in (modules or {}).items():
            self[name] = module

    def __getitem__(self, name):
        return self._modules[name]

    def __setitem__(self, name, module):
        if name in self._modules:
            if not isinstance(module, Module):
                raise TypeError(f"ModuleDict holds Modules, not {type(module).__name__}")
            self._modules[name] = module
        else:
            self.add_module(name, module)

    def __delitem__(self, name):
        del self._modules[name]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, name):
        return name in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()
