"""The public names of CuPy that the stand-in (fake_cupy.py) may expose: a dated snapshot.

Snapshot of CuPy 13.6 (the cupy-cuda13x wheel), taken 2026-12-02 from CuPy's API reference (the
NumPy/CuPy comparison table, the ndarray page and cupy/random/_generator_api.pyx) without a GPU or an
installed CuPy. On a machine with CuPy, `python -m tinytensor.testing.fake_cupy --check-names` prints
every difference between this list and the installed module (benchmarks/gpu_check.sh runs it).

A name listed here that NumPy lacks (ElementwiseKernel, fuse, ...) is not emulated: the stand-in
raises AttributeError for it as for any name CuPy does not have.
"""

SNAPSHOT = "CuPy 13.6, 2026-12-02"

# cupy.<name>: routines, ufuncs, dtypes and constants.
MODULE = frozenset("""
abs absolute add all allclose amax amin angle any append apply_along_axis arange arccos arccosh arcsin
arcsinh arctan arctan2 arctanh argmax argmin argpartition argsort argwhere around array array2string
array_equal array_equiv array_repr array_split array_str asanyarray asarray asarray_chkfinite
ascontiguousarray asfortranarray asnumpy atleast_1d atleast_2d atleast_3d average bartlett base_repr
binary_repr bincount bitwise_and bitwise_not bitwise_or bitwise_xor blackman broadcast broadcast_arrays
broadcast_to can_cast cbrt ceil choose clip column_stack common_type compress concatenate conj
conjugate convolve copy copysign copyto corrcoef correlate cos cosh count_nonzero cov cross cumprod
cumsum deg2rad degrees delete diag diag_indices diag_indices_from diagflat diagonal diff digitize
divide divmod dot dsplit dstack dtype einsum empty empty_like equal exp exp2 expand_dims expm1 extract
eye fabs fill_diagonal finfo fix flatnonzero flip fliplr flipud float_power floor floor_divide fmax
fmin fmod frexp frombuffer fromfile fromfunction fromiter fromstring full full_like gcd geomspace
get_array_module gradient greater greater_equal hamming hanning heaviside histogram histogram2d
histogramdd hsplit hstack hypot i0 identity iinfo imag indices inner interp intersect1d invert isclose
iscomplex iscomplexobj isfinite isfortran isin isinf isnan isneginf isposinf isreal isrealobj isscalar
issubdtype ix_ kaiser kron lcm ldexp left_shift less less_equal lexsort linspace load loadtxt log log10
log1p log2 logaddexp logaddexp2 logical_and logical_not logical_or logical_xor logspace matmul max
maximum may_share_memory mean median meshgrid min min_scalar_type minimum mod modf moveaxis multiply nan_to_num
nanargmax nanargmin nancumprod nancumsum nanmax nanmean nanmedian nanmin nanpercentile nanprod
nanquantile nanstd nansum nanvar ndim negative nextafter nonzero not_equal ones ones_like outer
packbits pad partition percentile piecewise place poly1d polyadd polyfit polymul polysub polyval
positive power prod promote_types ptp put putmask quantile rad2deg radians ravel ravel_multi_index real
reciprocal remainder repeat require reshape resize result_type right_shift rint roll rollaxis roots
rot90 round save savetxt savez savez_compressed searchsorted select setdiff1d setxor1d shape
shares_memory sign signbit sin sinc sinh size sort sort_complex split sqrt square squeeze stack std
subtract sum swapaxes take take_along_axis tan tanh tensordot tile trace transpose trapezoid tri tril
tril_indices tril_indices_from trim_zeros triu triu_indices triu_indices_from true_divide trunc
union1d unique unpackbits unravel_index unwrap vander var vdot vsplit vstack where zeros zeros_like

ndarray ufunc newaxis e pi inf nan euler_gamma
bool_ int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 float64 complex64 complex128
byte short intc int_ longlong intp ubyte ushort uintc uint ulonglong uintp half single double csingle
cdouble generic number integer signedinteger unsignedinteger inexact floating complexfloating

cuda random linalg fft testing lib polynomial
is_available fuse ElementwiseKernel ReductionKernel RawKernel RawModule get_default_memory_pool
get_default_pinned_memory_pool show_config
""".split())

# cupy.ndarray methods and attributes.
NDARRAY = frozenset("""
all any argmax argmin argpartition argsort astype choose clip compress conj conjugate copy cumprod
cumsum diagonal dot dump dumps fill flatten get item max mean min nonzero partition prod ptp put ravel
reduced_view repeat reshape round scatter_add scatter_max scatter_min set sort squeeze std sum swapaxes
take tobytes tofile tolist toDlpack trace transpose var view
T mT base cstruct data device dtype flags flat imag itemsize nbytes ndim real shape size strides
""".split())

# cupy.random.Generator methods: no permutation, choice, shuffle or normal.
GENERATOR = frozenset("""
random uniform integers beta chisquare dirichlet exponential f geometric hypergeometric logseries
standard_exponential poisson power standard_normal gamma standard_gamma binomial bit_generator
""".split())

# cupy.random.<name> (module level; the legacy functions do have permutation and choice).
RANDOM = frozenset("""
default_rng Generator BitGenerator XORWOW MRG32k3a Philox4x3210 RandomState get_random_state seed
rand randn randint random random_sample ranf sample uniform normal standard_normal permutation shuffle
choice bytes beta binomial exponential gamma poisson
""".split())

# cupy.linalg.<name>
LINALG = frozenset("""
cholesky det eigh eigvalsh inv lstsq matrix_power matrix_rank norm pinv qr slogdet solve svd
tensorinv tensorsolve multi_dot
""".split())

# cupyx.scipy.special.<name> (only those the engine may call)
CUPYX_SPECIAL = frozenset("erf erfc erfcx erfinv erfcinv".split())
