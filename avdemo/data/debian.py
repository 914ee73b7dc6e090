"""Debian packages as a data source, without root and without installing anything.

The AV-Synth asset bank is built from openly licensed recordings and images that Debian ships
(GCompris, Tux Paint, OpenClipart, Noto emoji, GM soundfonts, wallpapers). `apt-get download`
fetches a `.deb` as an ordinary user and `dpkg-deb -x` unpacks it into a private folder, so
the material lands in avdemo's cache and never touches the system.

Layout under the cache root:
- `debs/NAME_VERSION_ARCH.deb`: the downloaded archives;
- `apt/lists/`: private package lists, only made when the system has none (see `_download`);
- `packages/NAME/`: the unpacked package (`usr/share/...`), with a marker file once complete.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from avdemo.data.cache import cache_dir

# Written after `dpkg-deb -x` succeeds: a folder without it was interrupted and is redone.
MARKER = ".avdemo-extracted"


def fetch_packages(names: list[str], cache: Path | None = None, only: dict[str, list[str]] | None = None) -> dict[str, Path]:
    """Make sure each named package is downloaded and unpacked; return name -> unpacked root.

    `only` names, per package, the few paths to unpack instead of the whole package (0ad-data
    is 3.3 GB unpacked for a 1.3 MB share). Already downloaded `.deb` files and complete
    extractions are reused, so a second call is free. Raises RuntimeError naming the package
    when it cannot be downloaded or unpacked.
    """
    cache = Path(cache) if cache is not None else cache_dir()
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    roots = {}
    for name in names:
        deb = find_deb(debs, name) or _download(name, cache)
        roots[name] = _extract(name, deb, cache / "packages" / name, (only or {}).get(name))
    return roots


def find_deb(debs: Path, name: str) -> Path | None:
    """The downloaded `.deb` of `name` in `debs`, if any (newest name last, so take it).

    File names are `NAME_VERSION_ARCH.deb`, the version URL-quoted (`1%3a0.18` for `1:0.18`);
    matching on `NAME_` keeps `foo` from picking up `foo-data`.
    """
    found = sorted(p for p in debs.glob(f"{name}_*.deb") if p.name.split("_", 1)[0] == name)
    return found[-1] if found else None


def deb_version(deb: Path) -> str:
    """The package version recorded in a `.deb` (e.g. `1:0.18+dfsg-19`)."""
    out = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"cannot read the version of {deb}: {out.stderr.strip()}")
    return out.stdout.strip()


def _download(name: str, cache: Path) -> Path:
    """`apt-get download NAME` into `<cache>/debs`.

    The plain call uses the system's package lists. On a fresh container those lists are
    missing ("Unable to locate package"), and refreshing them normally needs root; so we then
    keep private lists under `<cache>/apt/lists` (and skip the root-owned lock) and retry.
    """
    debs = cache / "debs"
    result = _apt(["download", name], debs)
    if result.returncode != 0 and "unable to locate package" in result.stderr.lower():
        lists = cache / "apt" / "lists"
        (lists / "partial").mkdir(parents=True, exist_ok=True)
        private = ["-o", f"Dir::State::Lists={lists}", "-o", "Debug::NoLocking=1"]
        update = _apt([*private, "update"], debs)
        if update.returncode != 0:
            raise RuntimeError(f"apt-get update failed while fetching {name!r}: {update.stderr.strip()}")
        result = _apt([*private, "download", name], debs)
    deb = find_deb(debs, name)
    if result.returncode != 0 or deb is None:
        raise RuntimeError(f"could not download Debian package {name!r}: {result.stderr.strip()}")
    return deb


def _apt(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["apt-get", *args], cwd=cwd, capture_output=True, text=True)


def _extract(name: str, deb: Path, root: Path, paths: list[str] | None = None) -> Path:
    """Unpack once: the whole package (`dpkg-deb -x`) or only `paths` (its data tar piped to `tar`).

    The marker file tells a complete extraction from an interrupted one; it records the deb and
    the paths, so asking for other paths later unpacks again.
    """
    marker = deb.name + "\n" + "".join(f"{p}\n" for p in sorted(paths or []))
    if (root / MARKER).exists() and (root / MARKER).read_text() == marker:
        return root
    root.mkdir(parents=True, exist_ok=True)
    if paths is None:
        result = subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], capture_output=True, text=True)
    else:
        data = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
        result = subprocess.run(["tar", "-x", "-C", str(root), *[f"./{p.lstrip('./')}" for p in paths]],
                                stdin=data.stdout, capture_output=True, text=True)
        data.stdout.close()
        if data.wait() != 0 and result.returncode == 0:
            result = subprocess.CompletedProcess(data.args, data.returncode, "", f"dpkg-deb --fsys-tarfile failed on {deb}")
    if result.returncode != 0:
        raise RuntimeError(f"could not extract Debian package {name!r} from {deb}: {result.stderr.strip()}")
    (root / MARKER).write_text(marker)
    return root
