"""Optimizer: holds parameter groups and per-parameter state; subclasses write `step`.

A parameter group is a dict: {"params": [...], "lr": ..., other settings}. Settings missing from a
group come from the optimizer's defaults, so `[{"params": decay}, {"params": no_decay, "weight_decay":
0}]` gives biases and norms their own weight decay. Updates change `p.data` in place. Each step is
written first as its formula; while tt.ops.fast.enabled() it runs an in-place twin beside it instead,
which reuses one scratch array per shape rather than making temporaries (same values, checked in
tests/tinytensor/test_fused.py).
"""
import tinytensor as tt
from tinytensor import backend


class Optimizer:
    def __init__(self, params, defaults):
        self.defaults = defaults
        self.param_groups = []
        self.state = {}          # Parameter -> dict of arrays and numbers (hashed by identity)
        self._scratch = {}       # (shape, dtype, device) -> a work array for updates
        params = [params] if isinstance(params, tt.Tensor) else list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty list of parameters")
        if not isinstance(params[0], dict):
            params = [{"params": params}]
        for group in params:
            self.add_param_group(group)

    def add_param_group(self, group):
        """Add a group of parameters with its own settings (the others come from the defaults)."""
        group = dict(group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, tt.Tensor) else list(params)
        for setting, value in self.defaults.items():
            group.setdefault(setting, value)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in group["params"]:
            if not isinstance(p, tt.Tensor) or not p.is_leaf or not p.requires_grad:
                raise ValueError(f"{type(self).__name__} can only optimize leaf tensors that require "
                                 f"grad, got {p!r:.80}")
            if id(p) in seen:
                raise ValueError(f"a parameter of shape {tuple(p.shape)} appears in more than one "
                                 "parameter group (or twice in one)")
            seen.add(id(p))
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Forget the gradients: None (the default, and cheapest), or new zero tensors."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None if set_to_none or p.grad is None else tt.zeros_like(p.grad)

    def step(self, closure=None):
        raise NotImplementedError

    def _evaluate(self, closure):
        """The loss from `closure` (which recomputes it and calls backward), or None."""
        if closure is None:
            return None
        with tt.enable_grad():
            return closure()

    def _scratch_like(self, array):
        """A work array of the same shape, dtype and device (its contents are garbage)."""
        key = (array.shape, array.dtype.str, backend.device_of(array))
        scratch = self._scratch.get(key)
        if scratch is None:
            with backend.on_device(key[2]):
                scratch = self._scratch[key] = backend.xp_for(key[2]).empty_like(array)
        return scratch

    # ------------------------------------------------------------------ state dict
    def state_dict(self):
        """{"state": {index: {name: Tensor or number}}, "param_groups": [{settings, "params": [index]}]}.

        Parameters are numbered in group order; tensors share memory with the live state."""
        index = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index[id(p)] = len(index)
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index[id(p)]] = {
                        name: tt.as_tensor(value) if backend.is_array(value) else value
                        for name, value in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Take settings and state (copied, onto each parameter's device and dtype) from state_dict."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the state dict has "
                             f"{len(saved_groups)} parameter group(s), the optimizer has {len(self.param_groups)}")
        params = []
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{type(self).__name__}.load_state_dict: group {i} has "
                                 f"{len(saved['params'])} parameter(s) in the state dict and "
                                 f"{len(group['params'])} in the optimizer")
            params.extend(zip(saved["params"], group["params"]))
        for saved, group in zip(saved_groups, self.param_groups):
            group.update({k: v for k, v in saved.items() if k != "params"})
        saved_state = {int(k): v for k, v in state_dict["state"].items()}
        self.state = {}
        for index, p in params:
            if index in saved_state:
                self.state[p] = {name: _state_value(value, p, name)
                                 for name, value in saved_state[index].items()}


def _state_value(value, param, name):
    """A saved state entry as this optimizer keeps it: arrays copied onto the parameter's device
    (floating ones in its dtype), numbers unchanged."""
    if isinstance(value, tt.Tensor):
        value = value.data
    if not backend.is_array(value):
        return value
    if value.ndim and value.shape != param.shape:
        raise ValueError(f"optimizer state {name!r} has shape {tuple(value.shape)} but its parameter "
                         f"has shape {tuple(param.shape)}")
    dtype = param.dtype if value.dtype.kind == "f" else value.dtype
    with backend.on_device(param.device):
        return backend.xp_for(param.device).array(backend.move(value, param.device), dtype=dtype)
