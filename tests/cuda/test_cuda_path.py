"""The cuda path end to end: host data fed to a GPU model, devices other than the first, dtypes.

On a machine without a GPU these run on the CuPy stand-in (tinytensor/testing/fake_cupy.py), which
raises where CuPy would: an implicit NumPy conversion, a host array mixed into a GPU operation, an
array used while another device is current."""
import numpy as np
import pytest

import tinytensor as tt
from tinytensor import nn

pytestmark = pytest.mark.cuda


def second_device():
    if tt.cuda.device_count() < 2:
        pytest.skip("needs two GPUs")
    return "cuda:1"


# ----------------------------------------------------------------------------------- in place

@pytest.mark.parametrize("operand", [np.array([1.0, 2.0, 3.0]), [1.0, 2.0, 3.0], 2.0],
                         ids=["numpy", "list", "scalar"])
def test_in_place_arithmetic_takes_host_operands(operand):
    x = tt.ones(3, device="cuda")
    expected = np.ones(3, dtype=np.float32)
    for op, reference in (("__iadd__", np.add), ("__isub__", np.subtract), ("__imul__", np.multiply),
                          ("__itruediv__", np.divide)):
        x = getattr(x, op)(operand)
        expected = reference(expected, np.asarray(operand, dtype=np.float32))
    assert x.device == "cuda:0" and x.dtype == tt.float32
    np.testing.assert_allclose(x.numpy(), expected, rtol=1e-6)


def test_item_assignment_takes_host_values_and_indices():
    x = tt.zeros(2, 3, device="cuda")
    x[0] = np.array([1.0, 2.0, 3.0])
    x[1, :2] = [4.0, 5.0]
    x[np.array([1]), 2] = 6.0
    x[tt.tensor([0]), 0] = tt.tensor(7.0, device="cuda")
    np.testing.assert_array_equal(x.numpy(), [[7, 2, 3], [4, 5, 6]])


def test_in_place_arithmetic_with_a_cpu_tensor_names_both_devices_and_assignment_copies_it():
    x = tt.ones(3, device="cuda")
    with pytest.raises(RuntimeError, match="device mismatch: add \\(in place\\) got its input on cuda:0 and "
                                           "its operand on cpu"):
        x += tt.ones(3)
    w = tt.ones(3, device="cuda", requires_grad=True)
    y = w * 1
    with pytest.raises(RuntimeError, match="device mismatch"):
        y += tt.ones(3)
    x[0] = tt.tensor(2.0)                      # assignment copies across devices, as in PyTorch
    y[1:] = tt.tensor([5.0, 6.0], requires_grad=True)
    y.sum().backward()
    assert x.tolist() == [2.0, 1.0, 1.0] and y.device == "cuda:0" and w.grad.tolist() == [1.0, 0.0, 0.0]


# ----------------------------------------------------------------------------------- host data into losses

def test_losses_and_attention_take_numpy_targets_and_masks():
    rng = np.random.default_rng(0)
    logits = tt.tensor(rng.standard_normal((4, 3)), device="cuda", requires_grad=True)
    target = np.array([0, 2, 1, 2])
    for loss in (tt.cross_entropy(logits, target), tt.nll_loss(tt.log_softmax(logits, 1), target),
                 tt.cross_entropy(logits, target, label_smoothing=0.1, weight=np.ones(3)),
                 tt.binary_cross_entropy(tt.sigmoid(logits), (rng.random((4, 3)) > 0.5) * 1.0)):
        assert loss.device == "cuda:0"
        loss.backward()
    q = tt.tensor(rng.standard_normal((2, 3, 4)), device="cuda", requires_grad=True)
    mask = np.array([[True, False, False], [False, False, False], [True, True, True]])   # row 1 sees nothing
    out = tt.scaled_dot_product_attention(q, q, q, attn_mask=mask)
    np.testing.assert_array_equal(out.detach().numpy()[:, 1], 0)
    out.sum().backward()
    assert q.grad.device == "cuda:0"


def test_a_cpu_target_or_mask_tensor_names_both_devices_as_pytorch_does():
    logits = tt.zeros(2, 3, device="cuda")
    with pytest.raises(RuntimeError, match="cross_entropy got its input on cuda:0 and its target on cpu"):
        tt.cross_entropy(logits, tt.tensor([0, 1]))
    q = tt.zeros(1, 2, 4, device="cuda")
    with pytest.raises(RuntimeError, match="attention got its input on cuda:0 and its attn_mask on cpu"):
        tt.scaled_dot_product_attention(q, q, q, attn_mask=tt.tensor([[True, False], [False, False]]))


@pytest.mark.parametrize("make", [lambda: nn.CrossEntropyLoss(weight=tt.ones(3)),
                                  lambda: nn.BCEWithLogitsLoss(pos_weight=tt.ones(3))])
def test_loss_buffers_follow_to_and_say_so_when_left_behind(make):
    loss_fn = make()
    logits = tt.zeros(2, 3, device="cuda")
    target = tt.tensor([0, 1], device="cuda") if isinstance(loss_fn, nn.CrossEntropyLoss) else tt.zeros(2, 3, device="cuda")
    with pytest.raises(RuntimeError, match=r"\.to\('cuda:0'\)"):
        loss_fn(logits, target)
    assert loss_fn.to("cuda")(logits, target).device == "cuda:0"
    on_gpu = type(loss_fn)(**{name: tt.ones(3, device="cuda") for name, _ in loss_fn.named_buffers()})
    assert all(b.device == "cuda:0" for _, b in on_gpu.named_buffers())


# ----------------------------------------------------------------------------------- value checks

def test_value_checks_on_the_gpu_raise_at_the_next_read():
    weight = tt.zeros(4, 2, device="cuda")
    out = tt.embedding(tt.tensor([1, 4], device="cuda"), weight)    # queued, not raised yet
    with pytest.raises(IndexError, match="embedding: an id is out of range for 4 embeddings.*cuda:0"):
        out.sum().item()
    tt.embedding(tt.tensor([1, 3], device="cuda"), weight).sum().item()   # the flag was cleared
    logits = tt.zeros(2, 3, device="cuda")
    tt.cross_entropy(logits, tt.tensor([0, -1], device="cuda"))
    with pytest.raises(IndexError, match="cross_entropy: a target class is out of range for 3"):
        tt.cuda.synchronize()
    tt.binary_cross_entropy(tt.full((2,), 1.5, device="cuda"), tt.zeros(2, device="cuda"))
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]"):
        tt.ones(1, device="cuda").tolist()


# ----------------------------------------------------------------------------------- dtypes

@pytest.mark.parametrize("fn", [tt.erf, lambda x: tt.gelu(x)], ids=["erf", "gelu"])
def test_float16_exact_gelu_and_erf_stay_float16(fn):
    x = tt.tensor([-1.0, 0.5, 2.0], dtype=tt.float16, device="cuda", requires_grad=True)
    y = fn(x)
    y.sum().backward()
    assert y.dtype == tt.float16 and x.grad.dtype == tt.float16
    reference = fn(tt.tensor([-1.0, 0.5, 2.0], dtype=tt.float64))
    np.testing.assert_allclose(y.detach().numpy(), reference.detach().numpy(), rtol=2e-3)


def test_clip_grad_norm_is_exact_in_float64():
    p = tt.tensor([3.0, 4.0], dtype=tt.float64, device="cuda", requires_grad=True)
    p.grad = tt.tensor([3e-9 + 1e-17, 4e-9], dtype=tt.float64, device="cuda")
    norm = nn.utils.clip_grad_norm_([p], max_norm=1.0)
    assert norm.dtype == tt.float64 and norm.device == "cuda:0"
    expected = np.sqrt(np.float64(3e-9 + 1e-17) ** 2 + np.float64(4e-9) ** 2)
    assert norm.item() == expected
    np.testing.assert_array_equal(p.grad.numpy(), [3e-9 + 1e-17, 4e-9])     # below max_norm: unchanged


# ----------------------------------------------------------------------------------- other devices

def test_a_training_step_on_the_second_device_stays_there():
    device = second_device()
    tt.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 8), nn.LayerNorm(8), nn.Linear(8, 8), nn.GELU(), nn.Dropout(0.1),
                          nn.Linear(8, 5)).to(device)
    bn = nn.BatchNorm1d(5, momentum=None).to(device)
    for optimizer in (nn.optim.Adam(model.parameters()), nn.optim.SGD(bn.parameters(), lr=0.1, momentum=0.9)):
        ids = tt.tensor([[1, 2, 3], [4, 5, 6]], device=device)
        logits = bn(model(ids).reshape(6, 5))
        attention = tt.scaled_dot_product_attention(logits[None], logits[None], logits[None], is_causal=True)
        loss = tt.cross_entropy(logits, np.array([0, 1, 2, 3, 4, 0])) + attention.mean()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    assert loss.device == device and np.isfinite(loss.item())
    assert all(p.device == device for p in list(model.parameters()) + list(bn.buffers()))
    assert tt.randn(3, device=device).device == device
