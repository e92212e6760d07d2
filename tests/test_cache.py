"""Content-keyed artefacts: found again, missed when an input changes, rebuilt when broken."""

import os

import torch

from fmrobot import cache


def test_stored_tensors_come_back_under_their_key_only(tmp_path):
    key = cache.content_key("v1", ["red block"])
    cache.save_tensors("t", key, {"x": torch.arange(6.0).reshape(2, 3)}, str(tmp_path))
    assert torch.equal(cache.load_tensors("t", key, str(tmp_path))["x"], torch.arange(6.0).reshape(2, 3))
    assert cache.load_tensors("t", cache.content_key("v1", ["blue block"]), str(tmp_path)) is None
    assert cache.content_key("ab", "c") != cache.content_key("a", "bc")


def test_a_corrupt_or_mislabelled_entry_is_a_miss(tmp_path):
    key = cache.content_key("k")
    path = cache.save_tensors("t", key, {"x": torch.ones(64)}, str(tmp_path))
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # a flipped byte in the payload: the file still parses
    path.write_bytes(bytes(data))
    assert cache.load_tensors("t", key, str(tmp_path)) is None
    path.write_bytes(b"not a safetensors file")
    assert cache.load_tensors("t", key, str(tmp_path)) is None
    # An intact entry copied under another key's name is not that key's entry.
    other = cache.content_key("other")
    cache.save_tensors("t", other, {"x": torch.zeros(2)}, str(tmp_path)).replace(path)
    assert cache.load_tensors("t", key, str(tmp_path)) is None


def test_a_file_digest_follows_the_content(tmp_path):
    f = tmp_path / "weights.bin"
    f.write_bytes(b"a" * 100)
    first = cache.file_digest(f, str(tmp_path / "c"))
    assert cache.file_digest(f, str(tmp_path / "c")) == first  # remembered
    f.write_bytes(b"b" * 100)  # same size; the modification time moves on
    os.utime(f, ns=(os.stat(f).st_atime_ns, os.stat(f).st_mtime_ns + 1_000_000))
    assert cache.file_digest(f, str(tmp_path / "c")) != first
