"""Layer numbers are resolved in one place (attnprox.layers) for the whole package, exactly as the engine resolves
them: the same number for every layer the engine accepts, and the same error, with the same message, for every
layer it refuses. Pictures, studies and the command line go through it."""
import numpy as np
import pytest

import attnprox
from attnprox.layers import parse_layers, resolve_layer, resolve_layers


@pytest.fixture(scope="module")
def partial(exported):
    """A model of 3 layers whose file captures layers 0 and 2 only, and a run of it."""
    model = attnprox.load(exported("llama", layers="0,2"))
    assert model.captured_layers == [0, 2] and model.num_layers == 3
    return model, model.run(ids=[5, 9, 2, 33, 17, 8, 41])


def engine_layer(result, layer):
    """The layer the engine reads for `layer`: the captured layer whose keys it returns."""
    keys = result.keys(layer)
    matches = [c for c in result.model.captured_layers if np.array_equal(result.keys(c), keys)]
    assert len(matches) == 1
    return matches[0]


@pytest.mark.parametrize("layer", range(-4, 5))
def test_resolve_layer_is_the_engine(partial, layer):
    model, r = partial
    try:
        expected = engine_layer(r, layer)
    except attnprox.Error as engine_error:
        with pytest.raises(type(engine_error)) as ours:
            resolve_layer(layer, model.captured_layers, model.num_layers)
        assert str(ours.value) == str(engine_error)
        with pytest.raises(type(engine_error)) as through_result:
            r.layer_number(layer)
        assert str(through_result.value) == str(engine_error)
        return
    assert resolve_layer(layer, model.captured_layers, model.num_layers) == expected
    assert r.layer_number(layer) == expected
    assert resolve_layer(np.int64(layer), model.captured_layers, model.num_layers) == expected


def test_the_messages_name_what_was_asked_and_what_exists():
    captured = [0, 2]
    with pytest.raises(attnprox.OutOfRangeError, match=r"layer -3 requested, the model file has 2 captured layers "
                                                       r"\(0, 2; -1..-2 count back from the last\)"):
        resolve_layer(-3, captured, 3)
    with pytest.raises(attnprox.OutOfRangeError, match=r"layer 1 is not captured in this model file \(captured: 0, 2\)"):
        resolve_layer(1, captured, 3)
    with pytest.raises(attnprox.OutOfRangeError, match=r"layer 3 requested, the model has 3 layers \(0..2\)"):
        resolve_layer(3, captured, 3)
    with pytest.raises(IndexError):  # OutOfRangeError is also the built-in
        resolve_layer(7, captured, 3)
    for bad in (True, 1.0, "1", None):
        with pytest.raises(attnprox.InvalidArgumentError, match="must be a layer number"):
            resolve_layer(bad, captured, 3)


def test_choices_of_layers():
    captured, total = [0, 2, 5], 6
    assert parse_layers("all") == parse_layers(" ALL ") == "all"
    assert parse_layers("last") == [-1] and parse_layers("-1,0") == [-1, 0] and parse_layers(3) == [3]
    assert parse_layers([2, np.int32(-1)]) == [2, -1]
    assert resolve_layers("all", captured, total) == [0, 2, 5]
    assert resolve_layers("last", captured, total) == [5]
    assert resolve_layers("-1, 0", captured, total) == [5, 0]        # the order given
    assert resolve_layers([0, -3, 2, -2], captured, total) == [0, 2]  # each once
    assert resolve_layers(np.int64(-2), captured, total) == [2]
    for bad in ("first", "1,,2", "", [], [1.5], [True], 2.0, None):
        with pytest.raises(attnprox.InvalidArgumentError, match="expected all, last|must be a layer number"):
            resolve_layers(bad, captured, total)
    with pytest.raises(attnprox.OutOfRangeError, match=r"layer 3 is not captured in this model file"):
        resolve_layers("0,3", captured, total)


def test_pictures_resolve_layers_as_the_engine(partial):
    pytest.importorskip("matplotlib")
    from attnprox import plots

    model, r = partial
    fig = plots.grid(r, layers=[-1, 0])
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[0].startswith("L2 H0") and any(t.startswith("L0 H0") for t in titles)
    plots._matplotlib().close(fig)
    fig = plots.attention(r, layer=-2, head=1)
    assert fig.axes[0].get_title() == "layer 0, head 1"
    plots._matplotlib().close(fig)
    for layer in (-3, 1):
        engine_message = None
        try:
            r.attention(layer)
        except attnprox.OutOfRangeError as e:
            engine_message = str(e)
        assert engine_message is not None
        with pytest.raises(attnprox.OutOfRangeError) as raised:
            plots.grid(r, layers=[layer])
        assert str(raised.value) == engine_message


def test_studies_resolve_layers_as_the_engine(partial):
    from attnprox.studies.model_file import ModelFile

    model, r = partial
    planned = ModelFile.read(model.path)
    assert planned.resolve_layers(None) == [2] and planned.resolve_layers("all") == [0, 2]
    assert planned.resolve_layers("-1,0") == [2, 0] and planned.resolve_layers([0, -2]) == [0]
    for layer in (-3, 1, 3):
        with pytest.raises(attnprox.OutOfRangeError) as engine:
            r.ap(layer)
        with pytest.raises(attnprox.OutOfRangeError) as ours:
            planned.resolve_layers(str(layer))
        assert str(ours.value) == str(engine.value)
    with pytest.raises(attnprox.InvalidArgumentError, match="expected all, last or comma-separated"):
        planned.resolve_layers("first")
