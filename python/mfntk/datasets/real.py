"""Real data: scikit-learn's digits (no download), user-supplied MNIST-format IDX files and
arrays in an ``.npz`` archive; and their ``[data]`` kinds.

Images are centred and their rows scaled to norm sqrt(d), the scale of the synthetic inputs.

References
----------
.. [LeCun98] Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning
   applied to document recognition", Proc. IEEE 86(11), 1998 (the IDX format).
"""

from __future__ import annotations

import dataclasses
import gzip
import math
import os
import struct
import zipfile
import zlib
from typing import Any

import numpy as np

from .._options import REQUIRED, Options, option
from .._validation import check_bool, check_float, check_int, check_memory, check_path
from ._container import Dataset
from ._registry import data_kind

__all__ = ["digits", "mnist", "load_idx", "npz"]


def _preprocess_images(X_train, X_test, pixel_max):
    """pixels / pixel_max, centred by the training mean, rows scaled to norm sqrt(d)."""
    mean = (X_train / pixel_max).mean(axis=0)
    out = []
    for X in (X_train, X_test):
        if X is None:
            out.append(None)
            continue
        Z = X / pixel_max - mean
        norms = np.sqrt(np.einsum("ij,ij->i", Z, Z))
        if np.any(norms == 0.0):
            raise ValueError("an image equals the mean image and cannot be scaled to norm sqrt(d)")
        out.append(np.ascontiguousarray(Z * (np.sqrt(Z.shape[1]) / norms)[:, None]))
    return out


def _one_hot(labels, n_classes):
    Y = np.zeros((labels.shape[0], n_classes))
    Y[np.arange(labels.shape[0]), labels] = 1.0
    return Y


def digits(test_size=0.25, seed=0, one_hot=True) -> Dataset:
    """scikit-learn's handwritten digits (1797 images 8 x 8, 10 classes; no download).

    Preprocessing: pixels / 16 (to [0, 1]), centred by the mean image of the
    *training* split, then each row scaled to Euclidean norm sqrt(64) = 8, so the
    inputs have the same scale as the synthetic ones (E|x|^2 = d) and <w, x> = O(1)
    for w ~ N(0, I/d). The test split uses the training mean.

    Parameters
    ----------
    test_size : float, default 0.25
        Fraction of samples in the test split, 0 < test_size < 1; the split is
        stratified by class (``sklearn.model_selection.train_test_split``).
    seed : int, default 0
        Seed of the split.
    one_hot : bool, default True
        True: y has 10 columns, 1 for the class and 0 elsewhere (task
        "classification"; predict by argmax). False: y is the digit 0..9 as one
        float column (task "regression").

    Returns
    -------
    Dataset
        No sampler. ``info["labels"]`` and ``info["labels_test"]`` hold the integer
        classes.

    Raises
    ------
    ImportError
        If scikit-learn is not installed.

    Examples
    --------
    >>> ds = digits()
    >>> ds.n + ds.n_test, ds.d, ds.k
    (1797, 64, 10)
    """
    test_size = check_float(test_size, "test_size", minimum=0.0, strict=True, maximum=1.0, strict_maximum=True)
    one_hot = check_bool(one_hot, "one_hot")
    seed_int = check_int(seed, "seed", minimum=0)
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "digits() needs scikit-learn; install it with `pip install scikit-learn`"
        ) from exc
    raw = load_digits()
    X_all = np.asarray(raw.data, dtype=np.float64)
    labels_all = np.asarray(raw.target, dtype=np.int64)
    n_all, n_classes = labels_all.shape[0], np.unique(labels_all).size
    n_test = math.ceil(test_size * n_all)  # as train_test_split rounds
    if min(n_test, n_all - n_test) < n_classes:
        raise ValueError(f"test_size: {test_size} splits the {n_all} images into {n_all - n_test} training and "
                         f"{n_test} test images; a split stratified by class needs at least {n_classes} in each")
    X_tr, X_te, l_tr, l_te = train_test_split(
        X_all, labels_all, test_size=test_size, random_state=seed_int, stratify=labels_all
    )
    X_tr, X_te = _preprocess_images(X_tr, X_te, 16.0)
    if one_hot:
        y_tr, y_te, task = _one_hot(l_tr, 10), _one_hot(l_te, 10), "classification"
    else:
        y_tr, y_te, task = l_tr.astype(np.float64), l_te.astype(np.float64), "regression"
    return Dataset(
        X_tr, y_tr, X_te, y_te, name="digits", task=task,
        description="sklearn digits 8x8: pixels/16, centred, rows to norm 8; "
        + ("one-hot 0/1 targets" if one_hot else "digit value as target"),
        info={"labels": l_tr, "labels_test": l_te, "seed": seed_int, "test_size": test_size},
    )


# IDX format: 0x00 0x00, a type code, the number of dimensions, then one big-endian
# uint32 per dimension, then the data in C order, big-endian.
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def load_idx(path) -> np.ndarray:
    """Read an IDX file (the MNIST format), uncompressed or gzip-compressed.

    The header is two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16,
    0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, and one
    big-endian uint32 per dimension; the data follow in C order, big-endian.
    Compression is recognised by the gzip magic bytes, not the file name.

    The size the header declares is checked against the available memory before anything
    is allocated, and a compressed file is decompressed as a stream into an array of that
    size: a file whose data are larger than declared (a "gzip bomb") is refused after
    reading one byte more, never decompressed in full.

    Parameters
    ----------
    path : str or os.PathLike
        File to read (e.g. ``train-images-idx3-ubyte.gz``).

    Returns
    -------
    ndarray
        Of the stored shape and type, in native byte order (e.g. uint8 (60000, 28, 28)
        for MNIST training images).

    Raises
    ------
    ValueError
        For a bad magic number (non-zero first bytes, unknown type code, zero
        dimensions), a truncated file or a size that does not match the header, or a
        corrupt gzip stream.
    MemoryError
        When the declared size does not fit in the available memory.

    References
    ----------
    Y. LeCun, C. Cortes, C. Burges, "The MNIST database of handwritten digits"
    (format description), and [LeCun98]_.
    """
    check_path(path, "path")
    where = os.fsdecode(path)
    with _IdxStream(path, where) as stream:
        shape, dtype, header = stream.header()
        expected = math.prod(shape) * dtype.itemsize
        check_memory(expected, "path", f"{where}: the IDX array of shape {shape} ({dtype.name}) it declares")
        if stream.size is not None and stream.size - header != expected:
            got = stream.size - header
            raise _idx_size_error(where, shape, expected, got)
        buf = np.empty(expected, dtype=np.uint8)
        got = stream.readinto(buf)
        if got < expected:
            raise _idx_size_error(where, shape, expected, got)
        if stream.size is None and stream.read(1):
            raise _idx_size_error(where, shape, expected, None)
    arr = buf.view(dtype).reshape(shape)
    if not dtype.isnative:
        arr = arr.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return arr


def _idx_size_error(where, shape, expected, got):
    if got is not None and got < expected:
        return ValueError(f"load_idx: {where}: truncated file (shape {shape} needs {expected} data bytes, got {got})")
    has = "more (decompressed)" if got is None else got
    return ValueError(f"load_idx: {where}: size mismatch (shape {shape} needs {expected} data bytes, file has {has})")


class _IdxStream:
    """The bytes of an IDX file, decompressed on the fly when it is gzip-compressed.

    ``size`` is the length of a plain file (None for a compressed one, whose length is known
    only by decompressing it); read errors of a compressed stream become ValueError.
    """

    def __init__(self, path, where):
        self.where = where
        self._fh = open(path, "rb")
        self.gz = self._fh.read(2) == b"\x1f\x8b"
        self._fh.seek(0)
        self._stream = gzip.GzipFile(fileobj=self._fh, mode="rb") if self.gz else self._fh
        self.size = None if self.gz else os.fstat(self._fh.fileno()).st_size

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.gz:
            self._stream.close()
        self._fh.close()
        return False

    def _guard(self, fn, *args):
        if not self.gz:
            return fn(*args)
        try:
            return fn(*args)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"load_idx: {self.where}: corrupt or truncated gzip data ({exc})") from None

    def read(self, n):
        return self._guard(self._stream.read, n)

    def readinto(self, buf):
        """Fill the uint8 array ``buf`` as far as the stream goes; the number of bytes read."""
        view, got = memoryview(buf), 0
        while got < len(view):
            n = self._guard(self._stream.readinto, view[got:got + _IDX_CHUNK])
            if not n:
                break
            got += n
        return got

    def header(self):
        """(shape, dtype, header length) of the validated header."""
        where = self.where
        head = self.read(4)
        if len(head) < 4:
            raise ValueError(f"load_idx: {where}: truncated file ({len(head)} bytes, no IDX header)")
        zero, code, ndim = struct.unpack(">HBB", head)
        if zero != 0 or code not in _IDX_TYPES or ndim == 0:
            raise ValueError(
                f"load_idx: {where}: bad magic number 0x{head.hex()} (expected 0x0000 + a type "
                f"code in {{{', '.join(f'0x{c:02x}' for c in _IDX_TYPES)}}} + ndim >= 1)"
            )
        header = 4 + 4 * ndim
        dims = self.read(4 * ndim)
        if len(dims) < 4 * ndim:
            raise ValueError(f"load_idx: {where}: truncated file (header needs {header} bytes, got {4 + len(dims)})")
        return struct.unpack(f">{ndim}I", dims), _IDX_TYPES[code], header


_IDX_CHUNK = 1 << 24  # bytes decompressed per call


def _idx_info(path):
    """(shape, dtype) that the IDX file at ``path`` declares (only its header is read)."""
    check_path(path, "path")
    with _IdxStream(path, os.fsdecode(path)) as stream:
        shape, dtype, _ = stream.header()
    return shape, dtype


def _idx_pair(images_path, labels_path, what, keep=None):
    images = load_idx(images_path)
    labels = load_idx(labels_path)
    if images.ndim < 2:
        raise ValueError(f"mnist: {what} images must have at least 2 dimensions, got shape {images.shape}")
    if labels.ndim != 1:
        raise ValueError(f"mnist: {what} labels must be 1-D, got shape {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"mnist: {what} has {images.shape[0]} images but {labels.shape[0]} labels"
        )
    if labels.dtype.kind not in "iu" or labels.min() < 0:
        raise ValueError(f"mnist: {what} labels must be non-negative integers")
    images, labels = images[:keep], labels[:keep]   # before the float64 copy
    return images.reshape(images.shape[0], -1).astype(np.float64), labels.astype(np.int64)


def _check_mnist_memory(pairs, n_classes):
    """MemoryError before reading IDX files whose declared sizes, with the float64 copies that the
    preprocessing makes (about four of the kept images, the one-hot targets), cannot fit."""
    total = 0
    for images_path, labels_path, keep in pairs:
        shape, dtype = _idx_info(images_path)
        lshape, ldtype = _idx_info(labels_path)
        n = shape[0] if keep is None else min(shape[0], keep)
        total += math.prod(shape) * dtype.itemsize + math.prod(lshape) * ldtype.itemsize
        total += 8 * n * (4 * math.prod(shape[1:]) + n_classes + 1)
    files = ", ".join(os.fsdecode(p) for pair in pairs for p in pair[:2])
    check_memory(total, "images_path", f"mnist: the IDX files {files} with the float64 copies of their images")


def mnist(images_path, labels_path, test_images_path=None, test_labels_path=None, *,
          n_train=None, n_test=None, one_hot=True, n_classes=10, pixel_max=255.0) -> Dataset:
    """MNIST (or Fashion-MNIST, ...) from user-supplied IDX files.

    Images are flattened to rows and preprocessed like :func:`digits`: pixels /
    ``pixel_max``, centred by the training mean image, rows scaled to norm sqrt(d)
    (sqrt(784) = 28 for MNIST). Targets are one-hot rows with values 0/1.

    Parameters
    ----------
    images_path, labels_path : str or os.PathLike
        Training images (n, h, w) and labels (n,) in IDX format (e.g.
        ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``).
    test_images_path, test_labels_path : str or os.PathLike, optional
        Test split (both or neither).
    n_train, n_test : int, optional
        Keep only the first n_train / n_test samples (default: all).
    one_hot : bool, default True
        False: y is the class index as one float column (task "regression").
    n_classes : int, default 10
    pixel_max : float, default 255.0

    Returns
    -------
    Dataset
        No sampler; ``info["labels"]`` (and ``info["labels_test"]``) hold the classes.

    Raises
    ------
    ValueError
        For unreadable IDX files (see :func:`load_idx`), images and labels of
        different lengths, or labels >= n_classes.
    """
    if (test_images_path is None) != (test_labels_path is None):
        raise ValueError("mnist: give both test_images_path and test_labels_path, or neither")
    n_classes = check_int(n_classes, "n_classes", minimum=2)
    pixel_max = check_float(pixel_max, "pixel_max", minimum=0.0, strict=True)
    one_hot = check_bool(one_hot, "one_hot")
    if n_train is not None:
        n_train = check_int(n_train, "n_train")
    if n_test is not None:
        n_test = check_int(n_test, "n_test")
    pairs = [(images_path, labels_path, n_train)]
    if test_images_path is not None:
        pairs.append((test_images_path, test_labels_path, n_test))
    _check_mnist_memory(pairs, n_classes)
    X_tr, l_tr = _idx_pair(images_path, labels_path, "training set", n_train)
    X_te = l_te = None
    if test_images_path is not None:
        X_te, l_te = _idx_pair(test_images_path, test_labels_path, "test set", n_test)
        if X_te.shape[1] != X_tr.shape[1]:
            raise ValueError(
                f"mnist: test images have {X_te.shape[1]} pixels but training images {X_tr.shape[1]}"
            )
    for lab, what in ((l_tr, "training"), (l_te, "test")):
        if lab is not None and lab.max() >= n_classes:
            raise ValueError(f"n_classes: is {n_classes} but the {what} labels reach {lab.max()}")
    X_tr, X_te = _preprocess_images(X_tr, X_te, pixel_max)
    if one_hot:
        y_tr = _one_hot(l_tr, n_classes)
        y_te = None if l_te is None else _one_hot(l_te, n_classes)
        task = "classification"
    else:
        y_tr = l_tr.astype(np.float64)
        y_te = None if l_te is None else l_te.astype(np.float64)
        task = "regression"
    info: dict[str, Any] = {"labels": l_tr}
    if l_te is not None:
        info["labels_test"] = l_te
    return Dataset(
        X_tr, y_tr, X_te, y_te, name="mnist", task=task,
        description=f"IDX images {os.fsdecode(images_path)}: pixels/{pixel_max:g}, centred, "
        f"rows to norm sqrt({X_tr.shape[1]})",
        info=info,
    )


def npz(path) -> Dataset:
    """Arrays ``X``, ``y`` (and optionally ``X_test``, ``y_test``) from a NumPy ``.npz`` archive.

    The archive is read with ``np.load(path, allow_pickle=False)``: arrays of numbers only, so
    reading a file never runs code from it.

    Parameters
    ----------
    path : str or os.PathLike
        An archive written by ``np.savez(path, X=X, y=y, ...)``.

    Returns
    -------
    Dataset
        task "regression", no sampler.

    Raises
    ------
    OSError
        If the file cannot be read.
    ValueError
        If it is not an .npz archive, is damaged, lacks X or y, or holds object arrays; if an
        array's header declares another size than its member of the archive holds; or for
        arrays that :class:`Dataset` refuses.
    MemoryError
        When the declared arrays do not fit in the available memory (checked before reading).

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "toy.npz")
    >>> np.savez(path, X=np.ones((4, 2)), y=np.arange(4.0))
    >>> npz(path).X.shape
    (4, 2)
    """
    check_path(path, "path")
    where = os.fsdecode(path)
    names = ("X", "y", "X_test", "y_test")
    with open(path, "rb") as fh:  # ours to close: np.load leaks the file it opened when the zip is damaged
        if fh.read(6) == b"\x93NUMPY":  # refused before np.load allocates the array it declares
            raise ValueError(f"path: {where} is not an .npz archive (it holds a single array)")
        fh.seek(0)
        try:
            archive = np.load(fh, allow_pickle=False)
        except (ValueError, EOFError, zipfile.BadZipFile) as exc:  # not .npz data (or a pickle), or empty
            raise ValueError(f"path: {where} is not an .npz archive ({exc})") from None
        with archive:
            if "X" not in archive.files or "y" not in archive.files:
                raise ValueError(f"path: {where} must hold arrays X and y (and optionally X_test, y_test); it "
                                 f"holds {', '.join(archive.files) or 'nothing'}")
            try:
                _check_npz_sizes(archive.zip, where, names)
                arrays = {k: archive[k] for k in names if k in archive.files}
            except ValueError as exc:  # object arrays need a pickle; damaged headers
                raise ValueError(f"path: {where}: {exc}") from None
            except _ZIP_ERRORS as exc:
                raise ValueError(f"path: {where}: corrupt .npz archive ({type(exc).__name__}: {exc})") from None
    return Dataset(arrays["X"], arrays["y"], arrays.get("X_test"), arrays.get("y_test"), name="npz",
                   description=f"arrays from {where}")


# what a damaged zip archive raises while its members are read
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError)


def _check_npz_sizes(zf, where, names):
    """Before reading the arrays ``names`` of an .npz archive (an open ``zipfile.ZipFile``):
    ValueError when a member's .npy header declares another size than the member holds (it
    would be read short, or past its data), MemoryError when the declared arrays and their
    float64 copies cannot fit in the available memory. Only the headers are decompressed."""
    fmt = np.lib.format
    readers = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
    total = 0
    for key in names:
        try:
            info = zf.getinfo(key + ".npy")
        except KeyError:
            continue
        with zf.open(info) as fh:
            version = fmt.read_magic(fh)
            reader = readers.get(version)
            if reader is None:  # a newer .npy version: numpy checks it while reading
                continue
            shape, _, dtype = reader(fh)
            header = fh.tell()
        if dtype.hasobject:  # refused by np.load(allow_pickle=False)
            continue
        declared = math.prod(shape) * dtype.itemsize
        if info.file_size - header != declared:
            raise ValueError(f"the array {key} declares shape {shape} of {dtype} ({declared} data bytes) but its "
                             f"archive member holds {info.file_size - header}")
        total += declared + 8 * math.prod(shape)
    check_memory(total, "path", f"{where}: the arrays it declares, with their float64 copies,")


# ---------------------------------------------------------------------------------------
# the [data] kinds of these data sets
# ---------------------------------------------------------------------------------------


@data_kind("digits", build=digits)
@dataclasses.dataclass(frozen=True)
class DigitsData(Options):
    """scikit-learn's handwritten digits, 8 x 8 images, 10 classes (no download)."""

    section = "data"

    test_size: float = option(0.25, "float", "Fraction of the samples in the (stratified) test split, "
                              "0 < test_size < 1.", minimum=0.0, strict=True)
    seed: int = option(0, "int", "Seed of the split.", minimum=0)
    one_hot: bool = option(True, "bool", "One-hot targets (classification); false: the digit as one "
                           "float column (regression).")


@data_kind("mnist", build=mnist)
@dataclasses.dataclass(frozen=True)
class MnistData(Options):
    """MNIST (or Fashion-MNIST, ...) from user-supplied IDX files, plain or gzip-compressed."""

    section = "data"

    images_path: str = option(REQUIRED, "path", "Training images, e.g. train-images-idx3-ubyte.gz (a path "
                              "relative to the working directory).")
    labels_path: str = option(REQUIRED, "path", "Training labels, e.g. train-labels-idx1-ubyte.gz.")
    test_images_path: str | None = option(None, "path", "Test images (with test_labels_path).", optional=True)
    test_labels_path: str | None = option(None, "path", "Test labels (with test_images_path).", optional=True)
    n_train: int | None = option(None, "int", "Keep only the first n_train training samples (default: all).",
                                 minimum=1, optional=True)
    n_test: int | None = option(None, "int", "Keep only the first n_test test samples (default: all).",
                                minimum=1, optional=True)
    one_hot: bool = option(True, "bool", "One-hot targets (classification); false: the class as one float "
                           "column (regression).")
    n_classes: int = option(10, "int", "Number of classes (labels 0 .. n_classes - 1).", minimum=2)
    pixel_max: float = option(255.0, "float", "Largest pixel value (pixels are divided by it).", minimum=0.0,
                              strict=True)


@data_kind("npz", build=npz)
@dataclasses.dataclass(frozen=True)
class NpzData(Options):
    """Arrays X, y (and optionally X_test, y_test) from a NumPy .npz archive (regression)."""

    section = "data"

    path: str = option(REQUIRED, "path", "The archive (np.savez(path, X=..., y=...)); read without pickles.")
