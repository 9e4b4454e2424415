#!/usr/bin/python3
"""Build the free-licence English training corpus: `build.py OUT_DIR`.

Fetches every pinned package of corpus_sources.SOURCES into OUT_DIR/downloads/ (kept between runs), extracts and
cleans each source's documents, drops duplicates, and writes OUT_DIR/SOURCE.txt per source, OUT_DIR/manifest.json,
and OUT_DIR/corpus.tar.xz holding both. The document format is described in corpus_output.py and README.md.
Runs with Python 3.9+ and its standard library; fetching needs `apt-get` (Debian 12) and `npm`.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from corpus_output import (SEPARATOR, Deduplicator, format_documents, manifest_json, remove_separator,  # noqa: E402
                           sha256_hex, write_tarball)
from corpus_sources import SOURCES, Source  # noqa: E402
from package_archives import open_deb, open_npm_tarball  # noqa: E402
from registry_fetch import FetchError, fetch  # noqa: E402

MANIFEST_FORMAT = "attnprox-corpus/1"
TARBALL_NAME = "corpus.tar.xz"


def open_package(source: Source, downloads: str):
    download = fetch(source.package, downloads)
    with open(download.path, "rb") as f:
        data = f.read()
    description = f"{source.package.registry} package {source.package.name} {source.package.version}"
    files = open_deb(data, description) if source.package.registry == "debian" else open_npm_tarball(data,
                                                                                                      description)
    files.read(source.licence_file)  # the licence statement must be where the manifest says
    return download, files


def build_source(source: Source, downloads: str, deduplicator: Deduplicator) -> Dict:
    """Writes nothing; returns the source's manifest record with its formatted text under '_text'."""
    download, files = open_package(source, downloads)
    raw_bytes, kept, empty, duplicates = 0, [], 0, 0
    for raw, cleaned in source.documents(files):
        raw_bytes += len(raw.encode("utf-8"))
        cleaned = remove_separator(cleaned).strip("\n")
        if not cleaned.strip():
            empty += 1
        elif deduplicator.is_duplicate(cleaned):
            duplicates += 1
        else:
            kept.append(cleaned)
    if not kept:
        raise RuntimeError(f"source {source.name}: expected documents, found none left after cleaning")
    text = format_documents(kept).encode("utf-8")
    return {
        "name": source.name,
        "file": source.name + ".txt",
        "description": source.description,
        "registry": source.package.registry,
        "package": source.package.name,
        "version": source.package.version,
        "download_sha256": source.package.sha256,
        "download_url": download.url,
        "licence": source.licence,
        "licence_note": source.licence_note,
        "licence_file": source.licence_file,
        "raw_text_bytes": raw_bytes,
        "cleaned_bytes": len(text),
        "documents": len(kept),
        "empty_documents_dropped": empty,
        "duplicate_documents_dropped": duplicates,
        "sha256": sha256_hex(text),
        "_text": text,
    }


def build(out_dir: str, only: List[str] = None) -> Dict:
    downloads = os.path.join(out_dir, "downloads")
    os.makedirs(downloads, exist_ok=True)
    deduplicator = Deduplicator()
    records = []
    for source in SOURCES:
        if only and source.name not in only:
            continue
        started = time.monotonic()
        record = build_source(source, downloads, deduplicator)
        with open(os.path.join(out_dir, record["file"]), "wb") as f:
            f.write(record["_text"])
        print(f"{source.name:22s} {record['documents']:6d} documents {record['cleaned_bytes'] / 1e6:8.2f} MB "
              f"cleaned (raw {record['raw_text_bytes'] / 1e6:.2f} MB) in {time.monotonic() - started:.0f} s",
              flush=True)
        records.append(record)
    manifest = {
        "format": MANIFEST_FORMAT,
        "separator": SEPARATOR,
        "document_format": "each document: paragraphs joined by a blank line, then a blank line and a line "
                           "holding exactly the separator; one more blank line before the next document",
        "sources": [{k: v for k, v in r.items() if not k.startswith("_")} for r in records],
        "totals": {
            "sources": len(records),
            "documents": sum(r["documents"] for r in records),
            "raw_text_bytes": sum(r["raw_text_bytes"] for r in records),
            "cleaned_bytes": sum(r["cleaned_bytes"] for r in records),
        },
    }
    manifest_bytes = manifest_json(manifest).encode("utf-8")
    with open(os.path.join(out_dir, "manifest.json"), "wb") as f:
        f.write(manifest_bytes)
    members = [(r["file"], r["_text"]) for r in records] + [("manifest.json", manifest_bytes)]
    tarball = os.path.join(out_dir, TARBALL_NAME)
    write_tarball(tarball, members)
    total = manifest["totals"]
    print(f"total: {total['documents']} documents, {total['cleaned_bytes'] / 1e6:.2f} MB cleaned; "
          f"{TARBALL_NAME}: {os.path.getsize(tarball) / 1e6:.2f} MB", flush=True)
    return manifest


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", help="output folder (created); downloads are cached in OUT_DIR/downloads")
    parser.add_argument("--only", nargs="*", metavar="SOURCE",
                        help=f"build only these sources (of: {', '.join(s.name for s in SOURCES)})")
    args = parser.parse_args(argv)
    unknown = set(args.only or []) - {s.name for s in SOURCES}
    if unknown:
        parser.error(f"unknown source(s) {sorted(unknown)}: expected names from {[s.name for s in SOURCES]}")
    try:
        build(args.out_dir, args.only)
    except FetchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
