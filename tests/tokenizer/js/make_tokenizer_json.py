#!/usr/bin/env python3
"""Builds tokenizer.json (+ tokenizer_config.json) for the two tokenizers the shared data holds only as raw
vocabularies, so that the JavaScript reference (@lenml/tokenizers) can load them; the files are what
`attnprox.reference.tokenizer_files` writes (the setup of tests/gpu/make_tokenizer_fixtures.py).

    PYTHONPATH=build/python python3 tests/tokenizer/js/make_tokenizer_json.py {gpt2|bert} DATA_DIR OUT_DIR
"""
import sys

from attnprox.reference.tokenizer_files import write_tokenizer_json


def main(kind, data_dir, out_dir):
    return write_tokenizer_json(kind, data_dir, out_dir)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    for written in main(*sys.argv[1:]):
        print(written)
