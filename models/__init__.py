"""Models built on tinytensor: MLP, LeNet, GPT-2, and the tokenizers that feed them."""
