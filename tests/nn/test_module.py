"""Module mechanics: registration, names and order, state dicts, modes, devices and dtypes, repr."""
import numpy as np
import pytest

from tinytensor import nn
import tinytensor as tt


class Block(nn.Module):
    """A module with a parameter, a submodule, and buffers, to see where each one is registered."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(tt.ones(3))
        self.fc = nn.Linear(3, 2)
        self.bn = nn.BatchNorm1d(2)
        self.register_buffer("steps", tt.zeros(1))
        self.register_buffer("cache", tt.zeros(2), persistent=False)
        self.note = "plain attribute"

    def forward(self, x):
        return self.bn(self.fc(x * self.scale))


def test_registration_sorts_attributes_by_kind():
    block = Block()
    assert list(block._parameters) == ["scale"]
    assert list(block._modules) == ["fc", "bn"]
    assert list(block._buffers) == ["steps", "cache"]
    assert block.note == "plain attribute" and "note" not in block._parameters
    assert block.scale is block._parameters["scale"]


def test_named_parameters_order_and_names_like_pytorch():
    names = [name for name, _ in Block().named_parameters()]
    assert names == ["scale", "fc.weight", "fc.bias", "bn.weight", "bn.bias"]
    assert [n for n, _ in Block().named_parameters(recurse=False)] == ["scale"]


def test_named_buffers_and_state_dict_keys():
    block = Block()
    assert [n for n, _ in block.named_buffers()] == ["steps", "cache", "bn.running_mean", "bn.running_var",
                                                     "bn.num_batches_tracked"]
    assert list(block.state_dict()) == ["scale", "steps", "fc.weight", "fc.bias", "bn.weight", "bn.bias",
                                        "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
    sequential = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.BatchNorm1d(3))
    assert list(sequential.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias", "2.running_mean",
                                             "2.running_var", "2.num_batches_tracked"]
    assert block.state_dict()["bn.num_batches_tracked"].dtype == tt.int64


def test_shared_parameter_listed_once():
    layer = nn.Linear(2, 2)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    assert len(list(model.parameters())) == 2
    assert model.num_parameters() == 6 == nn.utils.count_parameters(model)
    assert len(list(model.modules())) == 3   # the Sequential, the Linear once, the ReLU


def test_children_modules_and_named_modules():
    block = Block()
    assert [name for name, _ in block.named_children()] == ["fc", "bn"]
    assert list(block.children()) == [block.fc, block.bn]
    assert [name for name, _ in block.named_modules()] == ["", "fc", "bn"]


def test_reassignment_and_deletion_keep_registries_consistent():
    block = Block()
    block.fc = nn.Linear(3, 5)
    assert block.fc.out_features == 5 and list(block._modules) == ["fc", "bn"]
    block.steps = tt.ones(1)
    assert "steps" in block._buffers and block.steps.item() == 1
    with pytest.raises(TypeError, match="scale"):
        block.scale = tt.ones(3)          # a plain tensor cannot replace a Parameter
    block.scale = None
    assert [n for n, _ in block.named_parameters(recurse=False)] == []
    del block.fc
    assert "fc" not in block._modules
    with pytest.raises(AttributeError, match="fc"):
        block.fc


def test_forgetting_super_init_is_explained():
    class Broken(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)
    with pytest.raises(AttributeError, match="super"):
        Broken()


def test_register_errors_name_the_problem():
    block = Block()
    with pytest.raises(KeyError, match="already exists"):
        block.register_buffer("fc", tt.zeros(1))
    with pytest.raises(TypeError, match="Parameter"):
        block.register_parameter("w", tt.zeros(1))
    with pytest.raises(KeyError, match="'a.b'"):
        block.add_module("a.b", nn.ReLU())


def test_parameter_is_a_leaf_requiring_grad_sharing_data():
    t = tt.ones(2)
    p = nn.Parameter(t)
    assert isinstance(p, tt.Tensor) and p.requires_grad and p.is_leaf
    assert p.data is t.data
    assert "Parameter containing" in repr(p)


def test_train_eval_recursive():
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(0.5)))
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_zero_grad_none_or_new_zeros_never_in_place():
    layer = nn.Linear(2, 2)
    shared = tt.ones(2, 2)
    layer.weight.grad = shared
    layer.zero_grad(set_to_none=False)
    assert layer.weight.grad is not shared and shared.data.sum() == 4
    assert layer.weight.grad.data.sum() == 0
    layer.zero_grad()
    assert layer.weight.grad is None


def test_state_dict_round_trip_and_sharing():
    a, b = Block(), Block()
    a.steps.data[...] = 7
    b.load_state_dict(a.state_dict())
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=name)
        assert x.data is not y.data
    assert a.state_dict()["fc.weight"].data is a.fc.weight.data   # shares memory, like PyTorch
    assert not a.state_dict()["fc.weight"].requires_grad


def test_load_state_dict_accepts_numpy_arrays():
    layer = nn.Linear(2, 3)
    weight = np.arange(6, dtype=np.float64).reshape(3, 2)
    identity = layer.weight.data
    layer.load_state_dict({"weight": weight, "bias": np.zeros(3)})
    assert layer.weight.data is identity and layer.weight.dtype == tt.float32   # in place, dtype kept
    np.testing.assert_array_equal(layer.weight.detach().numpy(), weight)


# The names and shapes PyTorch gives each layer's state_dict, so weights move with a NumPy round trip.
PYTORCH_STATE = [
    (lambda: nn.Linear(3, 2), {"weight": (2, 3), "bias": (2,)}),
    (lambda: nn.Linear(3, 2, bias=False), {"weight": (2, 3)}),
    (lambda: nn.Conv2d(4, 6, 3, groups=2), {"weight": (6, 2, 3, 3), "bias": (6,)}),
    (lambda: nn.Conv2d(2, 4, (3, 1), bias=False), {"weight": (4, 2, 3, 1)}),
    (lambda: nn.BatchNorm2d(3), {"weight": (3,), "bias": (3,), "running_mean": (3,), "running_var": (3,),
                                 "num_batches_tracked": ()}),
    (lambda: nn.BatchNorm1d(3, affine=False), {"running_mean": (3,), "running_var": (3,),
                                               "num_batches_tracked": ()}),
    (lambda: nn.BatchNorm1d(3, track_running_stats=False), {"weight": (3,), "bias": (3,)}),
    (lambda: nn.LayerNorm((2, 3)), {"weight": (2, 3), "bias": (2, 3)}),
    (lambda: nn.LayerNorm(4, elementwise_affine=False), {}),
    (lambda: nn.Embedding(5, 4, padding_idx=0), {"weight": (5, 4)}),
    (lambda: nn.CrossEntropyLoss(weight=[1.0, 2.0]), {"weight": (2,)}),
    (lambda: nn.Sequential(nn.Dropout(), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Identity()), {}),
]


@pytest.mark.parametrize("make, expected", PYTORCH_STATE)
def test_state_dict_names_and_shapes_match_pytorch(make, expected):
    state = make().state_dict()
    assert {key: tuple(value.shape) for key, value in state.items()} == expected
    assert list(state) == list(expected)        # and in PyTorch's order


def test_numpy_round_trip_reproduces_the_outputs(rng):
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, groups=2), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 5 * 5, 3))
    model(tt.tensor(rng.standard_normal((8, 2, 5, 5)).astype(np.float32)))   # moves the running stats
    arrays = {key: value.numpy().copy() for key, value in model.state_dict().items()}
    tt.manual_seed(1)
    fresh = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, groups=2), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 5 * 5, 3))
    fresh.load_state_dict(arrays)
    x = tt.tensor(rng.standard_normal((2, 2, 5, 5)).astype(np.float32))
    with tt.no_grad():
        np.testing.assert_array_equal(fresh.eval()(x).numpy(), model.eval()(x).numpy())
    assert int(fresh[1].num_batches_tracked.item()) == 1


def test_a_shared_module_is_saved_under_each_name_like_pytorch():
    layer = nn.Linear(2, 2)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert len(list(model.parameters())) == 2               # but trained once
    model.load_state_dict({key: np.full(tuple(v.shape), 3.0) for key, v in model.state_dict().items()})
    assert (layer.weight.detach().numpy() == 3).all()


def test_load_state_dict_strict_errors_name_keys_and_shapes():
    layer = nn.Linear(2, 3)
    state = layer.state_dict()
    with pytest.raises(RuntimeError, match=r"missing keys \['bias'\]"):
        layer.load_state_dict({"weight": state["weight"]})
    with pytest.raises(RuntimeError, match=r"unexpected keys \['extra'\]"):
        layer.load_state_dict({**state, "extra": tt.zeros(1)})
    with pytest.raises(RuntimeError, match=r"size mismatch for weight: the checkpoint has shape \(2, 3\), "
                                           r"the model has \(3, 2\)"):
        layer.load_state_dict({"weight": tt.zeros(2, 3), "bias": state["bias"]})
    missing, unexpected = layer.load_state_dict({"weight": state["weight"], "extra": 1}, strict=False)
    assert missing == ["bias"] and unexpected == ["extra"]


def test_to_float64_keeps_parameter_identity():
    block = Block()
    params = list(block.parameters())
    optimizer = nn.optim.SGD(block.parameters(), lr=0.1)
    block.to(tt.float64)
    assert all(p.dtype == tt.float64 for p in block.parameters())
    assert [id(p) for p in block.parameters()] == [id(p) for p in params]
    assert optimizer.param_groups[0]["params"][0] is block.scale
    assert block.bn.running_mean.dtype == tt.float64
    assert block.bn.num_batches_tracked.dtype == tt.int64    # integer buffers keep their dtype
    assert block.double() is block
    with pytest.raises(TypeError, match="expected a device .* or a floating dtype, got 'gpu'"):
        block.to("gpu")
    with pytest.raises(TypeError, match="only floating dtypes"):
        block.to(tt.int64)


def test_to_device_keeps_identity(device):
    layer = nn.Linear(2, 2)
    weight = layer.weight
    layer.to(device)
    assert layer.weight is weight and layer.weight.device.startswith(device)


def test_apply_visits_children_then_self():
    visited = []
    model = nn.Sequential(nn.Linear(1, 1), nn.ReLU())
    model.apply(lambda m: visited.append(type(m).__name__))
    assert visited == ["Linear", "ReLU", "Sequential"]


def test_repr_tree_like_pytorch():
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Sequential(nn.Dropout(0.1)))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=784, out_features=256, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Dropout(p=0.1)\n"
        "  )\n"
        ")")


def test_sequential_indexing_len_iteration():
    layers = [nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)]
    model = nn.Sequential(*layers)
    assert len(model) == 3 and list(model) == layers
    assert model[-1] is layers[2]
    assert isinstance(model[:2], nn.Sequential) and list(model[:2]) == layers[:2]
    with pytest.raises(IndexError, match="index 3 is out of range for 3"):
        model[3]
    named = nn.Sequential({"fc": nn.Linear(1, 1)})
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"]


def test_module_list_and_dict_register_their_modules():
    blocks = nn.ModuleList([nn.Linear(1, 1) for _ in range(2)])
    blocks.append(nn.Linear(1, 2))
    assert len(blocks) == 3 and blocks[2].out_features == 2
    assert [n for n, _ in blocks.named_parameters()][:2] == ["0.weight", "0.bias"]
    heads = nn.ModuleDict({"a": nn.Linear(1, 1)})
    heads["b"] = nn.ReLU()
    assert list(heads) == ["a", "b"] and "b" in heads and len(heads) == 2
    parent = nn.Sequential(blocks)
    assert parent.num_parameters() == 2 + 2 + 4
    with pytest.raises(TypeError, match="ModuleList holds Modules, not int"):
        blocks[0] = 3
    with pytest.raises(TypeError, match="ModuleDict holds Modules, not list"):
        heads["a"] = []
