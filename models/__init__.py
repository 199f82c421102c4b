"""Models built on tinytensor: MLP, LeNet, GPT-2, and the tokenizers that feed them."""

if __name__ != "tinytensor.models":
    raise ImportError(f"import this package as tinytensor.models (`from tinytensor import models`), not as {__name__}: "
                      "one name per module keeps one copy of each class")

