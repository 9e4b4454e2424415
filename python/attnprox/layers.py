"""Layer numbers, resolved in one place for the whole package (docs/measurements.md §1).

A layer is named by the model's own number (0-based), or by a negative number counting back from the last captured
layer (-1 is the last). `resolve_layer` turns either into the model's own number, or raises the error the engine
raises for the same layer, with the same message; `parse_layers` reads a choice of layers as the API and the
command line take it ("all", "last", a number, a list, "i,j"), and `resolve_layers` resolves such a choice.
"""
import operator
from typing import List, Optional, Sequence, Union

import numpy as np

from .errors import InvalidArgumentError, OutOfRangeError

Choice = Union[str, int, Sequence[int]]


def _captured_list(captured: Sequence[int]) -> str:
    return ", ".join(map(str, captured))


def _as_number(layer, what: str = "layer") -> int:
    """An integer layer number (int or NumPy integer, not bool), else InvalidArgumentError."""
    if isinstance(layer, (bool, np.bool_)):
        raise InvalidArgumentError(f"{what} must be a layer number, found {layer!r}")
    try:
        return operator.index(layer)
    except TypeError:
        raise InvalidArgumentError(f"{what} must be a layer number, found {layer!r}") from None


def resolve_layer(layer: int, captured: Sequence[int], num_layers: int,
                  file_captured: Optional[Sequence[int]] = None) -> int:
    """The model's own number of `layer`: a captured layer's own number as it is, a negative number counted back
    from the last of `captured` (ascending). OutOfRangeError otherwise, worded as the engine words it.
    `file_captured`: the layers the model file captures when `captured` are those a run kept (a subset)."""
    layer = _as_number(layer)
    count = len(captured)
    kept = file_captured is not None and list(file_captured) != list(captured)
    if layer < 0:
        if layer < -count:
            holder = "this run kept" if kept else "the model file has"
            raise OutOfRangeError(f"layer {layer} requested, {holder} {count} captured layers "
                                  f"({_captured_list(captured)}; -1..-{count} count back from the last)")
        return int(captured[layer])
    if layer in captured:
        return layer
    if kept and layer in file_captured:
        raise OutOfRangeError(f"layer {layer} was not kept by this run (it kept {_captured_list(captured)}; ask for "
                              "it with layers=...)")
    if layer >= num_layers:
        raise OutOfRangeError(f"layer {layer} requested, the model has {num_layers} layers (0..{num_layers - 1})")
    raise OutOfRangeError(f"layer {layer} is not captured in this model file (captured: {_captured_list(captured)})")


def parse_layers(layers: Choice) -> Union[str, List[int]]:
    """A choice of layers as written: "all", or a list of layer numbers ("last" is [-1]; a number, a list of them,
    or a str "i,j"; negative numbers count back from the last captured layer). InvalidArgumentError otherwise."""
    if isinstance(layers, str):
        text = layers.strip().lower()
        if text in ("all", "last"):
            return "all" if text == "all" else [-1]
        try:
            chosen = [int(part) for part in text.split(",")]
        except ValueError:
            raise InvalidArgumentError(f"layers {layers!r}: expected all, last or comma-separated layer "
                                       "numbers") from None
        return chosen
    try:
        return [_as_number(layers)]
    except InvalidArgumentError:
        pass
    try:
        chosen = list(layers)
    except TypeError:
        chosen = None
    if not chosen:
        raise InvalidArgumentError(f"layers {layers!r}: expected all, last, a layer number or a non-empty list "
                                   "of them")
    return [_as_number(layer, f"layers {layers!r}: each") for layer in chosen]


def resolve_layers(layers: Choice, captured: Sequence[int], num_layers: int) -> List[int]:
    """The model's own numbers of a choice of layers (`parse_layers`), each once, in the order given ("all": every
    captured layer)."""
    chosen = parse_layers(layers)
    if chosen == "all":
        return [int(layer) for layer in captured]
    resolved: List[int] = []
    for layer in chosen:
        number = resolve_layer(layer, captured, num_layers)
        if number not in resolved:
            resolved.append(number)
    return resolved
