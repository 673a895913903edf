"""Bad input: one test per documented failure of the public API, plus the
torch and non-contiguous inputs the API promises to accept.

Errors are checked by type and by a fragment of the message that tells the
caller what went wrong (STYLE.md: never a generic message).
"""

from __future__ import annotations

import numpy as np
import pytest

import xcloud

try:
    import torch
except ImportError:  # torch is an optional dependency; only the torch tests need it
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed (pip install xcloud[torch])")
needs_cuda = pytest.mark.skipif(
    torch is None or not torch.cuda.is_available(), reason="needs a CUDA device (torch.cuda.is_available() is False)"
)


@pytest.fixture
def x() -> np.ndarray:
    return np.linspace(-1.0, 1.0, 3000)


@pytest.fixture
def ct(small_keys, x) -> xcloud.CiphertextBlocks:
    return xcloud.encrypt_blocks(small_keys, x)


# -- encrypt: types ------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        np.arange(10, dtype=np.int64),
        np.arange(10, dtype=np.int32),
        np.zeros(10, dtype=np.uint8),
        np.zeros(10, dtype=bool),
        np.zeros(10, dtype=np.complex128),
        np.zeros(10, dtype=np.complex64),
        np.array([0.5, 0.25], dtype=object),
        np.zeros(10, dtype=np.float16),
    ],
    ids=["int64", "int32", "uint8", "bool", "complex128", "complex64", "object", "float16"],
)
def test_non_float32_or_float64_array_is_a_type_error(small_keys, bad):
    with pytest.raises(TypeError, match="float32 or float64"):
        xcloud.encrypt_blocks(small_keys, bad)


@pytest.mark.parametrize("bad", [[0.5, 0.25], (0.5,), 0.5, "0.5", None], ids=["list", "tuple", "float", "str", "None"])
def test_non_array_input_is_a_type_error(small_keys, bad):
    with pytest.raises(TypeError):
        xcloud.encrypt_blocks(small_keys, bad)


# -- encrypt: values -----------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "+inf", "-inf"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("index", [0, 1500, 2999])
@pytest.mark.parametrize("mode", ["secret", "public"])
def test_non_finite_value_is_a_value_error_naming_its_index(small_keys, x, bad, dtype, index, mode):
    # Prepare
    x = x.astype(dtype)
    x[index] = bad
    # Execute / Assert
    with pytest.raises(ValueError, match=rf"not finite.*\b{index}\b|\b{index}\b.*not finite"):
        xcloud.encrypt_blocks(small_keys, x, mode=mode)


def test_non_finite_value_in_a_multidimensional_array_names_its_flat_index(small_keys):
    # Prepare
    x = np.zeros((4, 5, 300))
    x[2, 3, 7] = np.nan
    flat = np.ravel_multi_index((2, 3, 7), x.shape)
    # Execute / Assert
    with pytest.raises(ValueError, match=rf"\b{flat}\b"):
        xcloud.encrypt_blocks(small_keys, x)


@pytest.mark.parametrize("bad", [1.0000001, -1.0000001, 2.0, -1e300, np.finfo(np.float64).max])
def test_value_outside_max_value_is_a_value_error(small_keys, x, bad):
    # Prepare
    x[123] = bad
    # Execute / Assert
    with pytest.raises(ValueError, match=r"outside.*max_value.*\b123\b|\b123\b.*outside"):
        xcloud.encrypt_blocks(small_keys, x)


def test_value_exactly_at_max_value_is_accepted_and_next_float_is_not(small_keys):
    # Prepare
    at = np.array([1.0, -1.0])
    above = np.array([1.0, np.nextafter(1.0, 2.0)])
    # Execute / Assert
    xcloud.encrypt_blocks(small_keys, at)
    with pytest.raises(ValueError, match="outside"):
        xcloud.encrypt_blocks(small_keys, above)


def test_max_value_follows_the_context():
    # Prepare
    keys = xcloud.CkksContext.insecure(log_n=10, max_value=8.0).keygen()
    # Execute / Assert
    y = xcloud.decrypt_blocks(keys, xcloud.encrypt_blocks(keys, np.array([8.0, -7.5])))
    assert np.max(np.abs(y - [8.0, -7.5])) <= 8 * 2.0**-20
    with pytest.raises(ValueError, match="outside"):
        xcloud.encrypt_blocks(keys, np.array([8.5]))


@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 5, 2)])
def test_empty_array_is_a_value_error(small_keys, shape):
    with pytest.raises(ValueError, match="empty"):
        xcloud.encrypt_blocks(small_keys, np.zeros(shape))


# -- threads -------------------------------------------------------------------


@pytest.mark.parametrize("threads", [0, -1, 1.5, "2", 2.0])
def test_bad_thread_count_is_a_value_error_for_every_entry_point(small_keys, x, ct, threads):
    with pytest.raises(ValueError, match="threads"):
        xcloud.encrypt_blocks(small_keys, x, threads=threads)
    with pytest.raises(ValueError, match="threads"):
        xcloud.encrypt_blocks_derand(small_keys, x, bytes(32), threads=threads)
    with pytest.raises(ValueError, match="threads"):
        xcloud.decrypt_blocks(small_keys, ct, threads=threads)
    with pytest.raises(ValueError, match="threads"):
        xcloud.aggregate([ct, ct], threads=threads)
    with pytest.raises(ValueError, match="threads"):
        xcloud.add(ct, ct, threads=threads)


def test_more_threads_than_blocks_is_fine(small_keys, x):
    ct = xcloud.encrypt_blocks(small_keys, x, threads=64)
    assert np.max(np.abs(xcloud.decrypt_blocks(small_keys, ct, threads=64) - x)) <= 2.0**-20


# -- aggregate -------------------------------------------------------------------


def test_aggregate_of_nothing_is_a_value_error():
    with pytest.raises(ValueError, match="at least one"):
        xcloud.aggregate([])
    with pytest.raises(ValueError, match="at least one"):
        xcloud.aggregate(iter([]), weights=[])


@pytest.mark.parametrize("weights", [[1.0], [0.2, 0.3, 0.5], []])
def test_weight_count_mismatch_is_a_value_error(ct, weights):
    with pytest.raises(ValueError, match="weights for 2"):
        xcloud.aggregate([ct, ct], weights)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "+inf", "-inf"])
def test_non_finite_weight_is_a_value_error(ct, bad):
    with pytest.raises(ValueError, match=r"not finite \(input 1\)"):
        xcloud.aggregate([ct, ct], [0.5, bad])


@pytest.mark.parametrize("weights", [[1e12, 1e12], [2.0**40, 0.0], [1e17, 1.0], [-1e15, 1.0], [1e300, 1e300]])
def test_weights_that_could_overflow_are_a_value_error(ct, weights):
    with pytest.raises(ValueError, match="overflow"):
        xcloud.aggregate([ct, ct], weights)


def test_weights_that_cannot_be_applied_precisely_are_a_value_error(small_keys, x):
    """An aggregate at scale 2^68 leaves no room for 30 fractional weight bits."""
    # Prepare
    c = xcloud.encrypt_blocks(small_keys, x)
    agg = xcloud.aggregate([c, c], [0.3, 0.7])
    # Execute / Assert
    with pytest.raises(ValueError, match="fractional bits"):
        xcloud.aggregate([agg, agg], [0.3, 0.7])


def test_ciphertexts_at_different_scales_are_a_value_error(small_keys, x):
    c = xcloud.encrypt_blocks(small_keys, x)
    with pytest.raises(ValueError, match="different scales"):
        xcloud.aggregate([xcloud.aggregate([c, c], [0.5, 0.5]), c])


def test_float32_and_float64_ciphertexts_are_not_aggregated_together(small_keys, x):
    """The aggregate decrypts to one dtype, which must not depend on the order of the inputs."""
    c64 = xcloud.encrypt_blocks(small_keys, x)
    c32 = xcloud.encrypt_blocks(small_keys, x.astype(np.float32))
    for inputs in ([c64, c32], [c32, c64]):
        with pytest.raises(ValueError, match="float32 and float64"):
            xcloud.aggregate(inputs)


@pytest.mark.parametrize("other_shape", [(2999,), (3001,), (1000, 3), (3, 1000)])
def test_mismatched_shapes_are_a_value_error(small_keys, ct, other_shape):
    other = xcloud.encrypt_blocks(small_keys, np.zeros(other_shape))
    with pytest.raises(ValueError, match="different shapes"):
        xcloud.aggregate([ct, other])
    with pytest.raises(ValueError, match="different shapes"):
        xcloud.add(ct, other)


@pytest.mark.parametrize("bad", [None, b"bytes", np.zeros(3)], ids=["None", "bytes", "ndarray"])
def test_aggregate_of_non_ciphertexts_is_a_type_error(ct, bad):
    with pytest.raises(TypeError):
        xcloud.aggregate([ct, bad])


@pytest.mark.parametrize("bad", [None, b"bytes", np.zeros(3)], ids=["None", "bytes", "ndarray"])
def test_decrypt_of_a_non_ciphertext_is_a_type_error(small_keys, bad):
    with pytest.raises(TypeError):
        xcloud.decrypt_blocks(small_keys, bad)


# -- modes and seeds -------------------------------------------------------------


@pytest.mark.parametrize("mode", ["bogus", "Secret", "", "pub"])
def test_unknown_mode_is_a_value_error(small_keys, x, mode):
    with pytest.raises(ValueError, match="mode"):
        xcloud.encrypt_blocks(small_keys, x, mode=mode)
    with pytest.raises(ValueError, match="mode"):
        xcloud.encrypt_blocks_derand(small_keys, x, bytes(32), mode=mode)


def test_secret_mode_with_public_only_keys_is_a_value_error(small_keys, x):
    public = small_keys.public_only()
    with pytest.raises(ValueError, match="no secret key"):
        xcloud.encrypt_blocks(public, x, mode="secret")
    with pytest.raises(ValueError, match="no secret key"):
        xcloud.encrypt_blocks_derand(public, x, bytes(32))  # derand defaults to secret mode


def test_default_mode_follows_the_keys(small_keys, x):
    assert xcloud.encrypt_blocks(small_keys, x).origin == "secret-key"
    assert xcloud.encrypt_blocks(small_keys.public_only(), x).origin == "public-key"
    assert xcloud.encrypt_blocks(small_keys, x, mode="public").origin == "public-key"


@pytest.mark.parametrize("seed", [bytes(31), bytes(33), b"", bytearray(32), "a" * 32, None])
def test_bad_derand_seed_is_a_value_error(small_keys, x, seed):
    with pytest.raises(ValueError, match="seed"):
        xcloud.encrypt_blocks_derand(small_keys, x, seed)


@pytest.mark.parametrize("dtype", ["float16", "int64", "bogus"])
def test_bad_decrypt_dtype_is_a_value_error(small_keys, ct, dtype):
    with pytest.raises(ValueError, match="dtype"):
        xcloud.decrypt_blocks(small_keys, ct, dtype=dtype)


# -- parameters --------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"log_n": 10},  # 72-bit Q is above the 26-bit limit at N = 1024
        {"log_n": 12, "prime_bits": (50, 50, 10)},
        {"prime_bits": (36, 51)},
        {"prime_bits": ()},
        {"scale_bits": 9},
        {"max_value": 0.0},
        {"max_value": float("nan")},
        {"security_bits": 100},
        {"scale_bits": 70},  # scale * max_value does not fit below Q
    ],
)
def test_bad_or_insecure_parameters_are_a_parameter_error(kwargs):
    with pytest.raises(xcloud.ParameterError):
        xcloud.CkksContext(**kwargs)


def test_error_types_are_value_errors():
    assert issubclass(xcloud.IntegrityError, ValueError)
    assert issubclass(xcloud.ParameterError, ValueError)
    assert not issubclass(xcloud.IntegrityError, xcloud.ParameterError)


# -- accepted inputs: non-contiguous numpy, torch ------------------------------


def test_non_contiguous_numpy_input_works(small_keys, rng):
    # Prepare
    base = rng.uniform(-1.0, 1.0, size=(300, 7))
    views = [base.T, base[::2], base[:, 1:5], base[::-1, ::3]]
    for view in views:
        assert not view.flags.c_contiguous
        # Execute
        ct = xcloud.encrypt_blocks(small_keys, view)
        y = xcloud.decrypt_blocks(small_keys, ct)
        # Assert
        assert y.shape == view.shape
        assert np.max(np.abs(y - view)) <= 2.0**-20


def test_fortran_ordered_and_read_only_inputs_work(small_keys, rng):
    x = np.asfortranarray(rng.uniform(-1.0, 1.0, size=(40, 30)))
    x.setflags(write=False)
    y = xcloud.decrypt_blocks(small_keys, xcloud.encrypt_blocks(small_keys, x))
    assert np.max(np.abs(y - x)) <= 2.0**-20


TORCH_FLOATS = ["float32", "float64", "float16", "bfloat16"]


@needs_torch
@pytest.mark.parametrize("tdtype", TORCH_FLOATS)
@pytest.mark.parametrize("mode", ["secret", "public"])
def test_torch_cpu_tensor_round_trip_returns_a_tensor_of_the_input_dtype(small_keys, tdtype, mode):
    # Prepare
    tdtype = getattr(torch, tdtype)
    gen = torch.Generator().manual_seed(7)
    x = (torch.rand(3, 700, generator=gen, dtype=torch.float64) * 2 - 1).to(tdtype)
    # Execute
    ct = xcloud.encrypt_blocks(small_keys, x, mode=mode)
    y = xcloud.decrypt_blocks(small_keys, ct)
    # Assert
    assert isinstance(y, torch.Tensor)
    assert y.dtype == tdtype and y.device == x.device and tuple(y.shape) == tuple(x.shape)
    err = (y.double() - x.double()).abs().max().item()
    # the kernel's error plus rounding of the result to the tensor's dtype (half an ulp at 1.0)
    assert err <= 2.0**-20 + torch.finfo(tdtype).eps / 2


@needs_torch
def test_torch_tensor_with_grad_and_non_contiguous_layout(small_keys):
    # Prepare
    x = (torch.linspace(-1, 1, 2000, dtype=torch.float32).reshape(40, 50).t()).requires_grad_(False)
    w = torch.ones(40, 50, requires_grad=True)
    with_grad = (w * 0.5).t()
    assert not x.is_contiguous()
    # Execute
    y1 = xcloud.decrypt_blocks(small_keys, xcloud.encrypt_blocks(small_keys, x))
    y2 = xcloud.decrypt_blocks(small_keys, xcloud.encrypt_blocks(small_keys, with_grad))
    # Assert
    assert (y1 - x).abs().max().item() <= 2.0**-20
    assert (y2 - 0.5).abs().max().item() <= 2.0**-20 and not y2.requires_grad


@needs_torch
@pytest.mark.parametrize("tdtype", ["int64", "int32", "uint8", "bool", "complex64"])
def test_torch_non_float_tensor_is_a_type_error(small_keys, tdtype):
    with pytest.raises(TypeError):
        xcloud.encrypt_blocks(small_keys, torch.zeros(10, dtype=getattr(torch, tdtype)))


@needs_torch
def test_torch_nan_is_a_value_error(small_keys):
    x = torch.zeros(2000)
    x[1234] = float("nan")
    with pytest.raises(ValueError, match="1234"):
        xcloud.encrypt_blocks(small_keys, x)


@needs_torch
def test_torch_aggregate_decrypts_to_a_tensor(small_keys):
    # Prepare
    a, b = torch.full((10, 10), 0.5), torch.full((10, 10), -0.25)
    # Execute
    y = xcloud.decrypt_blocks(
        small_keys, xcloud.aggregate([xcloud.encrypt_blocks(small_keys, a), xcloud.encrypt_blocks(small_keys, b)])
    )
    # Assert
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32
    assert (y - 0.125).abs().max().item() <= 2.0**-20


@needs_cuda
@pytest.mark.parametrize("tdtype", TORCH_FLOATS)
def test_torch_cuda_tensor_round_trip_returns_a_cuda_tensor(small_keys, tdtype):
    # Prepare
    tdtype = getattr(torch, tdtype)
    x = (torch.rand(3, 700, device="cuda", dtype=torch.float64) * 2 - 1).to(tdtype)
    # Execute
    y = xcloud.decrypt_blocks(small_keys, xcloud.encrypt_blocks(small_keys, x))
    # Assert
    assert isinstance(y, torch.Tensor)
    assert y.device == x.device and y.dtype == tdtype and tuple(y.shape) == tuple(x.shape)
    assert (y.double() - x.double()).abs().max().item() <= 2.0**-20 + torch.finfo(tdtype).eps / 2


def test_native_encrypt_rejects_a_shape_whose_product_overflows() -> None:
    from xcloud import _native

    keys = xcloud.CkksContext.insecure(log_n=8).keygen()
    with pytest.raises(ValueError, match="2\\^40"):
        _native.encrypt(keys._native, np.zeros(1, np.float32), [7, 0x6DB6DB6DB6DB6DB7], "secret", 1)
