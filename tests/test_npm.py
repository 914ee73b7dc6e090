"""npm as a data source: tarball addresses, partial unpacking, the cache, Iconify icons as SVG.
Offline: the tarballs are made here and put where a download would land."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from avdemo.data.bank import iconify_svg
from avdemo.data.npm import MARKER, fetch_npm_packages, tarball_url, unpack


def _tarball(path: Path, files: dict[str, bytes]) -> Path:
    """An npm-style tarball: every file under `package/`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


FILES = {"package.json": b'{"license": "MIT"}', "assets/1f415.webp": b"dog", "assets/1f404.webp": b"cow"}


def test_tarball_url_scoped_and_plain():
    assert tarball_url("@lobehub/fluent-emoji-3d", "1.1.0") == \
        "https://registry.npmjs.org/@lobehub/fluent-emoji-3d/-/fluent-emoji-3d-1.1.0.tgz"
    assert tarball_url("left-pad", "1.3.0") == "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz"
    for bad in ("", "a/b", "@a/b/c", "../x"):
        with pytest.raises(ValueError, match="not an npm package name"):
            tarball_url(bad, "1.0.0")


def test_unpack_takes_only_the_named_files_once(tmp_path):
    tarball = _tarball(tmp_path / "pkg-1.0.0.tgz", FILES)
    root = unpack(tarball, tmp_path / "out", ["assets/1f415.webp"])
    assert (root / "assets/1f415.webp").read_bytes() == b"dog"
    assert not (root / "assets/1f404.webp").exists()
    (root / "assets/1f415.webp").write_bytes(b"kept")  # a complete unpack is reused...
    unpack(tarball, root, ["assets/1f415.webp"])
    assert (root / "assets/1f415.webp").read_bytes() == b"kept"
    unpack(tarball, root, ["assets/1f404.webp", "assets/1f415.webp"])  # ...but other files unpack again
    assert (root / "assets/1f404.webp").read_bytes() == b"cow" and (root / "assets/1f415.webp").read_bytes() == b"dog"
    with pytest.raises(KeyError, match="assets/nope.webp"):
        unpack(tarball, tmp_path / "other", ["assets/nope.webp"])
    assert not (tmp_path / "other" / MARKER).exists()


def test_fetch_uses_the_cached_tarball_and_adds_package_json(tmp_path):
    _tarball(tmp_path / "npm" / "@scope+emoji-2.0.0.tgz", FILES)
    roots = fetch_npm_packages({"@scope/emoji": {"version": "2.0.0"}}, {"@scope/emoji": ["assets/1f404.webp"]}, cache=tmp_path)
    root = roots["@scope/emoji"]
    assert root == tmp_path / "packages" / "@scope+emoji"
    assert json.loads((root / "package.json").read_text()) == {"license": "MIT"}
    assert (root / "assets/1f404.webp").read_bytes() == b"cow"


def test_iconify_icon_becomes_a_standalone_svg():
    icon_set = {"prefix": "demo", "width": 36, "height": 36,
                "icons": {"dog": {"body": "<path d='M0 0h36v36H0z'/>"}, "wide": {"body": "<g/>", "width": 48, "left": -6}}}
    svg = iconify_svg(icon_set, "dog").decode()
    assert svg.startswith("<svg ") and 'viewBox="0 0 36 36"' in svg and "<path d='M0 0h36v36H0z'/></svg>" in svg
    assert 'viewBox="-6 0 48 36"' in iconify_svg(icon_set, "wide").decode()
    with pytest.raises(KeyError, match="'cat' is not in the Iconify set 'demo'"):
        iconify_svg(icon_set, "cat")
