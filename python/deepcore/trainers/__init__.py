"""The training loop and the data it takes, shared by every model."""
