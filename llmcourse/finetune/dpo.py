"""Direct Preference Optimization (Rafailov et al., 2023): learn from pairs of answers.

A preference pair is a prompt with two responses, one *chosen* and one *rejected*. DPO trains
a policy (the model being tuned) against a frozen copy of where it started, the reference, so
that the policy raises the chosen response's log-probability relative to the reference more
than the rejected one's. The implied reward of a response is ``beta * (log pi(y|x) -
log pi_ref(y|x))``, and the loss is ``-log sigmoid(reward_chosen - reward_rejected)``: a
logistic loss on the reward margin, with no reward model and no reinforcement learning loop.

Example (a policy equal to its reference pays log 2, whatever the pair):

    >>> import torch
    >>> lp = torch.tensor([-12.0, -30.0])
    >>> loss, chosen, rejected = dpo_loss(lp, lp - 3, lp, lp - 3, beta=0.1)
    >>> round(loss.item(), 4), chosen.tolist(), rejected.tolist()
    (0.6931, [0.0, 0.0], [0.0, 0.0])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from llmcourse.finetune.settings import is_positive_finite

__all__ = ["sequence_logps", "dpo_loss"]


def sequence_logps(logits: torch.Tensor, input_ids: torch.Tensor, prompt_lens,
                   lengths=None) -> torch.Tensor:
    """The summed log-probability of each row's response tokens, the prompt left out.

    ``logits = model(input_ids)[0]``; ``logits[:, t]`` predicts ``input_ids[:, t + 1]``. Row
    ``b`` is a prompt of ``prompt_lens[b]`` tokens followed by the response, which ends before
    ``lengths[b]`` (default: the end of the row; tokens after it are padding). The result sums
    ``log p(input_ids[b, t] | input_ids[b, :t])`` over ``prompt_lens[b] <= t < lengths[b]``.

    Args:
        logits: ``(B, T, V)``.
        input_ids: ``(B, T)`` integer ids.
        prompt_lens: an int, or ``(B,)`` ints, each ``>= 1`` (the first token has no prediction).
        lengths: ``None``, an int, or ``(B,)`` ints, each ``<= T``.

    Returns:
        ``(B,)`` float32 sums of log-probabilities (differentiable through ``logits``).

    >>> import torch
    >>> logits = torch.zeros(1, 4, 2)              # uniform over 2 tokens: log p = -log 2 each
    >>> ids = torch.tensor([[0, 1, 1, 0]])
    >>> round(sequence_logps(logits, ids, prompt_lens=2).item(), 4)   # 2 response tokens
    -1.3863
    """
    if logits.dim() != 3 or input_ids.shape != logits.shape[:2]:
        raise ValueError(f"logits should be (B, T, V) and input_ids (B, T); got "
                         f"{tuple(logits.shape)} and {tuple(input_ids.shape)}")
    B, T, _ = logits.shape
    prompt = torch.as_tensor(prompt_lens, device=logits.device).expand(B)          # (B,)
    end = torch.as_tensor(T if lengths is None else lengths, device=logits.device).expand(B)
    if (prompt < 1).any() or (end > T).any() or (prompt > end).any():
        raise ValueError("need 1 <= prompt_lens <= lengths <= T (the first token has no "
                         "prediction, so a prompt holds at least one token)")
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)                            # (B, T-1, V)
    tok = logp.gather(-1, input_ids[:, 1:].long().unsqueeze(-1)).squeeze(-1)      # (B, T-1)
    pos = torch.arange(1, T, device=logits.device)                                  # target positions
    mask = (pos >= prompt[:, None]) & (pos < end[:, None])                          # (B, T-1)
    return (tok * mask).sum(-1)


def dpo_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
             ref_chosen_logps: torch.Tensor, ref_rejected_logps: torch.Tensor,
             beta: float = 0.1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The DPO loss and the implied rewards, from summed response log-probabilities.

    ``reward_chosen = beta * (policy_chosen_logps - ref_chosen_logps)`` and likewise for the
    rejected responses; ``loss = mean(-log sigmoid(reward_chosen - reward_rejected))``.
    ``beta`` sets how far the policy may move from the reference: a small ``beta`` needs a large
    change of log-probabilities for the same margin.

    Args:
        policy_chosen_logps, policy_rejected_logps: ``(B,)`` from the policy being trained.
        ref_chosen_logps, ref_rejected_logps: ``(B,)`` from the frozen reference (no gradient).
        beta: ``> 0``.

    Returns:
        ``(loss, chosen_rewards, rejected_rewards)``: the scalar mean loss, and the ``(B,)``
        rewards, detached (they are for watching training, not for backward).
    """
    if not is_positive_finite(beta):
        raise ValueError(f"beta must be > 0 and finite, got {beta!r} (0.1 is the usual start)")
    shapes = {tuple(t.shape) for t in (policy_chosen_logps, policy_rejected_logps,
                                       ref_chosen_logps, ref_rejected_logps)}
    if len(shapes) != 1:
        raise ValueError(f"the four log-probability tensors should share one shape (B,), got {sorted(shapes)}")
    if policy_chosen_logps.numel() == 0:
        raise ValueError("the batch is empty (B = 0): the mean loss of no pairs is undefined; "
                         "give at least one preference pair")
    chosen = beta * (policy_chosen_logps - ref_chosen_logps.detach())        # (B,)
    rejected = beta * (policy_rejected_logps - ref_rejected_logps.detach())  # (B,)
    loss = -F.logsigmoid(chosen - rejected).mean()
    return loss, chosen.detach(), rejected.detach()
