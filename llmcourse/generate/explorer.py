"""An interactive sampling explorer: sliders for temperature, top-k, top-p and seed, and a prompt.

:func:`next_token_probs` gives the next-token distribution of a prompt before and after the
filters; :func:`plot_next_token` draws both as bars; :func:`explorer` puts sliders, a prompt
box, the sample and the chart in one ipywidgets panel (Jupyter, JupyterLab, Colab). Executed
with widget state saved, the panel also renders on a static page, showing the settings it was
saved with (moving a slider there does nothing: no Python runs behind a web page).

Example:
    >>> from llmcourse.model import GPT, GPTConfig
    >>> m = GPT(GPTConfig(vocab_size=6, block_size=8, n_layer=1, n_head=1, n_embd=8))
    >>> before, after = next_token_probs(m, [1, 2], temperature=1.0, top_k=2)
    >>> before.shape, int((after > 0).sum())
    (torch.Size([6]), 2)
    >>> round(float(after.sum()), 4)
    1.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .api import generate
from .sampling import Sampling, apply_temperature, top_k_filter, top_p_filter
from .settings import prepare_prompt

__all__ = ["next_token_probs", "plot_next_token", "explorer"]


@torch.no_grad()
def next_token_probs(model: nn.Module, ids: Sequence[int] | Tensor, temperature: float = 1.0,
                     top_k: int | None = None, top_p: float | None = None) -> tuple[Tensor, Tensor]:
    """``(before, after)``: ``(V,)`` next-token probabilities after temperature, then after top-k/top-p.

    ``before`` is ``softmax(logits / temperature)``; ``after`` keeps what top-k and top-p keep,
    renormalised (the distribution a draw is made from). Temperature 0 puts all mass on the
    argmax in both. The prompt is cut to the model's last ``block_size`` tokens.
    """
    settings = Sampling(temperature, top_k, top_p)  # checks the three settings
    idx = prepare_prompt(ids, model)[:1]
    block = getattr(getattr(model, "config", None), "block_size", None)
    if block is not None:
        idx = idx[:, -int(block):]
    was_training = model.training
    model.eval()
    try:
        logits, _ = model(idx)
    finally:
        model.train(was_training)
    logits = apply_temperature(logits[0, -1].float(), settings.temperature)  # (V,)
    before = torch.softmax(logits, dim=-1)
    if settings.top_k is not None:
        logits = top_k_filter(logits, settings.top_k)
    if settings.top_p is not None:
        logits = top_p_filter(logits, settings.top_p)
    return before, torch.softmax(logits, dim=-1)


def _label(text: str) -> str:
    return {"\n": "\\n", " ": "␣", "\t": "\\t"}.get(text, text)


def plot_next_token(before: Tensor, after: Tensor, decode: Callable[[list[int]], str] | None = None,
                    top: int = 20, ax: Any = None, title: str = "") -> Any:
    """Bars of the ``top`` most likely tokens of ``before``: before (grey) and after (blue) filtering.

    Returns the matplotlib axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3))
    order = torch.argsort(before, descending=True, stable=True)[:top].tolist()
    xs = range(len(order))
    ax.bar([x - 0.2 for x in xs], [float(before[i]) for i in order], width=0.4, color="0.65",
           label="before top-k/top-p")
    ax.bar([x + 0.2 for x in xs], [float(after[i]) for i in order], width=0.4, color="tab:blue",
           label="after (what is sampled from)")
    names = [_label(decode([i])) if decode is not None else str(i) for i in order]
    ax.set_xticks(list(xs), names)
    ax.set_ylabel("probability")
    kept = int((after > 0).sum())
    ax.set_title(title or f"next token: {kept} of {after.numel()} tokens kept", fontsize=10)
    ax.legend(fontsize=8)
    return ax


def explorer(model: nn.Module, tokenizer: Any, prompt: str = "ROMEO:", max_new_tokens: int = 120,
             temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int = 0) -> Any:
    """An ipywidgets panel: sliders and a prompt box; shows a sample and the next-token bars.

    ``top_k = 0`` and ``top_p = 1.0`` mean the filter is off. Characters of the prompt that the
    tokenizer cannot encode are reported in the panel instead of raising. Display the returned
    widget (the last expression of a cell) to use it.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    vocab = int(model.config.vocab_size)
    wide = {"style": {"description_width": "initial"}, "continuous_update": False}
    controls = {
        "temperature": widgets.FloatSlider(value=temperature, min=0.0, max=2.0, step=0.05,
                                           description="temperature", **wide),
        "top_k": widgets.IntSlider(value=top_k, min=0, max=vocab, step=1,
                                   description="top-k (0 off)", **wide),
        "top_p": widgets.FloatSlider(value=top_p, min=0.05, max=1.0, step=0.05,
                                     description="top-p (1 off)", **wide),
        "seed": widgets.IntSlider(value=seed, min=0, max=100, description="seed", **wide),
        "prompt": widgets.Textarea(value=prompt, description="prompt", continuous_update=False),
    }
    out = widgets.Output()

    def redraw(_: Any = None) -> None:
        t = float(controls["temperature"].value)
        k = int(controls["top_k"].value) or None
        p = float(controls["top_p"].value)
        p = None if p >= 1.0 else p
        out.clear_output(wait=True)
        with out:
            text = controls["prompt"].value or "\n"
            try:
                ids = tokenizer.encode(text)
            except (KeyError, ValueError) as exc:
                print(f"the prompt cannot be encoded by the model's tokenizer: {exc}")
                return
            if not ids:
                print("the prompt encodes to no tokens; type some text")
                return
            before, after = next_token_probs(model, ids, t, k, p)
            sample = generate(model, ids, max_new_tokens, temperature=t, top_k=k, top_p=p,
                              seed=int(controls["seed"].value))[0, len(ids):].tolist()
            print(text + tokenizer.decode(sample))
            fig, ax = plt.subplots(figsize=(9, 3))
            plot_next_token(before, after, tokenizer.decode, ax=ax,
                            title=f"next token after {text[-12:]!r}: {int((after > 0).sum())} of "
                                  f"{vocab} kept (T={t:g}, top-k={k}, top-p={p})")
            fig.tight_layout()
            display(fig)
            plt.close(fig)

    for control in controls.values():
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([controls["temperature"], controls["top_k"]]),
                         widgets.HBox([controls["top_p"], controls["seed"]]),
                         controls["prompt"], out])
