"""Instruction data: a prompt and a response in one template, the prompt masked out of the loss.

An instruction-tuned model reads ``template.format(prompt=...)`` and is trained to write the
response after it. The loss should teach the response only: the prompt is given, the model
is not asked to predict it. So the targets at the prompt's positions are ``-1``, the value our
GPT's cross-entropy ignores (``ignore_index=-1``), and only the response's tokens (and the
end-of-text token, if any) count.

For ids ``p0 p1 p2 | r0 r1`` (three prompt tokens, two response tokens) the pair is

    x = p0 p1 p2 r0          (every token but the last)
    y = -1 -1 r0 r1          (the next token; the targets that are prompt tokens masked)

Example:
    >>> enc = lambda s: [ord(c) for c in s]
    >>> x, y = encode_example("hi", "yo", enc, template="{prompt}:")
    >>> x.tolist(), y.tolist()
    ([104, 105, 58, 121], [-1, -1, 121, 111])
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

__all__ = ["DEFAULT_TEMPLATE", "IGNORE_INDEX", "format_prompt", "encode_example",
           "collate_examples"]

#: The target value the loss skips (``F.cross_entropy(..., ignore_index=-1)`` in our GPT).
IGNORE_INDEX = -1
#: An Alpaca-style template (Taori et al., 2023); ``{prompt}`` is replaced by the instruction.
DEFAULT_TEMPLATE = "### Instruction:\n{prompt}\n\n### Response:\n"


def format_prompt(prompt: str, template: str = DEFAULT_TEMPLATE) -> str:
    """The text the model reads before its response: ``template`` with ``{prompt}`` filled in.

    >>> format_prompt("Name a colour.", "Q: {prompt}\\nA: ")
    'Q: Name a colour.\\nA: '
    """
    if "{prompt}" not in template:
        raise ValueError(f"the template {template!r} has no '{{prompt}}' field; add one")
    return template.replace("{prompt}", prompt)


def encode_example(prompt: str, response: str, encode: Callable[[str], Sequence[int]], *,
                   template: str = DEFAULT_TEMPLATE, eot: int | None = None,
                   block_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One training pair ``(x, y)``, 1-D int64, for a prompt and its response.

    ``ids = encode(format_prompt(prompt, template)) + encode(response) (+ [eot])``;
    ``x = ids[:-1]``, ``y = ids[1:]`` with ``-1`` wherever the target is a prompt token.
    The prompt and response are encoded apart, so no token straddles the boundary.

    Raises:
        ValueError: an empty response, or a pair longer than ``block_size``.
    """
    p = list(encode(format_prompt(prompt, template)))
    r = list(encode(response)) + ([eot] if eot is not None else [])
    if not r:
        raise ValueError("the response encodes to no tokens; there would be nothing to learn")
    if not p:
        raise ValueError("the formatted prompt encodes to no tokens; check the template")
    ids = p + r
    if block_size is not None and len(ids) - 1 > block_size:
        raise ValueError(f"the example is {len(ids) - 1} tokens, more than block_size="
                         f"{block_size}; shorten it or drop it")
    x = torch.tensor(ids[:-1], dtype=torch.long)
    y = torch.tensor(ids[1:], dtype=torch.long)
    y[: len(p) - 1] = IGNORE_INDEX  # y[i] is ids[i + 1]: the first len(p) - 1 targets are prompt
    return x, y


def collate_examples(examples: Sequence[tuple[torch.Tensor, torch.Tensor]],
                     pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack pairs of different lengths into ``(B, T)`` batches, padded on the right.

    ``x`` is padded with ``pad_id`` (any valid id: its positions are never targets) and ``y``
    with ``-1``, so padding adds nothing to the loss. Causal attention means the padding on
    the right cannot change the logits of the real tokens before it.

    >>> xb, yb = collate_examples([(torch.tensor([5, 6, 7]), torch.tensor([-1, 7, 8])),
    ...                            (torch.tensor([5]), torch.tensor([9]))], pad_id=3)
    >>> xb.tolist(), yb.tolist()
    ([[5, 6, 7], [5, 3, 3]], [[-1, 7, 8], [9, -1, -1]])
    """
    if not examples:
        raise ValueError("no examples to collate")
    T = max(len(x) for x, _ in examples)
    xb = torch.full((len(examples), T), pad_id, dtype=torch.long)
    yb = torch.full((len(examples), T), IGNORE_INDEX, dtype=torch.long)
    for i, (x, y) in enumerate(examples):
        if len(x) != len(y):
            raise ValueError(f"example {i}: x has {len(x)} tokens and y {len(y)}; they must match")
        xb[i, : len(x)] = x
        yb[i, : len(y)] = y
    return xb, yb
