"""The _core helpers every day's checks use: what was returned, layers, inputs, earlier exercises."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from llmcourse.checks._core import (
    CheckFailed,
    EarlierNotDone,
    as_bool,
    as_int,
    as_int_list,
    as_list,
    as_pair,
    as_tensor,
    assert_dtype,
    call,
    check,
    kind_of,
    layer,
    needs_earlier,
    run_check,
)


def fails(fn, *args, **kwargs) -> str:
    with pytest.raises(CheckFailed) as info:
        fn(*args, **kwargs)
    return str(info.value)


def test_kind_of_says_what_a_value_is():
    assert kind_of(None) == "None"
    assert kind_of((1, 2)) == "a tuple of 2 items"
    assert kind_of([7]) == "a list of 1 item"
    assert kind_of(np.zeros((2, 3), dtype=np.uint16)) == "a numpy array of shape (2, 3) and dtype uint16"
    assert kind_of(torch.zeros(4, dtype=torch.bool)) == "a tensor of shape (4,) and dtype bool"
    assert kind_of(nn.Linear(2, 3)) == "a Linear"
    assert kind_of(nn.Embedding(2, 3)) == "an Embedding"


def test_as_list_accepts_lists_tensors_and_arrays():
    assert as_list((1, 2), "f") == [1, 2]
    assert as_list(torch.tensor([1, 2]), "f") == [1, 2]
    assert as_int_list(np.array([3, 4], dtype=np.uint16), "f") == [3, 4]
    assert as_int_list([np.int64(5), torch.tensor(6)], "f") == [5, 6]
    assert all(type(v) is int for v in as_int_list(np.array([3, 4], dtype=np.uint16), "f"))


@pytest.mark.parametrize("value, hint", [
    (None, "forget the `return`"),
    ("abc", "got a str"),
    ({1: 2}, "got a dict"),
    (5, "got an int"),
])
def test_as_list_rejects_with_what_was_returned(value, hint):
    assert hint in fails(as_list, value, "encode")


@pytest.mark.parametrize("value, hint", [
    ([1, 2.5], "item 1 is a float (2.5)"),
    ([1, True], "item 1 is a bool (True)"),
    ([[1, 2]], "item 0 is a list of 2 items"),
    ([torch.tensor([1, 2])], "should return a flat list"),
])
def test_as_int_list_names_the_bad_item(value, hint):
    assert hint in fails(as_int_list, value, "merge")


def test_as_pair():
    assert as_pair([1, 2], "f") == (1, 2)
    assert "did you forget `return X, Y`?" in fails(as_pair, None, "make_windows", ("X", "Y"))
    assert "a pair (ids, mask), got a tensor of shape (3,)" in fails(
        as_pair, torch.zeros(3), "pad_batch", ("ids", "mask"))


@pytest.mark.parametrize("value, hint", [
    (None, "forget the `return`"),
    ([1, 2], "got a list of 2 items; build it with torch.tensor"),
    (np.zeros(2), "got a numpy array of shape (2,) and dtype float64; convert it with torch.from_numpy"),
    ((torch.zeros(2), None), "got a tuple of 2 items; return the tensor only"),
])
def test_as_tensor_says_list_versus_tensor(value, hint):
    assert hint in fails(as_tensor, value, "out")


def test_as_tensor_shape_and_dtype():
    x = torch.zeros(2, 3, dtype=torch.int32)
    assert as_tensor(x, "x", shape=(2, None)) is x
    assert "shape (2, 3) but should have shape (3, 2)" in fails(as_tensor, x, "x", shape=(3, 2))
    assert "x should have dtype int64, got int32" in fails(as_tensor, x, "x", dtype=torch.long)
    assert_dtype(x, (torch.int32, torch.long), "x")
    assert "should have dtype uint16 or uint32, got int64" in fails(
        assert_dtype, np.zeros(2, dtype=np.int64), (np.dtype(np.uint16), np.dtype(np.uint32)), "ids")


def test_as_bool_and_as_int():
    assert as_bool(torch.tensor(False), "f") is False
    assert as_bool(np.bool_(True), "f") is True
    assert "returned a tensor of shape (3,)" in fails(as_bool, torch.ones(3, dtype=torch.bool), "f")
    assert "got a str ('yes')" in fails(as_bool, "yes", "f")
    assert as_int(torch.tensor(12), "n") == 12 and as_int(np.int64(3), "n") == 3 and as_int(4.0, "n") == 4
    assert "got a float (4.5)" in fails(as_int, 4.5, "n")
    assert "got a bool" in fails(as_int, True, "n")


def test_layer_checks_attribute_class_shape_and_bias():
    m = nn.Module()
    m.query = nn.Linear(8, 4, bias=False)
    m.inner = nn.Module()
    m.inner.wte = nn.Embedding(10, 4)
    assert layer(m, "query", nn.Linear, shape=(4, 8), bias=False) is m.query
    assert layer(m, "inner.wte", nn.Embedding, shape=(10, 4)) is m.inner.wte
    assert "has no attribute `key`" in fails(layer, m, "key", nn.Linear, owner="head")
    assert "head.query should be an Embedding, got a Linear" in fails(layer, m, "query", nn.Embedding, owner="head")
    assert "head.query.weight has shape (4, 8) but should have shape (8, 4)" in fails(
        layer, m, "query", nn.Linear, shape=(8, 4), owner="head")
    assert "has no bias: create it with bias=True" in fails(layer, m, "query", nn.Linear, bias=True)


def test_call_shows_the_input_and_passes_stubs_through():
    def boom(text, n=1):
        raise KeyError(text)

    message = fails(call, boom, "abc", n=2)
    assert message == "your code raised KeyError: 'abc' on boom('abc', n=2)"
    assert "on encode of the sample (hint: look it up in stoi)" in fails(
        call, boom, "x", shown="encode of the sample", hint="look it up in stoi")

    def stub():
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        call(stub)


def test_needs_earlier_names_only_the_listed_functions(capsys):
    notebook: dict = {}
    exec("def merge(ids, pair, idx):\n    raise NotImplementedError\n\n"
         "class MyMLP:\n    def __init__(self):\n        raise NotImplementedError\n", notebook)

    @check("train_bpe")
    @needs_earlier(merge=2, MyMLP=3)
    def check_uses(fn):
        fn()

    assert bool(check_uses(lambda: notebook["merge"]([1], (1, 2), 3))) is False
    assert capsys.readouterr().out == (
        "⏳ train_bpe: merge: not done yet — finish exercise 2 first, run its cell, then run "
        "this check again\n")
    assert bool(check_uses(lambda: notebook["MyMLP"]())) is False
    assert "MyMLP: not done yet — finish exercise 3 first" in capsys.readouterr().out

    def own_stub():
        raise NotImplementedError

    assert bool(check_uses(own_stub)) is False
    assert capsys.readouterr().out.startswith("⏳ train_bpe: not done yet — write your code")


def test_earlier_not_done_is_a_check_failure():
    exc = EarlierNotDone("split_heads", 1)
    assert isinstance(exc, CheckFailed) and exc.function == "split_heads" and exc.exercise == 1
    assert bool(run_check("x", lambda: (_ for _ in ()).throw(exc))) is False
