"""Optimizers written from scratch (SGD, Adam, AdamW), gradient clipping and weight-decay groups.

:class:`SGD`, :class:`Adam` and :class:`AdamW` are ordinary :class:`torch.optim.Optimizer`
subclasses (parameter groups, ``state_dict``, ``zero_grad`` all work) whose ``step`` is the
textbook update, one parameter at a time. They give the same numbers as ``torch.optim.SGD``,
``Adam`` and ``AdamW`` (tests compare 50 steps), only more slowly; the Trainer uses
``torch.optim.AdamW`` unless ``TrainConfig.optimizer="llmcourse"``.

Decoupled weight decay (AdamW, Loshchilov & Hutter 2019) pulls weights towards zero at every
step, outside the adaptive update. It is meant for the *matrices* that mix features (linear
layers, attention projections and, as in GPT-2 and nanoGPT, the token/position embedding
tables, which are 2-D too). It is not applied to 1-D parameters: biases and the gains/shifts of
LayerNorm/RMSNorm, where shrinking towards zero has no regularising meaning and only hurts. The
rule of :func:`param_groups` is therefore simply ``p.dim() >= 2``.

Parameters shared between modules (the tied embedding / output matrix) appear once;
frozen parameters (``requires_grad=False``) are left out.

Example:
    >>> import torch.nn as nn
    >>> m = nn.Sequential(nn.Embedding(10, 4), nn.LayerNorm(4), nn.Linear(4, 10))
    >>> groups = param_groups(m, weight_decay=0.1)
    >>> [len(g["params"]) for g in groups], [g["weight_decay"] for g in groups]
    ([2, 3], [0.1, 0.0])
    >>> opt = AdamW(groups, lr=1e-3, betas=(0.9, 0.95))    # or torch.optim.AdamW: same steps
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.torch_version import TorchVersion

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "clip_grad_norm",
    "param_groups",
    "configure_optimizer",
    "fused_adamw_available",
]


ParamsT = Iterable[torch.Tensor] | Iterable[dict[str, Any]]


def _check_hyper(lr: float, weight_decay: float, eps: float | None = None,
                 betas: tuple[float, float] | None = None) -> None:
    if not lr >= 0.0:
        raise ValueError(f"learning rate must be >= 0, got {lr}")
    if not weight_decay >= 0.0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    if eps is not None and not eps >= 0.0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    if betas is not None and not all(0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"betas must both be in [0, 1), got {betas}")


class SGD(torch.optim.Optimizer):
    """Stochastic gradient descent with (heavy-ball or Nesterov) momentum and L2 weight decay.

    For each parameter ``p`` with gradient ``g``::

        g = g + weight_decay * p                  # L2 penalty, folded into the gradient
        buf = g  (first step)  or  momentum * buf + g
        p = p - lr * (g + momentum * buf  if nesterov else  buf)

    (``momentum=0`` is plain gradient descent.) Equals ``torch.optim.SGD`` with
    ``dampening=0``.

    >>> w = torch.nn.Parameter(torch.tensor([1.0]))
    >>> opt = SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.zero_grad(); (w ** 2).sum().backward(); opt.step()    # d(w^2)/dw = 2w
    >>> round(w.item(), 4)        # 1 - 0.1*2 = 0.8, then 0.8 - 0.1*(0.9*2 + 1.6) = 0.46
    0.46
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, momentum: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        _check_hyper(lr, weight_decay)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0.0:
            raise ValueError("nesterov=True needs a momentum > 0")
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if wd != 0.0:
                    g = g + wd * p
                if mu != 0.0:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        buf = state["momentum_buffer"] = g.clone()
                    else:
                        buf = state["momentum_buffer"]
                        buf.mul_(mu).add_(g)              # buf = mu * buf + g
                    g = g + mu * buf if group["nesterov"] else buf
                p.add_(g, alpha=-lr)
        return loss


class Adam(torch.optim.Optimizer):
    """Adam (Kingma & Ba, 2015), with L2 weight decay folded into the gradient.

    For each parameter ``p`` with gradient ``g``, at step ``t = 1, 2, ...``::

        g = g + weight_decay * p                  # L2: the decay goes through the adaptive step
        m = beta1 * m + (1 - beta1) * g           # running mean of the gradient
        v = beta2 * v + (1 - beta2) * g * g       # running mean of its square
        m_hat = m / (1 - beta1 ** t)              # bias correction: m and v start at zero
        v_hat = v / (1 - beta2 ** t)
        p = p - lr * m_hat / (sqrt(v_hat) + eps)

    Equals ``torch.optim.Adam``. Prefer :class:`AdamW` when you want weight decay.

    >>> w = torch.nn.Parameter(torch.tensor([1.0, -3.0]))
    >>> opt = Adam([w], lr=0.1)
    >>> opt.zero_grad(); (w ** 2).sum().backward(); opt.step()
    >>> [round(x, 4) for x in w.tolist()]    # the first step is ~lr per weight, whatever |g|
    [0.9, -2.9]
    """

    decoupled = False

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        _check_hyper(lr, weight_decay, eps, betas)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), eps, wd = (group["lr"], group["betas"], group["eps"],
                                           group["weight_decay"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                # An int; a state loaded from torch's optimizers holds a tensor.
                t = state["step"] = int(state["step"]) + 1
                m, v = state["exp_avg"], state["exp_avg_sq"]
                if wd != 0.0:
                    if self.decoupled:
                        p.mul_(1.0 - lr * wd)             # AdamW: shrink the weight directly
                    else:
                        g = g + wd * p                    # Adam: L2 term in the gradient
                m.mul_(beta1).add_(g, alpha=1.0 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
                m_hat = m / (1.0 - beta1**t)
                v_hat = v / (1.0 - beta2**t)
                p.addcdiv_(m_hat, v_hat.sqrt_().add_(eps), value=-lr)
        return loss


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter, 2019): Adam with *decoupled* weight decay.

    The same update as :class:`Adam`, except that the decay does not pass through the gradient
    (where Adam's division by ``sqrt(v_hat)`` would weaken it for the weights with large
    gradients); every weight is shrunk directly, by the same factor::

        p = p * (1 - lr * weight_decay)           # decoupled decay (PyTorch scales it by lr)
        m, v, m_hat, v_hat as in Adam, from the raw gradient g
        p = p - lr * m_hat / (sqrt(v_hat) + eps)

    Equals ``torch.optim.AdamW`` (also its default ``weight_decay=0.01``).

    >>> w = torch.nn.Parameter(torch.tensor([1.0]))
    >>> opt = AdamW([w], lr=0.1, weight_decay=0.5)
    >>> opt.zero_grad(); (w * 0).sum().backward(); opt.step()   # zero gradient: decay only
    >>> round(w.item(), 4)                                       # 1 * (1 - 0.1 * 0.5)
    0.95
    """

    decoupled = True

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


def clip_grad_norm(params: torch.Tensor | Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale all gradients together so that their global L2 norm is at most ``max_norm``.

    The global norm is ``sqrt(sum of every gradient element squared)``, over all parameters at
    once; when it exceeds ``max_norm`` every gradient is multiplied by
    ``max_norm / (norm + 1e-6)``, which keeps the direction of the update and caps its size.
    Returns the norm *before* clipping (a 0-d tensor), the figure worth logging. Equals
    ``torch.nn.utils.clip_grad_norm_``; parameters without a gradient are skipped.

    >>> a, b = torch.zeros(2, requires_grad=True), torch.zeros(1, requires_grad=True)
    >>> a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([4.0])
    >>> clip_grad_norm([a, b], max_norm=1.0).item()      # sqrt(9 + 16)
    5.0
    >>> [round(x, 4) for x in a.grad.tolist() + b.grad.tolist()]
    [0.6, 0.0, 0.8]
    """
    if isinstance(params, torch.Tensor):
        params = [params]
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    norms = torch.stack([torch.linalg.vector_norm(g) for g in grads])     # one per tensor
    total = torch.linalg.vector_norm(norms)                               # the global norm
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)  # a tensor: no device sync needed
    for g in grads:
        g.mul_(scale.to(g.device, g.dtype))
    return total


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Split the trainable parameters of ``model`` into a decayed and a non-decayed group.

    Returns ``[{"params": [...2-D and up...], "weight_decay": weight_decay, "names": [...]},
    {"params": [...1-D...], "weight_decay": 0.0, "names": [...]}]``. The ``names`` entries are
    for inspection; :func:`configure_optimizer` drops them. Empty groups are kept so that the
    layout (and an optimizer state dict) is always the same.
    """
    decay: list[torch.Tensor] = []
    no_decay: list[torch.Tensor] = []
    decay_names: list[str] = []
    no_decay_names: list[str] = []
    # named_parameters() yields a shared (tied) tensor once, under its first name.
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.dim() >= 2:
            decay.append(p)
            decay_names.append(name)
        else:
            no_decay.append(p)
            no_decay_names.append(name)
    return [
        {"params": decay, "weight_decay": float(weight_decay), "names": decay_names},
        {"params": no_decay, "weight_decay": 0.0, "names": no_decay_names},
    ]


def fused_adamw_available(device_type: str = "cuda") -> bool:
    """Whether this PyTorch has a fused (single-kernel) AdamW for ``device_type``.

    CUDA: any PyTorch whose ``AdamW`` accepts ``fused=``; CPU: PyTorch 2.4 and later.
    """
    if "fused" not in inspect.signature(torch.optim.AdamW).parameters:
        return False
    if device_type == "cuda":
        return True
    if device_type == "cpu":
        return TorchVersion(torch.__version__) >= "2.4"
    return False


def configure_optimizer(
    model: nn.Module,
    *,
    learning_rate: float,
    weight_decay: float,
    betas: tuple[float, float] = (0.9, 0.95),
    eps: float = 1e-8,
    device_type: str = "cpu",
    fused: bool | None = None,
    optimizer: str = "torch",
) -> torch.optim.Optimizer:
    """AdamW over :func:`param_groups` of ``model``.

    Args:
        optimizer: ``"torch"`` for ``torch.optim.AdamW``, ``"llmcourse"`` for this module's
            from-scratch :class:`AdamW` (same numbers, slower; ``fused`` must then be
            ``None`` or ``False``).
        fused: ``None`` uses the single-kernel ("fused") AdamW where PyTorch has one for the
            device (CUDA; CPU from PyTorch 2.4; its effect on the step time is measured in
            ``book/performance_training.md``), else the default implementation;
            ``True``/``False`` force it.

    Raises:
        ValueError: if the model has no trainable parameter.
    """
    groups = param_groups(model, weight_decay)
    if not any(g["params"] for g in groups):
        raise ValueError(
            "the model has no trainable parameters (all have requires_grad=False); unfreeze "
            "some before creating the optimizer"
        )
    for g in groups:
        g.pop("names")
    if optimizer == "llmcourse":
        if fused:
            raise ValueError("fused=True is torch's kernel; use optimizer='torch' or fused=None")
        return AdamW(groups, lr=learning_rate, betas=betas, eps=eps)
    if optimizer != "torch":
        raise ValueError(f"unknown optimizer {optimizer!r}; use 'torch' or 'llmcourse'")
    kwargs: dict[str, Any] = {}
    available = fused_adamw_available(device_type)
    if fused and not available:
        raise ValueError(
            f"fused=True but this PyTorch ({torch.__version__}) has no fused AdamW for "
            f"{device_type!r}; use fused=None (automatic) or upgrade PyTorch"
        )
    if fused or (fused is None and available):
        kwargs["fused"] = True
    return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, eps=eps, **kwargs)
