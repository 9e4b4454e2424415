#!/usr/bin/env python3
"""Writes the model files the C++ tests load: good ones exported from the HF fixtures, and broken ones, each
breaking the model-file contract in one way.

    PYTHONPATH=<build>/python python3 tests/tools/make_test_models.py OUT_DIR
"""
import json
import os
import shutil
import struct
import sys
import tempfile
import zipfile
from typing import List, Optional, Tuple

import torch
from torch import Tensor

import attnprox
from attnprox.reference.export import MANIFEST_NAME, TOKENIZER_NAME

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "hf")


class FixedOutput(torch.nn.Module):
    """A forward that returns Q/K of a fixed shape filled with a constant (NaN for the non-finite test)."""

    def __init__(self, heads: int, kv_heads: int, head_dim: int, fill: float):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim, self.fill = heads, kv_heads, head_dim, fill

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tuple[List[Tensor], List[Tensor]]:
        b, n = input_ids.shape[0], input_ids.shape[1]
        q = torch.full([b, self.heads, n, self.head_dim], self.fill)
        k = torch.full([b, self.kv_heads, n, self.head_dim], self.fill)
        return [q], [k]


class NanAtPadding(torch.nn.Module):
    """Finite Q/K for real tokens, NaN at padding positions (which must be ignored)."""

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tuple[List[Tensor], List[Tensor]]:
        b, n = input_ids.shape[0], input_ids.shape[1]
        real = (attention_mask != 0).view(b, 1, n, 1)
        q = torch.where(real, torch.ones(b, 2, n, 4), torch.full([b, 2, n, 4], float("nan")))
        k = torch.where(real, torch.ones(b, 1, n, 4), torch.full([b, 1, n, 4], float("nan")))
        return [q], [k]


class ForwardOnly(torch.nn.Module):
    """A model file's forward without forward_layers (as files written before it existed): choosing layers at run
    time then runs the whole forward and keeps the layers asked for."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tuple[List[Tensor], List[Tensor]]:
        return self.model(input_ids, attention_mask)


class ForwardOnlyWithTypes(torch.nn.Module):
    """ForwardOnly for a file that takes token type ids (a BERT file written before forward_layers existed)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor,
                token_type_ids: Optional[Tensor] = None) -> Tuple[List[Tensor], List[Tensor]]:
        return self.model(input_ids, attention_mask, token_type_ids)


class ForwardLayersWithoutTypes(torch.nn.Module):
    """A file whose manifest lists token_type_ids but whose forward_layers does not take them (against the
    contract): loading refuses it."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor,
                token_type_ids: Optional[Tensor] = None) -> Tuple[List[Tensor], List[Tensor]]:
        return self.model(input_ids, attention_mask, token_type_ids)

    @torch.jit.export
    def forward_layers(self, input_ids: Tensor, attention_mask: Tensor,
                       layers: List[int]) -> Tuple[List[Tensor], List[Tensor]]:
        return self.model.forward_layers(input_ids, attention_mask, layers)


class WrongForwardLayers(FixedOutput):
    """forward as the manifest says, forward_layers returning every layer instead of those asked for."""

    @torch.jit.export
    def forward_layers(self, input_ids: Tensor, attention_mask: Tensor,
                       layers: List[int]) -> Tuple[List[Tensor], List[Tensor]]:
        q, k = self.forward(input_ids, attention_mask)
        return q + q, k + k


class SingleTensor(torch.nn.Module):
    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return input_ids.float()


def manifest(heads=2, kv_heads=1, head_dim=4, **changes) -> dict:
    m = {"format": "attnprox-model", "format_version": 1, "family": "test", "num_layers": 1,
         "captured_layers": [0], "num_heads": heads, "num_kv_heads": kv_heads, "head_dim": head_dim,
         "causal": True, "max_positions": 16, "vocab_size": 10, "dtype": "float32",
         "layers": [{"index": 0, "scaling": 0.5}]}
    m.update(changes)
    return m


def save(module, path, manifest_obj=None, manifest_text=None):
    extra = {}
    if manifest_obj is not None:
        extra[MANIFEST_NAME] = json.dumps(manifest_obj)
    if manifest_text is not None:
        extra[MANIFEST_NAME] = manifest_text
    torch.jit.save(torch.jit.script(module), path, _extra_files=extra)


WORDS = ["the", "a", "bank", "by", "river", "was", "steep", "sky", "is", "blue", "write", "story", "about", "ai",
         "emily", "wanted", "to", "visit", "paris", "she", "took", "french", "lessons", ".", ","]


def tiny_tokenizer_json(template: bool) -> dict:
    """A word-level tokenizer over 25 words (ids 10..34) with <s> 1, [UNK] 3, [CLS] 4, [SEP] 5, lowercasing; with
    `template`, [CLS] … [SEP] around every text."""
    vocab = {"<s>": 1, "[UNK]": 3, "[CLS]": 4, "[SEP]": 5}
    vocab.update({w: 10 + k for k, w in enumerate(WORDS)})
    special = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
                "special": True} for c, i in (("<s>", 1), ("[UNK]", 3), ("[CLS]", 4), ("[SEP]", 5))]
    post = None
    if template:
        post = {"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                           {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                         {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
                "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [4], "tokens": ["[CLS]"]},
                                               "[SEP]": {"id": "[SEP]", "ids": [5], "tokens": ["[SEP]"]}}}
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": special,
            "normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": post,
            "decoder": None, "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}}


def export_with_tokenizer(fixture: str, out_path: str, template: bool, tokenizer_config=None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        hf_dir = os.path.join(tmp, fixture)
        shutil.copytree(os.path.join(FIXTURES, fixture), hf_dir)
        with open(os.path.join(hf_dir, "tokenizer.json"), "w") as f:
            json.dump(tiny_tokenizer_json(template), f)
        if tokenizer_config is not None:
            with open(os.path.join(hf_dir, "tokenizer_config.json"), "w") as f:
                json.dump(tokenizer_config, f)
        attnprox.export_reference(hf_dir, out_path)


def without_inputs(src: str, dst: str) -> None:
    """A copy of a model file whose manifest does not list the forward's inputs, as files written before attnprox
    took text pairs."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("extra/" + MANIFEST_NAME):
                manifest_obj = json.loads(data)
                del manifest_obj["inputs"]
                data = json.dumps(manifest_obj).encode()
            zout.writestr(item, data)


def flip_data_bit(src: str, dst: str, entry_suffix: str) -> None:
    """A copy of the model file at `src` with one bit of an entry's data flipped (its CRC-32 no longer matches)."""
    data = bytearray(open(src, "rb").read())
    with zipfile.ZipFile(src) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(entry_suffix))
    name_size, extra_size = struct.unpack_from("<HH", data, info.header_offset + 26)
    at = info.header_offset + 30 + name_size + extra_size + info.compress_size // 2
    data[at] ^= 0x04
    with open(dst, "wb") as f:
        f.write(data)


def main(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    for name in ["gpt2", "bert", "distilbert", "llama", "qwen3"]:
        attnprox.export_reference(os.path.join(FIXTURES, name), os.path.join(out, f"{name}.apx"))
    attnprox.export_reference(os.path.join(FIXTURES, "llama"), os.path.join(out, "llama-layer1.apx"), layers=[1])
    export_with_tokenizer("bert", os.path.join(out, "bert-text.apx"), template=True)
    export_with_tokenizer("llama", os.path.join(out, "llama-text.apx"), template=False,
                          tokenizer_config={"add_bos_token": True})
    without_inputs(os.path.join(out, "bert-text.apx"), os.path.join(out, "bert-text-no-inputs.apx"))

    with open(os.path.join(out, "not_an_archive.apx"), "w") as f:
        f.write("this is a text file, not a model\n")
    with zipfile.ZipFile(os.path.join(out, "plain_zip.apx"), "w") as z:
        z.writestr("hello.txt", "a zip archive that is not TorchScript")
    save(FixedOutput(2, 1, 4, 0.0), os.path.join(out, "no_manifest.apx"))
    save(FixedOutput(2, 1, 4, 0.0), os.path.join(out, "bad_json.apx"), manifest_text="{not json")
    save(FixedOutput(2, 1, 4, 0.0), os.path.join(out, "wrong_heads.apx"), manifest(heads=4))
    save(FixedOutput(2, 1, 4, 0.0), os.path.join(out, "wrong_layers.apx"),
         manifest(num_layers=2, captured_layers=[0, 1], layers=[{"index": 0, "scaling": 0.5},
                                                               {"index": 1, "scaling": 0.5}]))
    save(FixedOutput(2, 1, 4, 0.0), os.path.join(out, "bad_manifest.apx"), manifest(num_kv_heads=3, num_heads=4))
    # A value nested 100,000 levels deep where an integer belongs (its message once overflowed the stack).
    deep = json.dumps(manifest(format_version=0))
    deep = deep.replace('"format_version": 0', '"format_version": ' + "[" * 100000 + "]" * 100000)
    save(FixedOutput(2, 1, 4, 0.0), os.path.join(out, "deep_manifest.apx"), manifest_text=deep)
    save(SingleTensor(), os.path.join(out, "single_tensor.apx"), manifest())
    save(FixedOutput(2, 1, 4, float("nan")), os.path.join(out, "nan.apx"), manifest())
    save(FixedOutput(2, 1, 4, 0.0), os.path.join(out, "constant.apx"), manifest())
    flip_data_bit(os.path.join(out, "constant.apx"), os.path.join(out, "corrupt.apx"), "/code/__torch__.py")
    save(NanAtPadding(), os.path.join(out, "nan_at_padding.apx"), manifest())
    save(WrongForwardLayers(2, 1, 4, 0.0), os.path.join(out, "wrong_forward_layers.apx"), manifest())
    forward_only(os.path.join(out, "llama.apx"), os.path.join(out, "llama-forward-only.apx"))
    forward_only(os.path.join(out, "bert-text.apx"), os.path.join(out, "bert-text-forward-only.apx"),
                 ForwardOnlyWithTypes)
    forward_only(os.path.join(out, "bert-text.apx"), os.path.join(out, "bert-text-forward-layers-without-types.apx"),
                 ForwardLayersWithoutTypes, keeps_forward_layers=True)


def forward_only(src: str, dst: str, wrapper=ForwardOnly, keeps_forward_layers: bool = False) -> None:
    """`src` (a reference model file) again, its forward wrapped so that the file has no forward_layers (or, with
    `keeps_forward_layers`, the one `wrapper` defines); the manifest and tokenizer kept."""
    with zipfile.ZipFile(src) as z:
        extra = {name: z.read(next(n for n in z.namelist() if n.endswith("extra/" + name))).decode()
                 for name in (MANIFEST_NAME, TOKENIZER_NAME)
                 if any(n.endswith("extra/" + name) for n in z.namelist())}
    module = torch.jit.load(src)
    assert module._c._has_method("forward_layers")
    wrapped = torch.jit.script(wrapper(module))
    assert wrapped._c._has_method("forward_layers") == keeps_forward_layers
    torch.jit.save(wrapped, dst, _extra_files=extra)


if __name__ == "__main__":
    main(sys.argv[1])
