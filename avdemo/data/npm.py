"""npm packages as a data source: emoji artwork (Iconify sets, 3D Fluent emoji) without Node.

The registry serves every published version as a gzipped tarball whose files sit under
`package/`. We download the pinned version's tarball into the cache once and unpack only the
files the manifest names (the 3D emoji tarball holds 3,400 images; we need about twenty).

Layout under the cache root:
- `npm/SCOPE+NAME-VERSION.tgz`: the downloaded tarballs;
- `packages/SCOPE+NAME/`: the unpacked files (without the `package/` prefix), with a marker.
"""

from __future__ import annotations

import tarfile
import urllib.request
from pathlib import Path

from avdemo.data.cache import cache_dir

REGISTRY = "https://registry.npmjs.org"
# Written after the wanted files are unpacked; it lists them, so other files unpack again.
MARKER = ".avdemo-extracted"


def tarball_url(name: str, version: str) -> str:
    """The registry address of a version's tarball: `@scope/pkg` -> `.../@scope/pkg/-/pkg-1.0.0.tgz`."""
    if not name or name.startswith(".") or name.count("/") > (1 if name.startswith("@") else 0):
        raise ValueError(f"not an npm package name: {name!r}")
    return f"{REGISTRY}/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"


def fetch_npm_packages(packages: dict[str, dict], only: dict[str, list[str]], cache: Path | None = None) -> dict[str, Path]:
    """Download each package's pinned `version` and unpack the files `only[name]` lists
    (plus `package.json`, which holds the license); return name -> unpacked root.

    Raises RuntimeError naming the package when it cannot be downloaded, and KeyError naming
    the files a tarball lacks.
    """
    cache = Path(cache) if cache is not None else cache_dir()
    roots = {}
    for name, spec in packages.items():
        folder = name.replace("/", "+")
        tarball = cache / "npm" / f"{folder}-{spec['version']}.tgz"
        if not tarball.exists():
            _download(tarball_url(name, spec["version"]), tarball)
        roots[name] = unpack(tarball, cache / "packages" / folder, ["package.json", *only.get(name, [])])
    return roots


def _download(url: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
    except OSError as error:
        raise RuntimeError(f"could not download {url}: {error}") from error
    partial.rename(target)


def unpack(tarball: Path, root: Path, paths: list[str]) -> Path:
    """Unpack `paths` (relative to the tarball's `package/` folder) into `root`, once."""
    wanted = sorted(set(paths))
    marker = tarball.name + "\n" + "".join(f"{p}\n" for p in wanted)
    if (root / MARKER).exists() and (root / MARKER).read_text() == marker:
        return root
    missing = set(wanted)
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive:
            relative = member.name.split("/", 1)[-1]
            if member.isfile() and relative in missing:
                target = root / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.extractfile(member).read())
                missing.discard(relative)
    if missing:
        raise KeyError(f"{tarball.name} has no {', '.join(sorted(missing))}")
    (root / MARKER).write_text(marker)
    return root
