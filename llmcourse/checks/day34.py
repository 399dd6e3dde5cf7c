"""Checks for day 34, "Fine-tuning", and the reference versions the lesson runs on.

Each ``check_*`` function runs the learner's code on small cases of its own (sizes unlike the
notebook's), prints one line - a pass, a specific hint, or "not done yet" - and never raises.
The references are :func:`reference_instruction_pair`, :class:`llmcourse.finetune.LoRALinear`
and :func:`reference_training_bytes`.

Example::

    >>> from llmcourse.checks import day34
    >>> ok = day34.check_instruction_pair(day34.reference_instruction_pair)
    ✅ instruction_pair: passed
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn as nn

from llmcourse.checks._core import CheckFailed, as_int, as_pair, as_tensor, assert_close, call, check
from llmcourse.finetune import LoRALinear as _RefLoRA

__all__ = [
    "check_instruction_pair",
    "check_lora_linear",
    "check_training_bytes",
    "reference_instruction_pair",
    "reference_training_bytes",
]


# ---- reference implementations -------------------------------------------------------------


def reference_instruction_pair(prompt_ids: Sequence[int],
                               response_ids: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` for ``ids = prompt_ids + response_ids``: ``x = ids[:-1]``, ``y = ids[1:]``
    with ``-1`` where the target is a prompt token (the first ``len(prompt_ids) - 1``)."""
    ids = list(prompt_ids) + list(response_ids)
    x = torch.tensor(ids[:-1], dtype=torch.long)
    y = torch.tensor(ids[1:], dtype=torch.long)
    y[: len(prompt_ids) - 1] = -1
    return x, y


def reference_training_bytes(model: nn.Module) -> int:
    """Bytes of the parameters, plus the gradients and AdamW's two moments of the trainable ones
    (each the size of its parameter); activations are not counted."""
    total = 0
    for p in model.parameters():
        size = p.numel() * p.element_size()
        total += size + (3 * size if p.requires_grad else 0)
    return total


# ---- exercise 1: the prompt masked out of the loss -----------------------------------------


@check("instruction_pair")
def check_instruction_pair(instruction_pair: Any) -> None:
    """Exercise 1: x is ids[:-1], y is ids[1:] with the prompt's targets set to -1."""
    prompt, response = [7, 3, 9, 4, 12], [5, 8, 2]  # 5 prompt tokens, 3 response tokens
    shown = f"instruction_pair({prompt}, {response})"
    x, y = as_pair(call(instruction_pair, prompt, response, shown=shown), "instruction_pair")
    x = as_tensor(x, "x", dtype=torch.long)
    y = as_tensor(y, "y", dtype=torch.long)
    ids = prompt + response
    if x.ndim != 1 or y.ndim != 1:
        raise CheckFailed(f"x and y should be 1-D (one example), got shapes {tuple(x.shape)} and "
                          f"{tuple(y.shape)}")
    if len(x) == len(ids):
        raise CheckFailed(f"x has {len(x)} tokens, all of ids: the inputs are ids[:-1] and the "
                          f"targets ids[1:] (each position predicts the next token)")
    if x.tolist() != ids[:-1]:
        raise CheckFailed(f"x should be ids[:-1] = {ids[:-1]}, got {x.tolist()}")
    if len(y) != len(x):
        raise CheckFailed(f"y should have as many tokens as x ({len(x)}), got {len(y)}")
    expected = reference_instruction_pair(prompt, response)[1].tolist()
    got = y.tolist()
    if got == ids[1:]:
        raise CheckFailed("nothing is masked: set the targets that are prompt tokens to -1, the "
                          "value the loss ignores")
    if -1 not in got and 0 in got:
        raise CheckFailed("the prompt's targets are 0: mask with -1 (our cross-entropy's "
                          "ignore_index); 0 is a real token id the model would learn to predict")
    n_masked = sum(1 for t in got if t == -1)
    if got[: n_masked] == [-1] * n_masked and got[n_masked:] == ids[1 + n_masked:]:
        if n_masked == len(prompt):
            raise CheckFailed("one target too many is masked: y[len(prompt) - 1] is the first "
                              "response token (predicted from the prompt's last token); keep it")
        if n_masked == len(prompt) - 2:
            raise CheckFailed("one prompt target is left in the loss: mask y[:len(prompt) - 1] "
                              "(y is ids shifted by one, so len(prompt) - 1 of its targets are prompt)")
    if got[-len(response):] == [-1] * len(response):
        raise CheckFailed("the response is masked: the loss should count the response tokens "
                          "and skip the prompt's")
    if got != expected:
        raise CheckFailed(f"y should be {expected}, got {got}")


# ---- exercise 2: LoRALinear ------------------------------------------------------------------


@check("LoRALinear")
def check_lora_linear(LoRALinear: Any) -> None:
    """Exercise 2: the frozen base plus (alpha / r) * B A x, A (r, in), B (out, r), B zero."""
    torch.manual_seed(34)
    base = nn.Linear(10, 6)
    w0 = base.weight.detach().clone()
    r, alpha = 2, 6.0  # alpha / r = 3: not 1, not alpha, not r / alpha
    shown = "LoRALinear(nn.Linear(10, 6), r=2, alpha=6.0)"
    layer = call(LoRALinear, base, r, alpha, shown=shown)
    if not isinstance(layer, nn.Module):
        raise CheckFailed(f"LoRALinear(...) should build an nn.Module, got {type(layer).__name__}")
    for attr in ("base", "lora_A", "lora_B"):
        if not hasattr(layer, attr):
            raise CheckFailed(f"the layer has no attribute {attr!r}; store the wrapped layer as "
                              f"self.base and the adapters as self.lora_A, self.lora_B")
    if layer.base is not base:
        raise CheckFailed("self.base should be the nn.Linear passed in (the trained layer), not a new one")
    a, b = layer.lora_A, layer.lora_B
    for name, p in (("lora_A", a), ("lora_B", b)):
        if not isinstance(p, nn.Parameter):
            raise CheckFailed(f"{name} should be an nn.Parameter (so the optimizer sees it), got "
                              f"{type(p).__name__}")
    if tuple(a.shape) == (10, 2) and tuple(b.shape) == (2, 6):
        raise CheckFailed("A and B are transposed: A is (r, in_features) = (2, 10) and B is "
                          "(out_features, r) = (6, 2), like an nn.Linear's weight (out, in)")
    if tuple(a.shape) != (2, 10) or tuple(b.shape) != (6, 2):
        raise CheckFailed(f"lora_A should be (r, in) = (2, 10) and lora_B (out, r) = (6, 2), got "
                          f"{tuple(a.shape)} and {tuple(b.shape)}")
    if torch.count_nonzero(b.detach()) != 0:
        raise CheckFailed("lora_B should start at zero, so the fresh adapter changes nothing")
    if torch.count_nonzero(a.detach()) == 0:
        raise CheckFailed("lora_A is all zeros: with A = B = 0 both gradients are 0 and nothing "
                          "ever trains; initialise A randomly (nn.init.kaiming_uniform_)")
    if base.weight.requires_grad or (base.bias is not None and base.bias.requires_grad):
        raise CheckFailed("the base layer still trains: set requires_grad_(False) on its weight "
                          "and bias")
    if not (a.requires_grad and b.requires_grad):
        raise CheckFailed("lora_A and lora_B must have requires_grad=True")
    x = torch.randn(3, 4, 10)
    out0 = as_tensor(call(layer, x, shown="layer(x) with x of shape (3, 4, 10)"), "layer(x)",
                     shape=(3, 4, 6))
    assert_close(out0, base(x), "layer(x) with B = 0 (it should equal base(x))")
    with torch.no_grad():
        b.copy_(torch.randn(6, 2))
    out = as_tensor(call(layer, x, shown="layer(x) with a non-zero B"), "layer(x)", shape=(3, 4, 6))
    ba = (b @ a).detach()
    plain = x @ w0.T + base.bias.detach()
    for factor, hint in ((1.0, "the update is not scaled: multiply B A x by alpha / r"),
                         (alpha, "scaled by alpha: the factor is alpha / r"),
                         (r / alpha, "scaled by r / alpha: the factor is alpha / r"),
                         (0.0, "the adapter is not added: return base(x) + (alpha / r) * B A x")):
        if torch.allclose(out, plain + factor * x @ ba.T, atol=1e-5):
            raise CheckFailed(hint)
    if not torch.equal(base.weight.detach(), w0):
        raise CheckFailed("forward changed the base weight: leave W alone and add the update to "
                          "the output")
    assert_close(out, plain + (alpha / r) * x @ ba.T, "layer(x)")
    trainable = sorted(n for n, p in layer.named_parameters() if p.requires_grad)
    if trainable != ["lora_A", "lora_B"]:
        raise CheckFailed(f"the trainable parameters should be lora_A and lora_B only, got {trainable}")
    # A fresh layer from the package with the same A, B gives the same output.
    ref = _RefLoRA(base, r, alpha)
    with torch.no_grad():
        ref.lora_A.copy_(a)
        ref.lora_B.copy_(b)
    assert_close(out, ref(x), "layer(x) against llmcourse.finetune.LoRALinear")


# ---- exercise 3: training memory ------------------------------------------------------------


class _Mixed(nn.Module):
    """A frozen float32 layer, a trainable one and a frozen bfloat16 embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.frozen = nn.Linear(7, 5)
        self.trained = nn.Linear(5, 3, bias=False)
        self.emb = nn.Embedding(11, 4).to(torch.bfloat16)
        for p in (*self.frozen.parameters(), *self.emb.parameters()):
            p.requires_grad_(False)


@check("training_bytes")
def check_training_bytes(training_bytes: Any) -> None:
    """Exercise 3: parameters + gradients + AdamW state of the trainable ones, in bytes."""
    torch.manual_seed(0)
    model = _Mixed()
    got = as_int(call(training_bytes, model, shown="training_bytes(model) on a small mixed model"),
                 "training_bytes")
    ps = list(model.parameters())
    size = {id(p): p.numel() * p.element_size() for p in ps}
    all_bytes = sum(size.values())
    tr = sum(size[id(p)] for p in ps if p.requires_grad)
    expected = reference_training_bytes(model)
    n_all = sum(p.numel() for p in ps)
    n_tr = sum(p.numel() for p in ps if p.requires_grad)
    if got == n_all or got == n_all + 3 * n_tr:
        raise CheckFailed("that is a count of numbers, not bytes: multiply each p.numel() by "
                          "p.element_size() (4 for float32, 2 for bfloat16)")
    if got == 4 * all_bytes:
        raise CheckFailed("the frozen parameters get gradients and optimizer state too: only "
                          "p.requires_grad ones do")
    if got == 4 * n_all + 12 * n_tr:
        raise CheckFailed("every parameter counted as 4 bytes: the embedding here is bfloat16; "
                          "use p.element_size()")
    if got == all_bytes + tr:
        raise CheckFailed("AdamW's state is missing: it keeps two moments per trainable "
                          "parameter (exp_avg and exp_avg_sq), each the parameter's size, "
                          "besides the gradient")
    if got == all_bytes + 2 * tr:
        raise CheckFailed("one copy short: a trainable parameter has a gradient and two AdamW "
                          "moments, three extra copies of its bytes")
    if got == all_bytes:
        raise CheckFailed("only the parameters are counted: add a gradient and AdamW's two "
                          "moments for every trainable parameter")
    if got != expected:
        raise CheckFailed(f"expected {expected} bytes (parameters {all_bytes} + 3 x {tr} for the "
                          f"trainable ones), got {got}")
