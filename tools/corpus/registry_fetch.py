"""Fetch pinned packages from their registries into a download cache, by exact name, version and SHA-256.

Debian packages come with `apt-get download NAME=VERSION` (no installation, no root needed beyond what apt's
lists need); npm packages with `npm pack NAME@VERSION`. A download is kept in the cache as
`debian/NAME_VERSION_all.deb` or `npm/NAME@VERSION.tgz` (with `/` and `:` escaped) beside a small JSON record of
the address it came from, so a second run reads the cache and asks no registry. Every file, fresh or cached, must
have the pinned SHA-256, or the build stops saying which was expected and which was found.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import List


@dataclass(frozen=True)
class PinnedPackage:
    """One package at one exact version, as a registry serves it."""
    registry: str  # "debian" or "npm"
    name: str
    version: str
    sha256: str  # of the downloaded .deb or .tgz


@dataclass(frozen=True)
class Download:
    package: PinnedPackage
    path: str  # the cached file
    url: str  # where the registry client fetched it from


class FetchError(RuntimeError):
    pass


def sha256_of_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_file_name(package: PinnedPackage) -> str:
    safe_version = package.version.replace(":", "%3a")
    if package.registry == "debian":
        return os.path.join("debian", f"{package.name}_{safe_version}_all.deb")
    if package.registry == "npm":
        return os.path.join("npm", f"{package.name.replace('/', '+')}@{safe_version}.tgz")
    raise ValueError(f"unknown registry {package.registry!r}: expected 'debian' or 'npm'")


def _run(command: List[str], cwd: str = None) -> str:
    try:
        result = subprocess.run(command, cwd=cwd, check=False, capture_output=True, text=True)
    except FileNotFoundError:
        raise FetchError(f"'{command[0]}' is not installed: it is needed to fetch packages that are not in the "
                         f"download cache yet") from None
    if result.returncode != 0:
        raise FetchError(f"'{' '.join(command)}' failed (exit {result.returncode}): "
                         f"{(result.stderr or result.stdout).strip()[-2000:]}")
    return result.stdout


def debian_versions_available(name: str) -> List[str]:
    """The versions of a Debian package that apt's current lists offer (`apt-cache madison`)."""
    out = _run(["apt-cache", "madison", name])
    versions = []
    for line in out.splitlines():
        fields = [f.strip() for f in line.split("|")]
        if len(fields) >= 2 and fields[0] == name and fields[1] not in versions:
            versions.append(fields[1])
    return versions


def _fetch_debian(package: PinnedPackage, target: str) -> str:
    available = debian_versions_available(package.name)
    if package.version not in available:
        raise FetchError(f"Debian package {package.name}: pinned version {package.version} is not available "
                         f"(apt offers {', '.join(available) or 'no version'}); the pins are for Debian 12 "
                         f"(bookworm): run 'apt-get update' on such a system, or update the pin")
    spec = f"{package.name}={package.version}"
    # --print-uris prints: 'URL' FILE SIZE SHA256:HEX
    uris = _run(["apt-get", "download", "--print-uris", spec]).split()
    url = uris[0].strip("'") if uris else ""
    with tempfile.TemporaryDirectory(dir=os.path.dirname(target)) as scratch:
        _run(["apt-get", "download", spec], cwd=scratch)
        debs = [f for f in os.listdir(scratch) if f.endswith(".deb")]
        if len(debs) != 1:
            raise FetchError(f"apt-get download {spec}: expected one .deb, found {debs}")
        shutil.move(os.path.join(scratch, debs[0]), target)
    return url


def _fetch_npm(package: PinnedPackage, target: str) -> str:
    spec = f"{package.name}@{package.version}"
    view = json.loads(_run(["npm", "view", spec, "dist.tarball", "version", "--json"]) or "{}")
    if view.get("version") != package.version:
        raise FetchError(f"npm package {package.name}: pinned version {package.version} is not available "
                         f"(the registry answered {view.get('version')!r})")
    with tempfile.TemporaryDirectory(dir=os.path.dirname(target)) as scratch:
        _run(["npm", "pack", spec, "--pack-destination", scratch, "--silent"], cwd=scratch)
        tarballs = [f for f in os.listdir(scratch) if f.endswith(".tgz")]
        if len(tarballs) != 1:
            raise FetchError(f"npm pack {spec}: expected one .tgz, found {tarballs}")
        shutil.move(os.path.join(scratch, tarballs[0]), target)
    return view.get("dist.tarball", "")


def fetch(package: PinnedPackage, cache_dir: str) -> Download:
    """The package's file in the cache, downloading it first when it is not there."""
    target = os.path.join(cache_dir, cache_file_name(package))
    record_path = target + ".json"
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.exists(target) and os.path.exists(record_path):
        with open(record_path, encoding="utf-8") as f:
            url = json.load(f)["url"]
    else:
        if os.path.exists(target):
            os.remove(target)
        url = (_fetch_debian if package.registry == "debian" else _fetch_npm)(package, target)
        with open(record_path, "w", encoding="utf-8") as f:
            json.dump({"registry": package.registry, "name": package.name, "version": package.version,
                       "url": url}, f, indent=1, sort_keys=True)
    found = sha256_of_file(target)
    if found != package.sha256:
        raise FetchError(f"{package.registry} package {package.name} {package.version}: expected SHA-256 "
                         f"{package.sha256}, found {found} in {target} (delete it to download again)")
    return Download(package, target, url)
