"""Knowledge distillation: train a small student on a large teacher's softened predictions.

Hinton, Vinyals and Dean (2015) train the student on two targets at once: the data's own next
token (the hard label) and the teacher's whole distribution over the vocabulary, softened by a
temperature ``T`` so that the small probabilities the teacher gives to the other tokens carry
weight. The soft term is the KL divergence between the two softened distributions, multiplied
by ``T**2``: softening divides the soft term's gradients by about ``T**2``, and the factor
puts them back on the scale of the hard term's, so that changing ``T`` does not silently
change how much the two terms weigh.

Example (a student equal to its teacher pays only the hard-label loss):

    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])   # (N=2, V=3)
    >>> targets = torch.tensor([0, 2])
    >>> soft_only = distillation_loss(logits, logits, targets, T=2.0, alpha=1.0)
    >>> round(soft_only.item(), 6)
    0.0
    >>> hard_only = distillation_loss(logits, logits, targets, T=2.0, alpha=0.0)
    >>> round(hard_only.item(), 4) == round(torch.nn.functional.cross_entropy(logits, targets).item(), 4)
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from llmcourse.finetune.settings import is_positive_finite

__all__ = ["soften", "distillation_loss", "check_temperature"]


def check_temperature(T: float) -> None:
    """Raise a one-line ``ValueError`` unless ``T`` is a finite number > 0."""
    if not is_positive_finite(T):
        raise ValueError(f"T must be > 0 and finite, got {T!r}; use T=1 for the model's own "
                         "distribution, 2 to 5 to soften it")


def soften(logits: torch.Tensor, T: float) -> torch.Tensor:
    """``softmax(logits / T)`` over the last dimension: the teacher's soft targets.

    ``T = 1`` is the model's own distribution; a larger ``T`` flattens it (``T -> inf`` gives
    the uniform distribution) while keeping the order of the tokens.

    >>> import torch
    >>> p = soften(torch.tensor([2.0, 0.0]), 2.0)
    >>> [round(v, 4) for v in p.tolist()]
    [0.7311, 0.2689]
    """
    check_temperature(T)
    return torch.softmax(logits.float() / T, dim=-1)


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      targets: torch.Tensor | None, T: float = 2.0,
                      alpha: float = 0.5) -> torch.Tensor:
    """Hinton et al.'s distillation loss: ``alpha * soft + (1 - alpha) * hard``.

    - soft = ``T**2 * KL(softmax(teacher / T) || softmax(student / T))``, summed over the
      vocabulary and averaged over the positions;
    - hard = the cross-entropy of the student (at temperature 1) with ``targets``.

    ``alpha`` weights the **soft** (teacher) side: ``alpha=1`` trains on the teacher alone,
    ``alpha=0`` is ordinary training on the data. Positions whose target is ``-1`` are left out
    of both terms. The teacher's logits are treated as constants (no gradient flows into them).

    Args:
        student_logits: ``(B, T, V)`` or ``(N, V)``.
        teacher_logits: the same shape; the teacher's logits on the same input.
        targets: ``(B, T)`` or ``(N,)`` integer ids, ``-1`` to ignore a position; may be ``None``
            only with ``alpha=1`` (no hard term).
        T: the softening temperature, ``> 0``.
        alpha: the weight of the soft term, in ``[0, 1]``.

    Returns:
        a scalar tensor.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ; the two models must share the "
                         "vocabulary and see the same input")
    if student_logits.dim() not in (2, 3):
        raise ValueError(f"logits should be (B, T, V) or (N, V), got shape {tuple(student_logits.shape)}")
    check_temperature(T)
    if isinstance(alpha, bool) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha!r}; it is the weight of the soft term")
    V = student_logits.shape[-1]
    s = student_logits.reshape(-1, V).float()                  # (N, V)
    t = teacher_logits.reshape(-1, V).float().detach()         # (N, V)
    if targets is None:
        if alpha != 1.0:
            raise ValueError("targets=None leaves no hard term; pass the targets, or alpha=1.0")
        keep = torch.ones(s.shape[0], dtype=torch.bool, device=s.device)
        y = None
    else:
        y = targets.reshape(-1).long()                          # (N,)
        if y.shape[0] != s.shape[0]:
            raise ValueError(f"targets {tuple(targets.shape)} do not match the logits "
                             f"{tuple(student_logits.shape)}")
        keep = y != -1
        bad = y[keep & ((y < 0) | (y >= V))]
        if bad.numel():
            raise ValueError(f"target id {bad[0].item()} is outside the logits' vocabulary (V = {V}, "
                             f"ids 0..{V - 1}); targets are token ids, or -1 to skip a position")
    n = keep.sum()
    if n == 0:
        raise ValueError("every target is -1: there is no position to learn from")
    log_ps = F.log_softmax(s / T, dim=-1)                       # (N, V) student, softened
    log_pt = F.log_softmax(t / T, dim=-1)                       # (N, V) teacher, softened
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(-1)             # (N,) KL(teacher || student)
    soft = (kl * keep).sum() / n * T ** 2
    if alpha == 1.0:
        return soft
    hard = F.cross_entropy(s, y, ignore_index=-1)
    return alpha * soft + (1.0 - alpha) * hard
