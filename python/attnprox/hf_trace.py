"""attnprox export, part 2: tracing. The model wrapped so that its forward returns the captured layers' queries and
keys (and cuts those of layers not kept), traced to TorchScript and scripted around into the file's `forward` and
`forward_layers` (docs/model-file.md)."""
from typing import List, Optional, Sequence, Tuple

import torch

from .errors import ExportError
from .hf_capture import _Recorder, _Stop, _state



def _takes_token_types(model) -> bool:
    """Whether the model has segment embeddings its forward reads from `token_type_ids` (BERT: type_vocab_size 2;
    RoBERTa's single segment and models without the argument: no)."""
    import inspect

    types = int(_config_value(model.config, "type_vocab_size", default=0) or 0)
    return types > 1 and "token_type_ids" in inspect.signature(model.forward).parameters


class _Captured(torch.nn.Module):
    """forward(input_ids, attention_mask, keep[, token_type_ids]) → (queries, keys) of the captured layers, those
    whose `keep` entry is False cut to zero tokens: what is traced (token_type_ids for models with segment
    embeddings, `token_types`)."""

    def __init__(self, model, wanted: Sequence[int], encoder_decoder: bool, token_types: bool = False):
        super().__init__()
        self.model = model
        self.wanted = list(wanted)
        self.encoder_decoder = encoder_decoder
        self.token_types = token_types

    def forward(self, input_ids, attention_mask, keep, token_type_ids=None):
        recorder = _Recorder(self.wanted, keep=keep)
        _state.recorder = recorder
        try:
            kwargs = dict(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids
            if self.encoder_decoder:
                kwargs.update(decoder_input_ids=input_ids, decoder_attention_mask=attention_mask)
            self.model(**kwargs)
        except _Stop:
            pass
        finally:
            _state.recorder = None
        if len(recorder.queries) != len(self.wanted):
            raise ExportError(f"the model made {recorder.count} attention calls through the registry, "
                              f"{len(self.wanted)} were to be captured")
        return list(recorder.queries), list(recorder.keys)


def _keep_flags(captured: List[int], layers: List[int]) -> List[bool]:
    """For each captured layer, whether `layers` (a non-empty, strictly ascending part of them) asks for it."""
    if len(layers) == 0:
        raise ValueError("forward_layers: no layers asked for")
    for k in range(len(layers)):
        if layers[k] not in captured or (k > 0 and layers[k] <= layers[k - 1]):
            raise ValueError("forward_layers: layers must be captured layers in strictly ascending order")
    flags: List[bool] = []
    for layer in captured:
        flags.append(layer in layers)
    return flags


def _kept(flags: List[bool], queries: List[torch.Tensor],
          keys: List[torch.Tensor]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    kept_queries: List[torch.Tensor] = []
    kept_keys: List[torch.Tensor] = []
    for k in range(len(flags)):
        if flags[k]:
            kept_queries.append(queries[k])
            kept_keys.append(keys[k])
    return kept_queries, kept_keys


class _LayerChoice(torch.nn.Module):
    """The model file's module (scripted around the trace): `forward(input_ids, attention_mask)` returns every
    captured layer's queries and keys, `forward_layers(input_ids, attention_mask, layers)` those of `layers` (the
    traced graph still runs up to the last captured layer; docs/model-file.md)."""

    captured: List[int]

    def __init__(self, traced, captured: Sequence[int]):
        super().__init__()
        self.traced = traced
        self.captured = list(captured)

    def forward(self, input_ids: torch.Tensor,
                attention_mask: torch.Tensor) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        keep = torch.ones([len(self.captured)], dtype=torch.bool, device=input_ids.device)
        return self.traced(input_ids, attention_mask, keep)

    @torch.jit.export
    def forward_layers(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                       layers: List[int]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        flags = _keep_flags(self.captured, layers)
        keep = torch.tensor(flags, dtype=torch.bool, device=input_ids.device)
        queries, keys = self.traced(input_ids, attention_mask, keep)
        return _kept(flags, queries, keys)


class _LayerChoiceWithTypes(torch.nn.Module):
    """_LayerChoice for models with segment embeddings (manifest "inputs" lists token_type_ids):
    `forward(input_ids, attention_mask, token_type_ids)` and `forward_layers(input_ids, attention_mask, layers,
    token_type_ids)`, token_type_ids optional in both (absent: every token of segment 0), so that an engine that
    passes no token types still runs the file."""

    captured: List[int]

    def __init__(self, traced, captured: Sequence[int]):
        super().__init__()
        self.traced = traced
        self.captured = list(captured)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: Optional[torch.Tensor] = None) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        keep = torch.ones([len(self.captured)], dtype=torch.bool, device=input_ids.device)
        types = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        return self.traced(input_ids, attention_mask, keep, types)

    @torch.jit.export
    def forward_layers(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, layers: List[int],
                       token_type_ids: Optional[torch.Tensor] = None) -> Tuple[List[torch.Tensor],
                                                                                List[torch.Tensor]]:
        flags = _keep_flags(self.captured, layers)
        keep = torch.tensor(flags, dtype=torch.bool, device=input_ids.device)
        types = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        queries, keys = self.traced(input_ids, attention_mask, keep, types)
        return _kept(flags, queries, keys)


def _config_value(config, *names, default=None):
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return default


def _trace(wrapper, vocab_size: int, max_positions: int, device):
    """Traced on a batch of two, the second padded, at a length no test input uses (with token type ids, a text
    pair's: 0 then 1, where the model takes them); then scripted around (`_LayerChoice`, `_LayerChoiceWithTypes`)
    into the file's module."""
    n = max(4, min(11, max_positions))
    ids = (torch.arange(2 * n, device=device) * 13 + 5).remainder(vocab_size).view(2, n)
    mask = torch.ones_like(ids)
    mask[1, n - 3:] = 0
    keep = torch.ones(len(wrapper.wanted), dtype=torch.bool, device=device)
    inputs = (ids, mask, keep)
    if wrapper.token_types:
        types = torch.zeros_like(ids)
        types[:, n // 2:] = 1
        types[1, n - 3:] = 0
        inputs = (ids, mask, keep, types)
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, inputs, strict=False, check_trace=False)
    choice = _LayerChoiceWithTypes if wrapper.token_types else _LayerChoice
    return torch.jit.script(choice(traced, wrapper.wanted))
