"""Small data sets that ship with deepcore."""

from . import iris

__all__ = ["iris"]
