"""Read Qt binary resource files (`.rcc`) without Qt.

GCompris ships its sounds and pictures inside `.rcc` bundles (`usr/share/gcompris-qt/rcc/`);
this reader gets them out with the standard library alone.

Format (all big-endian): magic `qres`, then u32 format version, tree offset, data offset,
names offset. The tree is an array of nodes, node 0 the root; a node is u32 name offset, u16
flags, then for a directory (flags & 2) u32 child count and u32 first child index, else u16
country, u16 language, u32 data offset; versions >= 2 append a u64 modification time (22-byte
nodes instead of 14). A name is u16 length, u32 hash, UTF-16BE characters. A file's data is
u32 size then the bytes; flags & 1 means zlib (with a 4-byte uncompressed-size prefix before
the stream), flags & 4 zstd.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

MAGIC = b"qres"
COMPRESSED, DIRECTORY, COMPRESSED_ZSTD = 1, 2, 4


class RccFile:
    """An opened `.rcc` file: its bytes and the index member path -> tree node offset."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.blob = self.path.read_bytes()
        if len(self.blob) < 20 or self.blob[:4] != MAGIC:
            raise ValueError(f"{self.path} is not a Qt resource file (no 'qres' magic)")
        self.version, self.tree, self.data, self.names = struct.unpack_from(">4I", self.blob, 4)
        if self.version not in (1, 2, 3):
            raise ValueError(f"{self.path}: unsupported .rcc format version {self.version}")
        self.node_size = 14 if self.version == 1 else 22
        self.members: dict[str, int] = {}
        self._walk(0, "", depth=0)

    def _walk(self, index: int, prefix: str, depth: int) -> None:
        if depth > 64:
            raise ValueError(f"{self.path}: resource tree too deep (corrupt file?)")
        node = self.tree + index * self.node_size
        name_offset, flags = struct.unpack_from(">IH", self.blob, node)
        name = "" if index == 0 else self._name(name_offset)
        path = f"{prefix}/{name}" if prefix else name
        if flags & DIRECTORY:
            count, first = struct.unpack_from(">II", self.blob, node + 6)
            for child in range(first, first + count):
                self._walk(child, path, depth + 1)
        else:
            self.members[path] = node

    def _name(self, offset: int) -> str:
        start = self.names + offset
        (length,) = struct.unpack_from(">H", self.blob, start)
        return self.blob[start + 6 : start + 6 + 2 * length].decode("utf-16-be")

    def read(self, member: str) -> bytes:
        """The uncompressed bytes of `member` ('/'-joined path, no leading slash)."""
        member = member.strip("/")
        if member not in self.members:
            raise KeyError(f"{member!r} is not in {self.path}")
        node = self.members[member]
        (flags,) = struct.unpack_from(">H", self.blob, node + 4)
        (offset,) = struct.unpack_from(">I", self.blob, node + 10)
        start = self.data + offset
        (size,) = struct.unpack_from(">I", self.blob, start)
        payload = self.blob[start + 4 : start + 4 + size]
        if flags & COMPRESSED:
            # 4-byte big-endian uncompressed size, then a zlib stream (qCompress's layout).
            return zlib.decompress(payload[4:])
        if flags & COMPRESSED_ZSTD:
            return _zstd_decompress(payload, f"{self.path}:{member}")
        return payload


def _zstd_decompress(payload: bytes, where: str) -> bytes:
    """Zstandard needs a third-party module; say so clearly when none is installed."""
    try:
        import zstandard
    except ImportError:
        try:
            from compression import zstd  # Python >= 3.14
        except ImportError:
            raise RuntimeError(
                f"{where} is zstd-compressed; install the 'zstandard' package to read it"
            ) from None
        return zstd.decompress(payload)
    return zstandard.ZstdDecompressor().decompress(payload, max_output_size=1 << 30)


def list_rcc(path: str | Path) -> list[str]:
    """All file paths inside an `.rcc`, '/'-joined without a leading slash, in tree order."""
    return list(RccFile(path).members)


def read_rcc(path: str | Path, member: str) -> bytes:
    """The bytes of one file inside an `.rcc` (KeyError if absent)."""
    return RccFile(path).read(member)


def iter_rcc(path: str | Path) -> Iterator[tuple[str, bytes]]:
    """Every (member path, bytes) of an `.rcc`, reading the file once."""
    rcc = RccFile(path)
    for member in rcc.members:
        yield member, rcc.read(member)
