"""Instruction examples: the template, the prompt masked out of the loss, padding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from llmcourse.finetune import (DEFAULT_TEMPLATE, IGNORE_INDEX, collate_examples, encode_example,
                                format_prompt)
from llmcourse.model import GPT, GPTConfig


def enc(s):
    return [ord(c) % 50 for c in s]


def test_format_prompt():
    assert format_prompt("Say hi.") == "### Instruction:\nSay hi.\n\n### Response:\n"
    assert format_prompt("x", "Q: {prompt}\nA: ") == "Q: x\nA: "
    with pytest.raises(ValueError, match="prompt"):
        format_prompt("x", "Q: \nA: ")


def test_encode_example_masks_exactly_the_prompt():
    template = "Q: {prompt}\nA: "
    x, y = encode_example("ab", "xyz", enc, template=template, eot=49)
    ids = enc("Q: ab\nA: ") + enc("xyz") + [49]
    n_prompt = len(enc("Q: ab\nA: "))
    assert x.dtype == torch.long and y.dtype == torch.long
    assert x.tolist() == ids[:-1]
    assert y.tolist() == [IGNORE_INDEX] * (n_prompt - 1) + ids[n_prompt:]
    assert (y != -1).sum().item() == len("xyz") + 1  # the response and the end token
    # The first unmasked target is the first response token, predicted from the prompt's end.
    first = (y != -1).nonzero()[0].item()
    assert x[first].item() == ids[n_prompt - 1] and y[first].item() == enc("x")[0]


def test_encode_example_default_template_and_errors():
    x, y = encode_example("go", "ok", enc)
    assert len(x) == len(enc(DEFAULT_TEMPLATE.replace("{prompt}", "go"))) + 1
    with pytest.raises(ValueError, match="block_size"):
        encode_example("a" * 20, "b", enc, template="{prompt}", block_size=10)
    with pytest.raises(ValueError, match="no tokens"):
        encode_example("a", "", enc)


def test_masked_targets_do_not_change_the_loss_on_the_response():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, block_size=32, n_layer=1, n_head=2, n_embd=8)).eval()
    x, y = encode_example("hello", "abc", enc, template="Q: {prompt}\nA: ")
    logits, loss = model(x[None], y[None])
    keep = y != -1
    manual = F.cross_entropy(logits[0][keep], y[keep])
    torch.testing.assert_close(loss, manual)
    all_targets = torch.tensor(enc("Q: hello\nA: abc")[1:])
    full = F.cross_entropy(logits[0], all_targets)
    assert not torch.allclose(loss, full)  # the masked loss is not the all-token loss


def test_collate_pads_right_and_ignores_padding():
    a = encode_example("ab", "c", enc, template="{prompt}:")
    b = encode_example("abcdef", "gh", enc, template="{prompt}:")
    xb, yb = collate_examples([a, b], pad_id=7)
    assert xb.shape == yb.shape == (2, len(b[0]))
    assert xb[0, len(a[0]):].eq(7).all() and yb[0, len(a[1]):].eq(-1).all()
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=1, n_head=2, n_embd=8)).eval()
    # Right padding cannot change the real tokens' logits (causal attention).
    torch.testing.assert_close(model(xb[:1])[0][0, : len(a[0])], model(a[0][None])[0][0])
    with pytest.raises(ValueError, match="no examples"):
        collate_examples([])
    with pytest.raises(ValueError, match="must match"):
        collate_examples([(torch.tensor([1, 2]), torch.tensor([1]))])
