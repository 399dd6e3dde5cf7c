"""Beam search: a deterministic search for a likely continuation, with GNMT length normalisation.

Keeps the ``beam_width`` best partial sequences; at every step each is extended by every token
and the best ``beam_width`` candidates survive. The beams are one batch for the model, and with
a KV cache :meth:`~llmcourse.generate.decoding.Decoder.reorder` re-indexes the cache's rows to
follow their parents.

Example:
    >>> gnmt_length_penalty(7, 1.0)
    2.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from llmcourse.fields import check_field

from .decoding import Decoder, EvalMode
from .settings import Settings, model_limits, prepare_prompt


def gnmt_length_penalty(length: int, alpha: float) -> float:
    """The GNMT length normalisation ``((5 + length) / 6) ** alpha``.

    From Wu et al. 2016, "Google's Neural Machine Translation System" (arXiv:1609.08144),
    section 7: a hypothesis is scored ``log P(Y) / lp(Y)``. ``alpha = 0`` scores by the raw
    log-probability, which favours short outputs since every token adds a negative term; larger
    ``alpha`` favours longer ones (the paper tuned ``alpha`` in ``[0.6, 0.7]``).

    Example:
        >>> gnmt_length_penalty(1, 1.0), gnmt_length_penalty(7, 1.0), gnmt_length_penalty(7, 0.0)
        (1.0, 2.0, 1.0)
    """
    return ((5.0 + length) / 6.0) ** alpha


@dataclass(frozen=True)
class BeamHypothesis:
    """One result of :func:`beam_search`.

    Attributes:
        tokens: ``(T + n,)`` int64 token ids, the prompt included (and ``eos_id`` last when
            ``finished``).
        score: the ranking score ``log_prob / gnmt_length_penalty(n, length_penalty)``.
        log_prob: the sum of the natural-log probabilities of the ``n`` new tokens.
        finished: True when the hypothesis ended with ``eos_id``, False when it was cut at
            ``max_new_tokens``.
        num_new_tokens: ``n``, the number of tokens beam search added.
    """

    tokens: Tensor
    score: float
    log_prob: float
    finished: bool
    num_new_tokens: int


def beam_search(
    model: nn.Module,
    idx: Tensor | Sequence[int],
    beam_width: int,
    max_new_tokens: int,
    length_penalty: float = 1.0,
    eos_id: int | None = None,
    *,
    num_return: int = 1,
    use_cache: bool = True,
    keep_on_rebuild: int | None = None,
) -> list[BeamHypothesis]:
    """Search for the continuation with the best length-normalised log-probability.

    Keeps the ``beam_width`` best partial sequences. At every step each is extended by every
    token; the candidates are ranked by total log-probability and the best ``beam_width`` that do
    not end in ``eos_id`` become the next beams. A candidate ending in ``eos_id`` that ranks in
    the top ``beam_width`` is set aside as a finished hypothesis. Finished hypotheses are
    compared by the GNMT score ``log_prob / ((5 + n) / 6) ** length_penalty`` (see
    :func:`gnmt_length_penalty`; ``n`` counts the new tokens including ``eos_id``). The search
    stops at ``max_new_tokens``, or earlier when ``beam_width`` hypotheses have finished and no
    live beam can still beat the worst of them (a bound: log-probabilities only go down, and
    the penalty is monotonic in the length). Live beams at the end are candidates too
    (``finished=False``).

    ``beam_width=1`` is greedy decoding. Ties are broken by beam order, then lower token id, so
    the result is deterministic. With ``new_kv_cache``, the beams share one batched cache that
    is re-indexed with ``cache.reorder`` at each step; past ``block_size`` the cache is rebuilt
    as in :func:`generate`.

    Only one prompt is searched (its beams form the batch): ``idx`` of shape ``(T,)`` or
    ``(1, T)``. The model is in eval mode during the call and under ``torch.no_grad()``.

    Args:
        model: a language model following the package contract.
        idx: one prompt, non-empty, ids in ``[0, vocab_size)``.
        beam_width: number of beams, ``>= 1``.
        max_new_tokens: the most tokens to add, ``>= 0``.
        length_penalty: GNMT ``alpha`` (a finite float; 0 = raw log-probability).
        eos_id: end-of-text id that finishes a hypothesis, or None.
        num_return: how many hypotheses to return, in ``[1, beam_width]``.
        use_cache: use the model's KV cache when it has one.
        keep_on_rebuild: see :func:`generate`.

    Returns:
        ``num_return`` :class:`BeamHypothesis`, best first.

    Example:
        >>> from llmcourse.generate import generate
        >>> from llmcourse.model import GPT, GPTConfig
        >>> model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=1, n_embd=8))
        >>> best, second = beam_search(model, [1, 2], beam_width=4, max_new_tokens=10, num_return=2)
        >>> best.tokens.shape, best.finished, best.score >= second.score
        (torch.Size([12]), False, True)
        >>> (h,) = beam_search(model, [1, 2], beam_width=1, max_new_tokens=10)   # greedy
        >>> torch.equal(h.tokens, generate(model, [1, 2], 10, temperature=0)[0])
        True
    """
    settings = Settings(eos_id=eos_id, use_cache=use_cache,
                        keep_on_rebuild=keep_on_rebuild).checked_for(model)
    max_new_tokens = check_field("max_new_tokens", max_new_tokens, int, low=0,
                                 what="tokens to generate")
    beam_width = check_field("beam_width", beam_width, int, low=1, what="the number of beams")
    num_return = check_field("num_return", num_return, int, low=1, high=beam_width,
                             what="hypotheses to return; beam search keeps beam_width")
    alpha = check_field("length_penalty", length_penalty, float,
                        rule="a finite number (GNMT alpha, e.g. 0.6-1.0; 0 = none)")
    prompt = prepare_prompt(idx, model)
    if prompt.shape[0] != 1:
        raise ValueError(f"beam_search takes one prompt, got a batch of {prompt.shape[0]}; call it "
                         "once per prompt")
    with EvalMode(model), torch.no_grad():
        return _beam_search(model, prompt, max_new_tokens, beam_width, alpha, num_return, settings)


def _beam_search(model: nn.Module, prompt: Tensor, max_new_tokens: int, width: int,
                 alpha: float, num_return: int, settings: Settings) -> list[BeamHypothesis]:
    eos_id = settings.eos_id
    prompt_len = prompt.shape[1]
    if max_new_tokens == 0:
        return [BeamHypothesis(prompt[0].clone(), 0.0, 0.0, False, 0)]

    def hypothesis(tokens: Tensor, log_prob: float, finished: bool) -> BeamHypothesis:
        n = tokens.shape[0] - prompt_len
        return BeamHypothesis(
            tokens, log_prob / gnmt_length_penalty(n, alpha), log_prob, finished, n
        )

    # One row to start with; the first step's reorder expands it into up to `width` beams
    # (the cache's reorder accepts a new batch size), so the prompt is prefilled only once.
    ctx = Decoder(model, prompt, max_new_tokens, use_cache=settings.use_cache,
                  block_size=model_limits(model)[1], window=settings.keep_on_rebuild)
    beam_logp = torch.zeros(1, device=prompt.device)  # (W_cur,) log-probability of each beam
    logits = ctx.next_logits()  # (W_cur, V)
    done: list[BeamHypothesis] = []  # finished hypotheses, best first, at most `width`
    stopped_early = False
    neg_inf = float("-inf")

    for step in range(max_new_tokens):
        n_new = step + 1  # length of every candidate of this step
        logp = torch.log_softmax(logits.float(), dim=-1)  # (W, V)
        vocab = logp.shape[-1]
        cand = (beam_logp[:, None] + logp).reshape(-1)  # (W * V,), ordered by (beam, token)
        # Stable sort: among equal scores the lower (beam, token) pair comes first.
        n_cand = min(cand.numel(), 2 * width)
        top_scores, top_index = torch.sort(cand, descending=True, stable=True)
        top_scores = top_scores[:n_cand].tolist()
        top_index = top_index[:n_cand].tolist()

        next_beam: list[int] = []
        next_token: list[int] = []
        next_logp: list[float] = []
        for rank, (score, flat) in enumerate(zip(top_scores, top_index)):
            if score == neg_inf or len(next_beam) == width:
                break
            beam, token = divmod(flat, vocab)
            if eos_id is not None and token == eos_id:
                if rank < width:  # only an end that ranks among the best `width` counts
                    tokens = torch.cat([ctx.tokens[beam, : ctx.length], prompt.new_tensor([token])])
                    done.append(hypothesis(tokens, score, True))
                continue
            next_beam.append(beam)
            next_token.append(token)
            next_logp.append(score)
        done.sort(key=lambda h: h.score, reverse=True)
        del done[width:]

        if not next_beam:  # every candidate ended: nothing left to extend
            stopped_early = True
            break
        live = len(next_beam)
        # Pad to `width` rows with dead copies of the first beam (log-probability -inf, never
        # chosen again) so that the batch keeps one size from here on.
        next_beam += [next_beam[0]] * (width - live)
        next_token += [next_token[0]] * (width - live)
        next_logp += [neg_inf] * (width - live)
        index = torch.tensor(next_beam, device=prompt.device)
        ctx.reorder(index)
        ctx.append(torch.tensor(next_token, device=prompt.device))
        beam_logp = torch.tensor(next_logp, device=prompt.device)

        if n_new == max_new_tokens:
            break
        if len(done) >= width:
            # log_prob can only fall from here; the penalty is monotonic in the length, so the
            # best reachable score of a beam is at the next length or at max_new_tokens.
            best = next_logp[0]
            bound = max(
                best / gnmt_length_penalty(n_new + 1, alpha),
                best / gnmt_length_penalty(max_new_tokens, alpha),
            )
            if bound <= done[-1].score:
                stopped_early = True
                break
        logits = ctx.next_logits()

    # Beams cut at max_new_tokens compete with the finished hypotheses (after an early stop
    # they cannot win, and are not complete, so they are left out).
    results = list(done)
    for row, log_prob in enumerate(beam_logp.tolist()):
        if not stopped_early and log_prob != neg_inf and ctx.length > prompt_len:
            results.append(hypothesis(ctx.tokens[row, : ctx.length].clone(), log_prob, False))
    results.sort(key=lambda h: h.score, reverse=True)
    return results[:num_return]
