"""The .rcc reader against small resource files written here (no Qt, no network, no packages)."""

from __future__ import annotations

import struct
import zlib

import pytest

from avdemo.data.rcc import iter_rcc, list_rcc, read_rcc

FILES = {
    "top.txt": (b"plain bytes at the root", False),
    "sounds/a.ogg": (b"OggS" + bytes(range(256)) * 4, True),
    "sounds/deep/b.svg": (b"<svg xmlns='http://www.w3.org/2000/svg'/>", False),
    "sounds/deep/c.bin": (b"\x00\x01" * 500, True),
}


def write_rcc(path, files: dict[str, tuple[bytes, bool]], version: int) -> None:
    """A minimal rcc writer: breadth-first tree (a directory's children are consecutive
    nodes, as Qt lays them out), names table, data table; compressed entries use qCompress's
    layout (u32 uncompressed size, then a zlib stream)."""
    tree: dict = {}
    for member, content in files.items():
        *dirs, leaf = member.split("/")
        node = tree
        for d in dirs:
            node = node.setdefault(d, {})
        node[leaf] = content

    names, name_offsets = bytearray(), {}
    data = bytearray()

    def name_offset(name: str) -> int:
        if name not in name_offsets:
            name_offsets[name] = len(names)
            encoded = name.encode("utf-16-be")
            names.extend(struct.pack(">HI", len(name), zlib.crc32(encoded)) + encoded)
        return name_offsets[name]

    # Breadth-first: each entry is (name, subtree-or-content); node 0 is the root.
    order = [("", tree)]
    first_child = {}
    i = 0
    while i < len(order):
        _, item = order[i]
        if isinstance(item, dict):
            first_child[i] = len(order)
            order.extend(sorted(item.items()))
        i += 1

    nodes = bytearray()
    for index, (name, item) in enumerate(order):
        offset = 0 if index == 0 else name_offset(name)
        if isinstance(item, dict):
            nodes += struct.pack(">IHII", offset, 2, len(item), first_child[index])
        else:
            content, compress = item
            payload = struct.pack(">I", len(content)) + zlib.compress(content) if compress else content
            nodes += struct.pack(">IHHHI", offset, 1 if compress else 0, 0, 1, len(data))
            data += struct.pack(">I", len(payload)) + payload
        if version >= 2:
            nodes += struct.pack(">Q", 1_700_000_000_000)  # modification time (ms)

    header = 20
    tree_offset = header
    data_offset = tree_offset + len(nodes)
    names_offset = data_offset + len(data)
    blob = b"qres" + struct.pack(">4I", version, tree_offset, data_offset, names_offset) + nodes + data + names
    path.write_bytes(blob)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_reads_synthetic_rcc(tmp_path, version):
    path = tmp_path / f"test_v{version}.rcc"
    write_rcc(path, FILES, version)
    assert sorted(list_rcc(path)) == sorted(FILES)
    for member, (content, _) in FILES.items():
        assert read_rcc(path, member) == content
    assert read_rcc(path, "/sounds/a.ogg") == FILES["sounds/a.ogg"][0]  # a leading slash is tolerated
    assert dict(iter_rcc(path)) == {m: c for m, (c, _) in FILES.items()}


def test_compressed_entries_really_are_compressed(tmp_path):
    path = tmp_path / "c.rcc"
    write_rcc(path, FILES, 2)
    assert len(path.read_bytes()) < sum(len(c) for c, _ in FILES.values())


def test_missing_member_raises_key_error(tmp_path):
    path = tmp_path / "m.rcc"
    write_rcc(path, FILES, 1)
    with pytest.raises(KeyError, match="nope.ogg"):
        read_rcc(path, "sounds/nope.ogg")


def test_not_an_rcc_file(tmp_path):
    path = tmp_path / "fake.rcc"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(64))
    with pytest.raises(ValueError, match="not a Qt resource file"):
        list_rcc(path)
    empty = tmp_path / "empty.rcc"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="not a Qt resource file"):
        read_rcc(empty, "x")


def test_unknown_version_rejected(tmp_path):
    path = tmp_path / "v9.rcc"
    write_rcc(path, FILES, 1)
    blob = bytearray(path.read_bytes())
    blob[4:8] = struct.pack(">I", 9)
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="version 9"):
        list_rcc(path)
