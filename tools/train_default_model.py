#!/usr/bin/env python3
"""Trains attnprox's default model: a small Qwen3-style decoder (RoPE, RMSNorm, q/k-norm, SwiGLU, grouped-query
attention, tied embeddings) and its byte-level BPE tokenizer, on the free-licence English text that
`tools/corpus/build.py` assembles from package registries. Writes a Hugging Face directory (`config.json`,
`model.safetensors` in float32, `tokenizer.json`, `tokenizer_config.json`) with the run's record beside it.

    python3 tools/train_default_model.py CORPUS OUT [--recipes base,deep] [--time-budget 340] [--seed 0]

The default model of models/default came from (its record: models/default/training.json):

    python3 tools/train_default_model.py corpus.tar.xz OUT --recipes synthetic --max-steps 24267 --stop-step 23587

CORPUS is the folder (or the `corpus.tar.xz`) that `tools/corpus/build.py` writes. Needs torch (CUDA for a
run of useful length; bfloat16 autocast, `torch.compile` where torch has it) and Hugging Face `tokenizers`
(the tokenizer is trained with it; `--tokenizer FILE` reuses one instead).

What a run does, in order:
  1. tokenizer: byte-level BPE of 8,192 entries (GPT-2's pre-tokenizer), one special token `<|endoftext|>`
     (id 0) that separates documents and is added before every text as its first token (BOS);
  2. data: every source's documents tokenized and joined with `<|endoftext|>`; the last 1 % of each source's
     tokens is the held-out (validation) split; training samples windows of the rest;
  3. training: one process per recipe (several share the GPU), AdamW, linear warm-up then cosine decay, a fixed
     number of steps (`--max-steps`; measured from the time budget on the first run and recorded, so that a
     rerun with the recorded `--max-steps` and seed repeats it), the held-out loss measured every `--eval-every`
     steps and the best checkpoint kept;
  4. selection: among the recipes trained on natural text alone, the lowest held-out loss among those whose
     attention shows a previous-token head (mean weight on i−1 ≥ 0.5) and an induction head (≥ 0.3, random 50
     tokens repeated, and the loss on the second copy at least 2× lower than on the first); failing that, the
     same among the recipes with synthetic repeats; failing that, the lowest held-out loss overall. The
     evaluation set (OneStopEnglish) is never used for training or selection;
  5. the chosen model is written as a Hugging Face directory, with `unigram_counts.npz` (the training split's
     token counts: the baseline the perplexity test compares against) and `training.json` (the run's record).

Copy augmentation: a share of training windows repeats one of its own spans later in the window (natural text
copied, as when a name or a phrase recurs), which is what in-context copying — induction heads — learns from; the
`synthetic` recipe also puts a span of random tokens twice into some windows.
"""
import argparse
import glob
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Dict, List

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

SPECIAL = "<|endoftext|>"
DOCUMENT_SEPARATOR = "\n" + SPECIAL + "\n"  # between documents in the corpus files (tools/corpus/README.md)
VOCAB_SIZE = int(os.environ.get("APX_TRAIN_VOCAB", 8192))
HELD_OUT_SHARE = 0.01


# ---------------------------------------------------------------------------------------------------------------
# Recipes: the model's shape and how it is trained.


@dataclass
class Recipe:
    name: str
    layers: int = 6
    hidden: int = 256
    intermediate: int = 768
    heads: int = 8
    kv_heads: int = 2
    head_dim: int = 32
    context: int = 1024
    rope_theta: float = 10000.0
    batch: int = 16
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup: int = 300
    weight_decay: float = 0.1
    dropout: float = 0.1
    copy_share: float = 0.3  # share of windows that repeat one of their own spans
    copy_span: tuple = (8, 96)  # length of the repeated span, tokens
    random_repeat_share: float = 0.0  # share of windows with a span of random tokens, repeated
    seed: int = 0


RECIPES: Dict[str, Recipe] = {
    # 6.6 M parameters: 8,192 × 256 embeddings (tied) + 6 × (attention 164 k + SwiGLU 590 k).
    "base": Recipe("base"),
    # The same parameter count spread over 8 thinner layers: more room to compose heads.
    "deep": Recipe("deep", layers=8, intermediate=512),
    # More copying in the data.
    "copy": Recipe("copy", copy_share=0.5),
    # No dropout, less weight decay: trains faster, overfits sooner.
    "lean": Recipe("lean", dropout=0.0, weight_decay=0.05),
    # As base, and about one window in ten (0.15 of those not copied) also holds a span of random tokens twice:
    # synthetic copying, the distribution the induction probe uses. Chosen only when no recipe trained on natural
    # text alone shows both heads.
    "synthetic": Recipe("synthetic", random_repeat_share=0.15),
}
SYNTHETIC = {"synthetic"}


def parameter_count(r: Recipe) -> int:
    attention = r.hidden * r.heads * r.head_dim * 2 + r.hidden * r.kv_heads * r.head_dim * 2 + 2 * r.head_dim
    mlp = 3 * r.hidden * r.intermediate
    return VOCAB_SIZE * r.hidden + r.layers * (attention + mlp + 2 * r.hidden) + r.hidden


# ---------------------------------------------------------------------------------------------------------------
# The model: Hugging Face `Qwen3ForCausalLM`, operation for operation, with the same parameter names.


class RMSNorm(nn.Module):
    """weight · x / sqrt(mean(x²) + eps), computed in float32 (HF `Qwen3RMSNorm`)."""

    def __init__(self, size: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        dtype = x.dtype
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(dtype)


def rotate_half(x: Tensor) -> Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Attention(nn.Module):
    def __init__(self, r: Recipe):
        super().__init__()
        self.r = r
        self.q_proj = nn.Linear(r.hidden, r.heads * r.head_dim, bias=False)
        self.k_proj = nn.Linear(r.hidden, r.kv_heads * r.head_dim, bias=False)
        self.v_proj = nn.Linear(r.hidden, r.kv_heads * r.head_dim, bias=False)
        self.o_proj = nn.Linear(r.heads * r.head_dim, r.hidden, bias=False)
        self.q_norm = RMSNorm(r.head_dim)
        self.k_norm = RMSNorm(r.head_dim)

    def qkv(self, x: Tensor, cos: Tensor, sin: Tensor):
        """q `[B, H, N, d]`, k and v `[B, H, N, d]` (key heads repeated for the query heads that read them)."""
        b, n, _ = x.shape
        r = self.r
        q = self.q_norm(self.q_proj(x).view(b, n, r.heads, r.head_dim)).transpose(1, 2)
        k = self.k_norm(self.k_proj(x).view(b, n, r.kv_heads, r.head_dim)).transpose(1, 2)
        v = self.v_proj(x).view(b, n, r.kv_heads, r.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        groups = r.heads // r.kv_heads
        return q, k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        q, k, v = self.qkv(x, cos, sin)
        if hasattr(F, "scaled_dot_product_attention"):
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # torch < 2.0: the same computation written out
            out = torch.softmax(causal_logits(q, k), dim=-1).to(v.dtype) @ v
        b, _, n, _ = out.shape
        return self.o_proj(out.transpose(1, 2).reshape(b, n, -1))


def causal_logits(q: Tensor, k: Tensor) -> Tensor:
    """scaling · Q Kᵀ with −inf above the diagonal, float32 `[B, H, N, N]`."""
    n = q.shape[2]
    logits = (q.float() @ k.float().transpose(-1, -2)) * q.shape[-1] ** -0.5
    future = torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1)
    return logits.masked_fill(future, float("-inf"))


class MLP(nn.Module):
    def __init__(self, r: Recipe):
        super().__init__()
        self.gate_proj = nn.Linear(r.hidden, r.intermediate, bias=False)
        self.up_proj = nn.Linear(r.hidden, r.intermediate, bias=False)
        self.down_proj = nn.Linear(r.intermediate, r.hidden, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, r: Recipe):
        super().__init__()
        self.input_layernorm = RMSNorm(r.hidden)
        self.self_attn = Attention(r)
        self.post_attention_layernorm = RMSNorm(r.hidden)
        self.mlp = MLP(r)
        self.dropout = nn.Dropout(r.dropout)  # training only; not part of the architecture at inference

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        x = x + self.dropout(self.self_attn(self.input_layernorm(x), cos, sin))
        return x + self.dropout(self.mlp(self.post_attention_layernorm(x)))


class Backbone(nn.Module):
    def __init__(self, r: Recipe):
        super().__init__()
        self.embed_tokens = nn.Embedding(VOCAB_SIZE, r.hidden)
        self.layers = nn.ModuleList([Layer(r) for _ in range(r.layers)])
        self.norm = RMSNorm(r.hidden)


class LanguageModel(nn.Module):
    """`Qwen3ForCausalLM` with tied embeddings; `forward(ids)` gives the logits `[B, N, V]` in float32."""

    def __init__(self, r: Recipe):
        super().__init__()
        self.r = r
        self.model = Backbone(r)
        inv_freq = 1.0 / (r.rope_theta ** (torch.arange(0, r.head_dim, 2, dtype=torch.int64).float() / r.head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self.apply(self._init)
        for layer in self.model.layers:  # residual projections scaled down with depth (GPT-2's initialisation)
            nn.init.normal_(layer.self_attn.o_proj.weight, std=0.02 / math.sqrt(2 * r.layers))
            nn.init.normal_(layer.mlp.down_proj.weight, std=0.02 / math.sqrt(2 * r.layers))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)

    def rotary(self, n: int, dtype: torch.dtype):
        positions = torch.arange(n, device=self.inv_freq.device, dtype=torch.float32)
        freqs = positions[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(dtype), emb.sin().to(dtype)

    def hidden(self, ids: Tensor) -> Tensor:
        x = self.model.embed_tokens(ids)
        cos, sin = self.rotary(ids.shape[1], x.dtype)
        for layer in self.model.layers:
            x = layer(x, cos, sin)
        return self.model.norm(x)

    def forward(self, ids: Tensor) -> Tensor:
        return (self.hidden(ids) @ self.model.embed_tokens.weight.t()).float()

    @torch.no_grad()
    def attention_maps(self, ids: Tensor) -> List[Tensor]:
        """Every layer's attention weights `[B, H, N, N]` (float32), for the head probes."""
        x = self.model.embed_tokens(ids)
        cos, sin = self.rotary(ids.shape[1], x.dtype)
        maps = []
        for layer in self.model.layers:
            q, k, _ = layer.self_attn.qkv(layer.input_layernorm(x), cos, sin)
            maps.append(torch.softmax(causal_logits(q, k), dim=-1))
            x = layer(x, cos, sin)
        return maps


# ---------------------------------------------------------------------------------------------------------------
# Corpus and tokenizer.


def open_corpus(path: str, scratch: str) -> str:
    """The corpus folder; a `.tar.xz` is unpacked into `scratch` first."""
    if os.path.isdir(path):
        return path
    with tarfile.open(path, "r:xz") as tar:
        tar.extractall(scratch)
    found = glob.glob(os.path.join(scratch, "**", "manifest.json"), recursive=True)
    if not found:
        raise SystemExit(f"{path}: no manifest.json inside (expected the output of tools/corpus/build.py)")
    return os.path.dirname(found[0])


def read_sources(corpus: str) -> Dict[str, List[str]]:
    """{source: [document, ...]} for every source the corpus manifest lists."""
    with open(os.path.join(corpus, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    sources = {}
    for entry in manifest["sources"]:
        name = entry["name"]
        with open(os.path.join(corpus, entry.get("file", name + ".txt")), encoding="utf-8") as f:
            text = f.read()
        docs = [d.strip() for d in text.split(DOCUMENT_SEPARATOR)]
        sources[name] = [d for d in docs if d]
    return sources


def train_tokenizer(sources: Dict[str, List[str]], out_path: str) -> None:
    """Byte-level BPE of VOCAB_SIZE entries with Hugging Face `tokenizers`; `<|endoftext|>` is id 0 and is
    added before every text (the post-processor), so that position 0 is always the same token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, min_frequency=2, special_tokens=[SPECIAL],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    documents = [d for docs in sources.values() for d in docs]
    tokenizer.train_from_iterator(documents, trainer=trainer, length=len(documents))
    assert tokenizer.token_to_id(SPECIAL) == 0
    tokenizer.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single=f"{SPECIAL} $A", pair=f"{SPECIAL} $A {SPECIAL} $B",
                                      special_tokens=[(SPECIAL, 0)]),
    ])
    tokenizer.save(out_path)


class Encoder:
    """Token ids of texts without special tokens: Hugging Face `tokenizers` where it is installed, else attnprox's
    own tokenizer (which encodes identically)."""

    def __init__(self, tokenizer_json: str):
        try:
            from tokenizers import Tokenizer

            self.hf = Tokenizer.from_file(tokenizer_json)
            self.own = None
        except ImportError:
            import attnprox

            self.hf = None
            self.own = attnprox.Tokenizer.from_file(tokenizer_json)

    def encode_many(self, texts: List[str]) -> List[List[int]]:
        if self.hf is not None:
            return [e.ids for e in self.hf.encode_batch(texts, add_special_tokens=False)]
        return [self.own.encode(t) for t in texts]


def encode_corpus(sources: Dict[str, List[str]], encoder: Encoder):
    """(train stream, held-out stream, per-source token counts): documents joined by `<|endoftext|>` (id 0); the
    last HELD_OUT_SHARE of each source's tokens is held out."""
    train, held_out, counts = [], [], {}
    for name in sorted(sources):
        stream = []
        for ids in encoder.encode_many(sources[name]):
            stream.extend(ids)
            stream.append(0)
        stream = np.asarray(stream, dtype=np.int32)
        cut = int(len(stream) * (1 - HELD_OUT_SHARE))
        train.append(stream[:cut])
        held_out.append(stream[cut:])
        counts[name] = {"tokens": int(len(stream)), "train": int(cut), "held_out": int(len(stream) - cut)}
    return np.concatenate(train), np.concatenate(held_out), counts


# ---------------------------------------------------------------------------------------------------------------
# Training windows.


class Windows:
    """Random training windows `[B, context + 1]`: `<|endoftext|>` first (as every text at inference), then a run of
    the stream; a share of the windows repeats one of its own spans later in the window (copy augmentation), and
    optionally a share holds a span of random tokens twice."""

    def __init__(self, stream: np.ndarray, r: Recipe, seed: int):
        self.stream, self.r = stream, r
        self.rng = np.random.default_rng(seed)

    def batch(self) -> np.ndarray:
        r, rng = self.r, self.rng
        n = r.context  # tokens after the leading <|endoftext|>
        rows = np.empty((r.batch, n + 1), dtype=np.int64)
        rows[:, 0] = 0
        starts = rng.integers(0, len(self.stream) - n, size=r.batch)
        for b, start in enumerate(starts):
            window = self.stream[start:start + n]
            if rng.random() < r.copy_share:
                span = min(int(rng.integers(r.copy_span[0], r.copy_span[1] + 1)), n // 4)
                natural = window[:n - span]
                source = int(rng.integers(0, len(natural) - span))
                insert = int(rng.integers(source + span, len(natural) + 1))
                window = np.concatenate([natural[:insert], natural[source:source + span], natural[insert:]])
            elif rng.random() < r.random_repeat_share:
                span = min(int(rng.integers(r.copy_span[0], r.copy_span[1] + 1)), n // 4)
                noise = rng.integers(1, VOCAB_SIZE, size=span)
                natural = window[:n - 2 * span]
                first = int(rng.integers(0, len(natural) + 1))
                second = int(rng.integers(first, len(natural) + 1))
                window = np.concatenate([natural[:first], noise, natural[first:second], noise, natural[second:]])
            rows[b, 1:] = window
        return rows


def held_out_batches(stream: np.ndarray, r: Recipe, count: int) -> List[np.ndarray]:
    """Fixed windows of the held-out stream, evenly spaced, `<|endoftext|>` first, no augmentation."""
    n = r.context
    starts = np.linspace(0, len(stream) - n - 1, num=count * r.batch).astype(np.int64)
    rows = np.stack([np.concatenate([[0], stream[s:s + n]]) for s in starts]).astype(np.int64)
    return [rows[i * r.batch:(i + 1) * r.batch] for i in range(count)]


# ---------------------------------------------------------------------------------------------------------------
# Probes of the attention: previous-token heads, induction heads, the attention sink.


@torch.no_grad()
def head_probes(model: LanguageModel, natural: Tensor, seed: int = 1234, sequences: int = 16,
                span: int = 50) -> dict:
    """previous_token[l][h]: mean weight of query i on key i−1 (i ≥ 2) over natural text;
    induction[l][h]: on `<|endoftext|>` + R + R (R: `span` random tokens), the mean weight from each position of the
    second copy to the token after its earlier occurrence; copy losses: mean cross-entropy on tokens 1.. of each
    copy; sink: mean weight on position 0 over queries i ≥ 1, per layer."""
    model.eval()
    device = natural.device
    maps = model.attention_maps(natural)
    n = natural.shape[1]
    prev = [m[:, :, torch.arange(2, n), torch.arange(1, n - 1)].mean(dim=(0, 2)) for m in maps]
    sink = [m[:, :, 1:, 0].mean().item() for m in maps]

    g = torch.Generator().manual_seed(seed)
    repeat = torch.randint(1, VOCAB_SIZE, (sequences, span), generator=g)
    ids = torch.cat([torch.zeros(sequences, 1, dtype=torch.long), repeat, repeat], dim=1).to(device)
    maps = model.attention_maps(ids)
    queries = torch.arange(1 + span, 1 + 2 * span, device=device)  # second copy, token k at 1 + span + k
    keys = queries - span + 1  # the token after the earlier occurrence (1 + k + 1)
    induction = [m[:, :, queries, keys].mean(dim=(0, 2)) for m in maps]
    logits = model(ids)
    losses = F.cross_entropy(logits[:, :-1].reshape(-1, VOCAB_SIZE), ids[:, 1:].reshape(-1),
                             reduction="none").view(sequences, -1)
    # target position t is predicted at row t-1: first copy tokens 1..span-1 sit at 2..span, second at span+2..2span
    first = losses[:, 1:span].mean().item()
    second = losses[:, span + 1:2 * span].mean().item()
    return {
        "previous_token": [[round(float(x), 4) for x in layer] for layer in prev],
        "induction": [[round(float(x), 4) for x in layer] for layer in induction],
        "best_previous_token": round(float(max(x.max() for x in prev)), 4),
        "best_induction": round(float(max(x.max() for x in induction)), 4),
        "copy_loss_first": round(first, 4),
        "copy_loss_second": round(second, 4),
        "sink": [round(s, 4) for s in sink],
    }


@torch.no_grad()
def mean_loss(model: LanguageModel, batches: List[Tensor], autocast) -> float:
    model.eval()
    total = 0.0
    for rows in batches:
        with autocast():
            logits = model(rows[:, :-1])
        total += F.cross_entropy(logits.reshape(-1, VOCAB_SIZE), rows[:, 1:].reshape(-1)).item()
    return total / len(batches)


# ---------------------------------------------------------------------------------------------------------------
# One recipe's training run (a process of its own).


def train_one(args) -> None:
    r = RECIPES[args.recipe]
    r.seed = args.seed
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = np.load(args.data)
    train_stream, held_stream = data["train"], data["held_out"]
    if args.context:
        r.context = args.context
    if args.batch:
        r.batch = args.batch

    model = LanguageModel(r).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embed" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embed" not in n)]
    fused = {"fused": True} if device.type == "cuda" else {}
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": r.weight_decay},
                                   {"params": rest, "weight_decay": 0.0}], lr=r.lr, betas=(0.9, 0.95), **fused)
    use_bf16 = device.type == "cuda"

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16) if use_bf16 else torch.autocast("cpu", enabled=False)

    def loss_of(ids: Tensor) -> Tensor:
        logits = model(ids[:, :-1])
        return F.cross_entropy(logits.reshape(-1, VOCAB_SIZE), ids[:, 1:].reshape(-1))

    step_fn = loss_of
    compiled = False
    if device.type == "cuda" and hasattr(torch, "compile") and not args.no_compile:
        step_fn = torch.compile(loss_of)
        compiled = True

    windows = Windows(train_stream, r, args.seed)
    held = [torch.from_numpy(b).to(device) for b in held_out_batches(held_stream, r, args.eval_batches)]
    probe_text = held[0][:4]

    def lr_at(step: int, total: int) -> float:
        if step < r.warmup:
            return r.lr * (step + 1) / r.warmup
        progress = min(1.0, (step - r.warmup) / max(1, total - r.warmup))
        return r.lr * (r.min_lr_ratio + (1 - r.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))

    log = {"recipe": asdict(r), "parameters": sum(p.numel() for p in model.parameters()), "compiled": compiled,
           "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor(),
           "evaluations": []}
    started = time.time()
    deadline = started + args.time_budget
    max_steps = args.max_steps
    best = (float("inf"), None, -1)
    step = 0
    tokens_seen = 0
    timing_from = None
    while True:
        if max_steps is None and step == args.measure_steps + 50:
            # Steps per second measured after compilation and warm-up; the schedule's length follows from it.
            if device.type == "cuda":
                torch.cuda.synchronize()
            rate = args.measure_steps / (time.time() - timing_from)
            max_steps = int(step + rate * (deadline - time.time() - args.reserve))
            log["steps_per_second_measured"] = round(rate, 2)
        if step == 50:
            if device.type == "cuda":
                torch.cuda.synchronize()
            timing_from = time.time()
        total = max_steps if max_steps is not None else 10 ** 9
        if step >= total or time.time() > deadline or (args.stop_step and step >= args.stop_step):
            break
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, total if max_steps is not None else args.measure_steps * 100)
        model.train()
        ids = torch.from_numpy(windows.batch()).to(device, non_blocking=True)
        try:
            with autocast():
                loss = step_fn(ids)
        except Exception as e:  # a compiler failure: the same step without torch.compile
            if step_fn is loss_of:
                raise
            print(f"[{r.name}] torch.compile failed ({type(e).__name__}: {str(e)[:200]}); running eagerly",
                  flush=True)
            step_fn, log["compiled"] = loss_of, False
            with autocast():
                loss = step_fn(ids)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        tokens_seen += ids.numel() - ids.shape[0]
        if step % args.eval_every == 0 or step == max_steps:
            held_loss = mean_loss(model, held, autocast)
            probes = head_probes(model, probe_text)
            entry = {"step": step, "seconds": round(time.time() - started, 1), "tokens": tokens_seen,
                     "train_loss": round(loss.item(), 4), "held_out_loss": round(held_loss, 4),
                     "best_previous_token": probes["best_previous_token"],
                     "best_induction": probes["best_induction"],
                     "copy_loss_first": probes["copy_loss_first"], "copy_loss_second": probes["copy_loss_second"]}
            log["evaluations"].append(entry)
            print(f"[{r.name}] {json.dumps(entry)}", flush=True)
            if held_loss < best[0]:
                best = (held_loss, {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}, step)
    log["steps"] = step
    log["max_steps"] = max_steps
    log["stopped_by_deadline"] = max_steps is None or step < max_steps
    log["tokens_seen"] = tokens_seen
    log["epochs"] = round(tokens_seen / len(train_stream), 2)
    log["seconds"] = round(time.time() - started, 1)
    if best[1] is None:
        best = (mean_loss(model, held, autocast), model.state_dict(), step)
    model.load_state_dict(best[1])
    log["best_step"] = best[2]
    log["held_out_loss"] = round(best[0], 4)
    log["held_out_perplexity"] = round(math.exp(best[0]), 2)
    log["probes"] = head_probes(model, probe_text)
    torch.save(best[1], os.path.join(args.out, f"{r.name}.pt"))
    with open(os.path.join(args.out, f"{r.name}.json"), "w") as f:
        json.dump(log, f, indent=1)


# ---------------------------------------------------------------------------------------------------------------
# Writing the chosen model as a Hugging Face directory.


def hf_config(r: Recipe) -> dict:
    return {
        "architectures": ["Qwen3ForCausalLM"],
        "model_type": "qwen3",
        "vocab_size": VOCAB_SIZE,
        "hidden_size": r.hidden,
        "intermediate_size": r.intermediate,
        "num_hidden_layers": r.layers,
        "num_attention_heads": r.heads,
        "num_key_value_heads": r.kv_heads,
        "head_dim": r.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": r.context,
        "rms_norm_eps": 1e-6,
        "rope_theta": r.rope_theta,
        "rope_scaling": None,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "use_sliding_window": False,
        "sliding_window": None,
        "max_window_layers": r.layers,
        "tie_word_embeddings": True,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "pad_token_id": 0,
        "initializer_range": 0.02,
        "use_cache": True,
        "torch_dtype": "float32",
    }


def save_safetensors(tensors: Dict[str, Tensor], path: str) -> None:
    """float32 tensors in the safetensors format: an 8-byte little-endian header length, the JSON header (names
    sorted; dtype, shape, byte range of each), then the raw little-endian data."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        data = tensors[name].detach().to("cpu", torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def write_model_dir(r: Recipe, state: Dict[str, Tensor], tokenizer_json: str, out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(hf_config(r), f, indent=2)
    save_safetensors(state, os.path.join(out_dir, "model.safetensors"))
    shutil.copy(tokenizer_json, os.path.join(out_dir, "tokenizer.json"))
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": SPECIAL, "eos_token": SPECIAL,
                   "pad_token": SPECIAL, "unk_token": None, "add_bos_token": False, "add_eos_token": False,
                   "model_max_length": r.context, "clean_up_tokenization_spaces": False}, f, indent=2)


def check_with_transformers(model_dir: str, r: Recipe, state: Dict[str, Tensor], held: np.ndarray) -> dict:
    """The directory loads in transformers as Qwen3ForCausalLM and gives the training model's logits."""
    try:
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        return {"checked": False, "why": "transformers is not installed"}
    try:
        hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    except TypeError:  # transformers 4.x names it torch_dtype
        hf = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="eager")
    hf.eval()
    ours = LanguageModel(r)
    ours.load_state_dict(state)
    ours.eval()
    ids = torch.from_numpy(held[:2, :257])
    with torch.no_grad():
        want = hf(input_ids=ids).logits
        got = ours(ids)
    found = {"checked": True, "transformers": transformers.__version__, "class": type(hf).__name__,
             "max_abs_logit_diff": float((want - got).abs().max()), "max_abs_logit": float(want.abs().max())}
    try:
        from tokenizers import Tokenizer

        sample = "The bank by the river was steep, said Ms. O'Neill in 2024."
        tok = AutoTokenizer.from_pretrained(model_dir)
        found["tokenizer_class"] = type(tok).__name__
        found["tokenizer_ids_equal"] = tok(sample)["input_ids"] == Tokenizer.from_file(
            os.path.join(model_dir, "tokenizer.json")).encode(sample).ids
    except Exception as e:  # reported beside the model check
        found["tokenizer_error"] = f"{type(e).__name__}: {e}"
    return found


# ---------------------------------------------------------------------------------------------------------------
# The whole run.


def common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-budget", type=float, default=330.0, help="seconds of training per recipe")
    p.add_argument("--max-steps", type=int, default=None,
                   help="steps of the schedule (default: measured from the time budget; recorded)")
    p.add_argument("--stop-step", type=int, default=None,
                   help="stop after this many steps of the --max-steps schedule (to repeat a run the deadline cut)")
    p.add_argument("--measure-steps", type=int, default=200, help=argparse.SUPPRESS)
    p.add_argument("--reserve", type=float, default=25.0, help=argparse.SUPPRESS)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--eval-batches", type=int, default=8)
    p.add_argument("--context", type=int, default=None, help="override the recipes' context (tests)")
    p.add_argument("--batch", type=int, default=None, help="override the recipes' batch (tests)")
    p.add_argument("--no-compile", action="store_true")


def main() -> None:
    if sys.argv[1:2] == ["train-one"]:  # one recipe's run, started by `run` as a process of its own
        one = argparse.ArgumentParser(prog="train_default_model.py train-one")
        one.add_argument("--recipe", required=True)
        one.add_argument("--data", required=True)
        one.add_argument("--out", required=True)
        common_options(one)
        train_one(one.parse_args(sys.argv[2:]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", help="the corpus folder or corpus.tar.xz (tools/corpus/build.py)")
    parser.add_argument("out", help="output folder: model/ (the Hugging Face directory) and work/")
    parser.add_argument("--recipes", default="base,deep,copy,synthetic", help=f"of {', '.join(RECIPES)}")
    parser.add_argument("--tokenizer", default=None, help="reuse this tokenizer.json instead of training one")
    parser.add_argument("--sources", default=None, help="only these corpus sources (comma-separated)")
    common_options(parser)
    run(parser.parse_args())


def run(args) -> None:
    began = time.time()
    os.makedirs(args.out, exist_ok=True)
    work = os.path.join(args.out, "work")
    os.makedirs(work, exist_ok=True)
    corpus = open_corpus(args.corpus, tempfile.mkdtemp(prefix="corpus-", dir=work))
    sources = read_sources(corpus)
    if args.sources:
        keep = set(args.sources.split(","))
        sources = {k: v for k, v in sources.items() if k in keep}
    record = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "python": sys.version.split()[0],
              "torch": torch.__version__, "host": platform.node(),
              "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
    with open(os.path.join(corpus, "manifest.json"), encoding="utf-8") as f:
        record["corpus"] = json.load(f)

    tokenizer_json = os.path.join(work, "tokenizer.json")
    t0 = time.time()
    if args.tokenizer:
        shutil.copy(args.tokenizer, tokenizer_json)
    else:
        train_tokenizer(sources, tokenizer_json)
        import tokenizers

        record["tokenizers"] = tokenizers.__version__
    record["tokenizer_seconds"] = round(time.time() - t0, 1)
    t0 = time.time()
    train_stream, held_stream, counts = encode_corpus(sources, Encoder(tokenizer_json))
    record["encode_seconds"] = round(time.time() - t0, 1)
    record["tokens"] = {"train": int(len(train_stream)), "held_out": int(len(held_stream)), "sources": counts}
    print(f"tokens: {len(train_stream):,} train, {len(held_stream):,} held out "
          f"(tokenizer {record['tokenizer_seconds']} s, encoding {record['encode_seconds']} s)", flush=True)
    data_path = os.path.join(work, "tokens.npz")
    np.savez(data_path, train=train_stream.astype(np.int32), held_out=held_stream.astype(np.int32))
    unigram = np.bincount(train_stream, minlength=VOCAB_SIZE).astype(np.int64)

    recipes = args.recipes.split(",")
    procs = []
    for name in recipes:
        if name not in RECIPES:
            raise SystemExit(f"unknown recipe {name!r} (known: {', '.join(RECIPES)})")
        cmd = [sys.executable, os.path.abspath(__file__), "train-one", "--recipe", name, "--data", data_path,
               "--out", work, "--seed", str(args.seed), "--time-budget", str(args.time_budget),
               "--eval-every", str(args.eval_every), "--eval-batches", str(args.eval_batches),
               "--measure-steps", str(args.measure_steps), "--reserve", str(args.reserve)]
        for flag, value in (("--max-steps", args.max_steps), ("--stop-step", args.stop_step),
                            ("--context", args.context), ("--batch", args.batch)):
            if value is not None:
                cmd += [flag, str(value)]
        if args.no_compile:
            cmd.append("--no-compile")
        procs.append((name, subprocess.Popen(cmd)))
    hard_limit = time.time() + args.time_budget + 60
    for name, proc in procs:
        try:
            proc.wait(timeout=max(1.0, hard_limit - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()
            print(f"[{name}] killed: past its time budget", flush=True)

    runs = {}
    for name in recipes:
        path = os.path.join(work, f"{name}.json")
        if os.path.exists(path):
            with open(path) as f:
                runs[name] = json.load(f)
    if not runs:
        raise SystemExit("no recipe finished")
    record["runs"] = runs

    def shows_heads(log):
        p = log["probes"]
        return (p["best_previous_token"] >= 0.5 and p["best_induction"] >= 0.3
                and p["copy_loss_second"] * 2 <= p["copy_loss_first"])

    natural = [n for n in runs if n not in SYNTHETIC and shows_heads(runs[n])]
    synthetic = [n for n in runs if n in SYNTHETIC and shows_heads(runs[n])]
    if natural:
        pool, why = natural, ("lowest held-out loss among the recipes trained on natural text alone that show a "
                              "previous-token head (>= 0.5) and an induction head (>= 0.3, with the loss on the "
                              "second copy at least 2x lower than on the first)")
    elif synthetic:
        pool, why = synthetic, ("no recipe trained on natural text alone showed both heads; lowest held-out loss "
                                "among those with synthetic repeats that do")
    else:
        pool, why = list(runs), "no recipe showed both heads: lowest held-out loss overall"
    chosen = min(pool, key=lambda n: runs[n]["held_out_loss"])
    record["chosen"] = chosen
    record["selection"] = why
    r = RECIPES[chosen]
    if args.context:
        r.context = args.context
    state = torch.load(os.path.join(work, f"{chosen}.pt"), map_location="cpu")
    model_dir = os.path.join(args.out, "model")
    write_model_dir(r, state, tokenizer_json, model_dir)
    np.savez_compressed(os.path.join(model_dir, "unigram_counts.npz"), counts=unigram)
    held_rows = np.stack([np.concatenate([[0], held_stream[i * 512:i * 512 + 512]]) for i in range(2)])
    try:
        record["transformers_check"] = check_with_transformers(model_dir, r, state, held_rows)
    except Exception as e:  # reported, not fatal: the directory is still written
        record["transformers_check"] = {"checked": False, "why": f"{type(e).__name__}: {e}"}
    record["seconds"] = round(time.time() - began, 1)
    with open(os.path.join(model_dir, "training.json"), "w") as f:
        json.dump(record, f, indent=1)
    print(json.dumps({"chosen": chosen, "selection": record["selection"],
                      "runs": {n: {k: runs[n][k] for k in ("held_out_perplexity", "steps", "epochs", "best_step")}
                               | {"prev": runs[n]["probes"]["best_previous_token"],
                                  "induction": runs[n]["probes"]["best_induction"]} for n in runs},
                      "transformers_check": record["transformers_check"]}, indent=1), flush=True)


if __name__ == "__main__":
    main()
