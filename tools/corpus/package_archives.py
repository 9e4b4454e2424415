"""Read the files inside a Debian package (.deb) or an npm tarball (.tgz) with the standard library only.

A .deb is an `ar` archive whose member `data.tar.{xz,gz,bz2}` holds the installed files; an npm tarball is a gzip'd
tar whose files sit under `package/`. Both are opened into a `PackageFiles`: the package's files by their path as
installed (`usr/share/...` for Debian, `data/...` for npm), read lazily from the archive held in memory.
"""
from __future__ import annotations

import fnmatch
import io
import tarfile
from typing import Dict, List

AR_MAGIC = b"!<arch>\n"
AR_HEADER_SIZE = 60


class PackageFiles:
    """The regular files of one package, by installed path (no leading `./` or `package/`)."""

    def __init__(self, description: str, files: Dict[str, bytes]):
        self.description = description
        self._files = files

    def paths(self, pattern: str = "*") -> List[str]:
        """Installed paths matching the shell pattern, sorted."""
        return sorted(p for p in self._files if fnmatch.fnmatchcase(p, pattern))

    def read(self, path: str) -> bytes:
        if path not in self._files:
            near = ", ".join(self.paths("*" + path.rsplit("/", 1)[-1])[:5]) or "no file of that name"
            raise FileNotFoundError(f"{self.description}: expected a file {path}, found {near}")
        return self._files[path]

    def read_text(self, path: str) -> str:
        return self.read(path).decode("utf-8")


def ar_members(archive: bytes, description: str) -> Dict[str, bytes]:
    """The members of a System V / GNU `ar` archive (the container of a .deb), by name."""
    if not archive.startswith(AR_MAGIC):
        raise ValueError(f"{description}: expected an ar archive starting with {AR_MAGIC!r}, "
                         f"found {archive[:8]!r}")
    members = {}
    position = len(AR_MAGIC)
    while position + AR_HEADER_SIZE <= len(archive):
        header = archive[position:position + AR_HEADER_SIZE]
        if header[58:60] != b"`\n":
            raise ValueError(f"{description}: ar member header at byte {position} does not end with '`\\n'")
        name = header[0:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        start = position + AR_HEADER_SIZE
        members[name] = archive[start:start + size]
        position = start + size + (size % 2)  # members are padded to an even offset
    return members


def _tar_files(tar_bytes: bytes, strip_prefix: str, description: str) -> Dict[str, bytes]:
    files = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:*") as tar:
        for member in tar:
            if not member.isfile():
                continue
            path = member.name
            if path.startswith("./"):
                path = path[2:]
            if strip_prefix:
                if not path.startswith(strip_prefix):
                    raise ValueError(f"{description}: expected every file under {strip_prefix}, found {member.name}")
                path = path[len(strip_prefix):]
            files[path] = tar.extractfile(member).read()
    return files


def open_deb(deb_bytes: bytes, description: str) -> PackageFiles:
    """The installed files of a Debian binary package."""
    members = ar_members(deb_bytes, description)
    data_names = [n for n in members if n.startswith("data.tar")]
    if len(data_names) != 1:
        raise ValueError(f"{description}: expected one data.tar.* member, found {sorted(members)}")
    if data_names[0].endswith(".zst"):
        raise ValueError(f"{description}: data member {data_names[0]} is zstd-compressed, which Python's "
                         f"standard library cannot read")
    return PackageFiles(description, _tar_files(members[data_names[0]], "", description))


def open_npm_tarball(tgz_bytes: bytes, description: str) -> PackageFiles:
    """The files of an npm package tarball, paths relative to the package root."""
    return PackageFiles(description, _tar_files(tgz_bytes, "package/", description))
