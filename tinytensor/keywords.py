"""PyTorch's keyword spellings beside NumPy's, in one place.

The ops are written with NumPy's names (`axis=`, `keepdims=`, `ddof=`); `@pytorch_keywords` lets the
same function also take PyTorch's (`dim=`, `keepdim=`, `correction=`, `unbiased=`, `start_dim=`,
`end_dim=`), so `x.sum(dim=1, keepdim=True)` is `x.sum(axis=1, keepdims=True)`. Giving both spellings
of one argument is a TypeError. A function that has a parameter of PyTorch's name itself keeps it and
handles it (max and min take `dim=` apart from `axis=`, because with `dim=` they return the indices too).
"""
import functools
import inspect

NUMPY_NAME = {"dim": "axis", "keepdim": "keepdims", "correction": "ddof", "unbiased": "ddof",
              "start_dim": "start_axis", "end_dim": "end_axis"}


def pytorch_keywords(fn):
    """Wrap `fn` so that each PyTorch keyword it is given is renamed to the NumPy parameter of `fn`
    (unbiased=True is ddof=1, unbiased=False is ddof=0)."""
    signature = inspect.signature(fn)
    names = list(signature.parameters)
    accepted = {torch: numpy for torch, numpy in NUMPY_NAME.items() if numpy in names and torch not in names}

    @functools.wraps(fn)
    def call(*args, **kwargs):
        if kwargs and not kwargs.keys().isdisjoint(accepted):
            kwargs = _numpy_keywords(fn.__name__, names[:len(args)], kwargs, accepted)
        return fn(*args, **kwargs)

    # help() and inspect show both spellings: PyTorch's as keyword-only parameters at the end
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None) for name in accepted]
    call.__signature__ = signature.replace(parameters=[*signature.parameters.values(), *extra])
    return call


def _numpy_keywords(op, positional, kwargs, accepted):
    """kwargs with the PyTorch names in `accepted` replaced by NumPy's; `positional` names the arguments
    given by place. Any other name is left for `fn` itself to take or refuse."""
    renamed = {name: value for name, value in kwargs.items() if name not in accepted}
    spelled = {name: f"{name} (given by position)" for name in positional}
    spelled.update((name, f"{name}=") for name in renamed)
    for name in (name for name in kwargs if name in accepted):
        numpy_name = accepted[name]
        if numpy_name in spelled:
            raise TypeError(f"{op}(): got both {spelled[numpy_name]} and {name}=, two spellings of the "
                            f"same argument ({numpy_name}); pass only one")
        spelled[numpy_name] = f"{name}="
        renamed[numpy_name] = int(bool(kwargs[name])) if name == "unbiased" else kwargs[name]
    return renamed
