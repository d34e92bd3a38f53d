"""mfntk benchmark suite: mfntk side by side with numpy, PyTorch and JAX.

Run ``python -m bench --help``; see ``bench/README.md``.
"""
