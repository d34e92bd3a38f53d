"""Entries of mfntk.reproduce (see the package)."""
__all__ = []
