"""Checks for day 20, "Greedy and beam search": a sequence's log-probability, a beam step, the length penalty.

Every check is differential: the learner's function and a reference run on a small battery of
inputs unlike the notebook's (vocabularies 23, 17 and 11; prompts of 1 to 7 tokens;
continuations long enough that a product of probabilities underflows in float32; 1 to 5 beams
in and out, ties between beams, beams at ``-inf``, all the best candidates from one beam;
a short beam search built on the learner's step, width 1 being greedy) and their results are
compared. Each exercise has a table of typical mistakes whose hints the checks print and whose
entries the tests hand to the checks.

Example::

    >>> from llmcourse.checks import day20
    >>> v = day20.check_gnmt_score(lambda lp, n, a: lp / ((5 + n) / 6) ** a)
    ✅ gnmt_score: passed
"""

from __future__ import annotations

import math
from typing import Any

import torch

from llmcourse.checks._core import (Case, CheckFailed, Mistake, as_float, as_tensor, check,
                                    compare, kind_of)
from llmcourse.generate import gnmt_length_penalty
from llmcourse.model import GPT, GPTConfig

__all__ = ["check_sequence_log_prob", "check_beam_step", "check_gnmt_score"]


def _model(vocab: int = 23, block: int = 64) -> GPT:
    torch.manual_seed(20)
    return GPT(GPTConfig(vocab_size=vocab, block_size=block, n_layer=2, n_head=2, n_embd=16)).eval()


def _ids(n: int, vocab: int, seed: int) -> torch.Tensor:
    return torch.randint(0, vocab, (n,), generator=torch.Generator().manual_seed(seed))


# ---- exercise 1: a continuation's log-probability --------------------------------------------


def _reference_log_prob(model, prompt, continuation):
    ids = torch.cat([prompt, continuation])
    with torch.no_grad():
        logits = model(ids[None])[0][0]
    logp = torch.log_softmax(logits.float(), dim=-1)
    per_token = logp[:-1].gather(1, ids[1:, None])[:, 0]
    return per_token[len(prompt) - 1:].sum().item()


def _lp(model, prompt, continuation, mistake):
    ids = torch.cat([prompt, continuation])
    with torch.no_grad():
        logits = model(ids[None])[0][0]
    logp = torch.log_softmax(logits, dim=-1)
    new = slice(len(prompt) - 1, None)
    if mistake == "product":
        probs = torch.softmax(logits, -1)[:-1].gather(1, ids[1:, None])[:, 0]
        return torch.log(probs[new].prod()).item()
    if mistake == "probs":
        return torch.softmax(logits, -1)[:-1].gather(1, ids[1:, None])[:, 0][new].sum().item()
    if mistake == "logits":
        return logits[:-1].gather(1, ids[1:, None])[:, 0][new].sum().item()
    if mistake == "off_by_one":
        return logp.gather(1, ids[:, None])[:, 0][len(prompt):].sum().item()
    per_token = logp[:-1].gather(1, ids[1:, None])[:, 0]
    if mistake == "prompt_too":
        return per_token.sum().item()
    return per_token[new].mean().item()  # "mean"


def _lp_product(model, prompt, continuation):
    return _lp(model, prompt, continuation, "product")


def _lp_probs(model, prompt, continuation):
    return _lp(model, prompt, continuation, "probs")


def _lp_logits(model, prompt, continuation):
    return _lp(model, prompt, continuation, "logits")


def _lp_off_by_one(model, prompt, continuation):
    return _lp(model, prompt, continuation, "off_by_one")


def _lp_prompt_too(model, prompt, continuation):
    return _lp(model, prompt, continuation, "prompt_too")


def _lp_mean(model, prompt, continuation):
    return _lp(model, prompt, continuation, "mean")


def _lp_without_prompt(model, prompt, continuation):  # runs the continuation alone
    with torch.no_grad():
        logp = torch.log_softmax(model(continuation[None])[0][0], dim=-1)
    return logp[:-1].gather(1, continuation[1:, None]).sum().item()


def _lp_logits_not_row(model, prompt, continuation):  # model(...)[0] is (1, T, V), not (T, V)
    ids = torch.cat([prompt, continuation])
    with torch.no_grad():
        logits = model(ids[None])[0]
    logp = torch.log_softmax(logits, dim=-1)
    return logp[:-1].gather(1, ids[1:, None])[:, 0][len(prompt) - 1:].sum().item()


def _lp_one_late(model, prompt, continuation):  # starts at len(prompt): the first new token is lost
    ids = torch.cat([prompt, continuation])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids[None])[0][0], dim=-1)
    return logp[:-1].gather(1, ids[1:, None])[:, 0][len(prompt):].sum().item()


def _lp_nll(model, prompt, continuation):  # cross_entropy: the negative log-likelihood
    ids = torch.cat([prompt, continuation])
    with torch.no_grad():
        logits = model(ids[None])[0][0]
    return torch.nn.functional.cross_entropy(logits[len(prompt) - 1:-1], continuation,
                                             reduction="sum").item()


def _lp_added(model, prompt, continuation):  # prompt + continuation adds the tensors
    ids = prompt + continuation
    with torch.no_grad():
        logp = torch.log_softmax(model(ids[None])[0][0], dim=-1)
    return logp[:-1].gather(1, ids[1:, None])[:, 0][len(prompt) - 1:].sum().item()


def _lp_positions(model, prompt, continuation):  # log_softmax over the positions
    ids = torch.cat([prompt, continuation])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids[None])[0][0], dim=0)
    return logp[:-1].gather(1, ids[1:, None])[:, 0][len(prompt) - 1:].sum().item()


SEQUENCE_LOG_PROB = [
    Mistake("(1, T, V) logits", _lp_logits_not_row, hint="model(ids[None]) returns (logits, loss) "
            "and the logits are (1, T, V), one row for the batch of one: take model(ids[None])[0][0] "
            "for the (T, V) logits before gather"),
    Mistake("first new token skipped", _lp_one_late, hint="the first token of the continuation is "
            "left out: it is predicted by the prompt's last position, so the per-token "
            "log-probabilities to sum start at index len(prompt) - 1"),
    Mistake("product of probabilities", _lp_product, hint="the product of the probabilities "
            "underflows to 0 in float32 (its log is -inf): sum the log-probabilities "
            "(log_softmax) instead of multiplying probabilities"),
    Mistake("probabilities summed", _lp_probs, hint="you summed probabilities, a positive number: "
            "log-probabilities are <= 0; take torch.log_softmax(logits, dim=-1), not softmax"),
    Mistake("raw logits", _lp_logits, hint="you summed the raw logits: normalise them first with "
            "torch.log_softmax(logits, dim=-1)"),
    Mistake("off by one", _lp_off_by_one, hint="off by one: the logits at position t predict "
            "token t + 1, so score token t with logp[t - 1]"),
    Mistake("prompt scored too", _lp_prompt_too, hint="you also scored the prompt's tokens: sum "
            "over the continuation only"),
    Mistake("mean", _lp_mean, hint="you took the mean: the log-probability of a sequence is the sum "
            "over its tokens"),
    Mistake("negative log-likelihood", _lp_nll, hint="cross_entropy is the NEGATIVE "
            "log-likelihood: the log-probability is its negative (a sum of log_softmax values, "
            "<= 0)"),
    Mistake("prompt + continuation", _lp_added, hint="prompt + continuation adds the two tensors "
            "element by element: join them with torch.cat([prompt, continuation])"),
    Mistake("log_softmax over the positions", _lp_positions, hint="normalise over the "
            "vocabulary, log_softmax(logits, dim=-1), not over the positions (dim=0)"),
    Mistake("continuation without the prompt", _lp_without_prompt, hint="run the model once on "
            "the concatenation prompt + continuation: the first new token is predicted from the "
            "prompt's last position, and every later one sees the prompt"),
]


def _log_prob_cases() -> list[Case]:
    return [
        Case("sequence_log_prob(model, prompt of 4, continuation of 40) (vocabulary 23)",
             23, _ids(4, 23, 1), _ids(40, 23, 2)),
        Case("sequence_log_prob(model, prompt of 7, continuation of 5) (vocabulary 17)",
             17, _ids(7, 17, 3), _ids(5, 17, 4)),
        Case("sequence_log_prob(model, prompt of 1, continuation of 1)", 23, _ids(1, 23, 5), _ids(1, 23, 6)),
    ]


def _run_log_prob(sequence_log_prob: Any, case: Case) -> float:
    (vocab, prompt, continuation), _ = case.fresh()
    return as_float(sequence_log_prob(_model(vocab), prompt, continuation), "sequence_log_prob")


@check("sequence_log_prob", mistakes=SEQUENCE_LOG_PROB)
def check_sequence_log_prob(sequence_log_prob) -> None:
    """Exercise 1: sum of log P(token | everything before it) over the continuation only."""
    compare(sequence_log_prob, _reference_log_prob, _log_prob_cases(), name="sequence_log_prob",
            run=_run_log_prob, mistakes=SEQUENCE_LOG_PROB, atol=1e-3, rtol=1e-4)


# ---- exercise 2: one beam step ---------------------------------------------------------------


def _reference_beam_step(beam_logp, logits, width):
    V = logits.shape[-1]
    cand = beam_logp[:, None] + torch.log_softmax(logits, dim=-1)
    scores, index = cand.flatten().topk(width)
    return scores, index // V, index % V


def _bs(beam_logp, logits, width, mistake):
    V = logits.shape[-1]
    logp = torch.log_softmax(logits, dim=-1)
    if mistake == "probs":
        cand = beam_logp.exp()[:, None] * logp.exp()
    elif mistake == "multiply":
        cand = beam_logp[:, None] * logp
    elif mistake == "not_summed":
        cand = logp
    elif mistake == "raw_logits":
        cand = beam_logp[:, None] + logits
    elif mistake == "softmax_dim0":
        cand = beam_logp[:, None] + torch.log_softmax(logits, dim=0)
    else:
        cand = beam_logp[:, None] + logp
    if mistake == "one_per_beam":
        best, tok = cand.max(dim=1)
        return best, torch.arange(len(best)), tok
    scores, index = cand.flatten().topk(width)
    if mistake == "swapped":
        return scores, index % V, index // V
    if mistake == "float_parent":
        return scores, torch.div(index, V).floor(), index % V
    return scores, index // V, index % V


def _bs_probs(beam_logp, logits, width):
    return _bs(beam_logp, logits, width, "probs")


def _bs_multiply(beam_logp, logits, width):
    return _bs(beam_logp, logits, width, "multiply")


def _bs_not_summed(beam_logp, logits, width):
    return _bs(beam_logp, logits, width, "not_summed")


def _bs_raw_logits(beam_logp, logits, width):
    return _bs(beam_logp, logits, width, "raw_logits")


def _bs_softmax_dim0(beam_logp, logits, width):
    return _bs(beam_logp, logits, width, "softmax_dim0")


def _bs_swapped(beam_logp, logits, width):
    return _bs(beam_logp, logits, width, "swapped")


def _bs_one_per_beam(beam_logp, logits, width):
    return _bs(beam_logp, logits, width, "one_per_beam")


def _bs_float_parent(beam_logp, logits, width):
    return _bs(beam_logp, logits, width, "float_parent")


def _bs_divides_by_width(beam_logp, logits, width):  # // W and % W instead of // V and % V
    W = logits.shape[0]
    scores, index = (beam_logp[:, None] + torch.log_softmax(logits, dim=-1)).flatten().topk(width)
    return scores, index // W, index % W


def _bs_flat_beams(beam_logp, logits, width):  # beam_logp + (W, V): lines up with the tokens
    V = logits.shape[-1]
    scores, index = (beam_logp + torch.log_softmax(logits, dim=-1)).flatten().topk(width)
    return scores, index // V, index % V


def _bs_ascending(beam_logp, logits, width):  # torch.sort keeps the smallest first
    V = logits.shape[-1]
    scores, index = torch.sort((beam_logp[:, None] + torch.log_softmax(logits, dim=-1)).flatten())
    return scores[:width], index[:width] // V, index[:width] % V


def _bs_topk_per_row(beam_logp, logits, width):  # topk of the (W, V) table works row by row
    V = logits.shape[-1]
    scores, index = (beam_logp[:, None] + torch.log_softmax(logits, dim=-1)).topk(width)
    return scores, index // V, index % V


def _bs_table_softmax(beam_logp, logits, width):  # one log_softmax over all W x V candidates
    V = logits.shape[-1]
    scores, index = torch.log_softmax((beam_logp[:, None] + logits).flatten(), dim=0).topk(width)
    return scores, index // V, index % V


def _bs_best_beam_only(beam_logp, logits, width):  # extends only the best beam
    best = int(beam_logp.argmax())
    scores, token = (beam_logp[best] + torch.log_softmax(logits[best], dim=-1)).topk(width)
    return scores, torch.full_like(token, best), token


BEAM_STEP = [
    Mistake("// number of beams", _bs_divides_by_width, hint="the flat index of candidate (beam, "
            "token) in the (W, V) table is beam * V + token: parent = index // V, token = index % V, "
            "with V = logits.shape[-1] the vocabulary size, not the number of beams"),
    Mistake("probabilities", _bs_probs, hint="you multiplied probabilities: work in log space, "
            "where a sequence's probabilities add up: beam_logp[:, None] + log_softmax(logits)"),
    Mistake("multiplied log-probabilities", _bs_multiply, hint="you multiplied log-probabilities: "
            "in log space the probabilities of a sequence multiply, so their logs add: "
            "beam_logp[:, None] + logp"),
    Mistake("beam scores ignored", _bs_not_summed, hint="the scores ignore the beams' own "
            "log-probabilities: a candidate's score is beam_logp[beam] + log P(token), summed in "
            "log space"),
    Mistake("raw logits", _bs_raw_logits, hint="you added raw logits: normalise each row with "
            "torch.log_softmax(logits, dim=-1) first"),
    Mistake("log_softmax over the beams", _bs_softmax_dim0, hint="normalise over the vocabulary, "
            "log_softmax(logits, dim=-1), not over the beams (dim=0)"),
    Mistake("parent and token swapped", _bs_swapped, hint="parent and token are swapped: in the "
            "flattened (beam, token) index, parent = index // V and token = index % V"),
    Mistake("best token of each beam", _bs_one_per_beam, hint="you kept the best token of each "
            "beam: rank all W x V candidates together (flatten, then topk(width)); the best ones "
            "may all come from one beam"),
    Mistake("float parent", _bs_float_parent, expect="has dtype float32, expected int64"),
    Mistake("beam_logp not broadcast", _bs_flat_beams, hint="beam_logp (W,) has to be added to "
            "each row of the (W, V) log-probabilities: beam_logp[:, None] + "
            "torch.log_softmax(logits, dim=-1) (a column, so it runs down the beams)"),
    Mistake("topk of the table", _bs_topk_per_row, hint="topk on the (W, V) table ranks each "
            "beam's row on its own, giving (W, width): flatten it first, "
            "cand.flatten().topk(width), to rank all W x V candidates together"),
    Mistake("log_softmax over the whole table", _bs_table_softmax, hint="normalise each beam's "
            "logits over the vocabulary, torch.log_softmax(logits, dim=-1), then add "
            "beam_logp[:, None]; one softmax over all W x V candidates mixes the beams"),
    Mistake("only the best beam extended", _bs_best_beam_only, hint="every beam is extended, not "
            "only the best one: score all W x V candidates, beam_logp[:, None] + log_softmax, "
            "and keep the best width of them"),
    Mistake("ascending sort", _bs_ascending, hint="kept the worst candidates: torch.sort is "
            "ascending by default; take the best with .topk(width) (or sort with descending=True)"),
]


def _beam_cases() -> list[Case]:
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(3, 23, generator=g) * 3
    logits[1, 7] = 12.0  # beam 1's token 7 beats beam 0's best: ranking across beams matters
    tied = torch.randn(5, 11, generator=g)
    tied[2] = tied[0]  # beams 0 and 2 are the same: their candidates tie exactly
    tied[0, 4] = tied[2, 4] = 6.0
    one = torch.randn(2, 17, generator=g)
    return [
        Case("beam_step(beam_logp (3,), logits (3, 23), width=4)",
             torch.tensor([-1.0, -2.5, -4.0]), logits, 4),
        Case("beam_step(beam_logp (1,), logits (1, 23), width=1): greedy",
             torch.tensor([0.0]), torch.randn(1, 23, generator=g) * 2, 1),
        Case("beam_step(5 beams, two of them equal, logits (5, 11), width=2): a tie",
             torch.tensor([-3.0, -5.0, -3.0, -4.0, -6.0]), tied, 2),
        Case("beam_step(2 beams, one far behind, logits (2, 17), width=3): all from one beam",
             torch.tensor([-0.1, -9.0]), one, 3),
        Case("beam_step(beam_logp [0, -inf, -inf], logits (3, 23), width=3): the first step",
             torch.tensor([0.0, -math.inf, -math.inf]), torch.randn(3, 23, generator=g), 3),
    ]


def _read_beam(value: Any, beam_logp: torch.Tensor, logits: torch.Tensor) -> dict[str, Any]:
    if value is None:
        raise CheckFailed("beam_step returned None; did you forget `return scores, parent, token`?")
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        raise CheckFailed(f"beam_step should return three tensors (scores, parent, token), got "
                          f"{kind_of(value)}")
    scores = as_tensor(value[0], "scores")
    parent = as_tensor(value[1], "parent")
    token = as_tensor(value[2], "token")
    W, V = logits.shape
    logp = beam_logp[:, None] + torch.log_softmax(logits, dim=-1)
    matches = scores.shape == parent.shape == token.shape and scores.ndim == 1
    pairs = []
    if matches:
        for s, p, t in zip(scores.tolist(), parent.tolist(), token.tolist()):
            ok = float(p).is_integer() and float(t).is_integer() and 0 <= p < W and 0 <= t < V
            matches = matches and ok and abs(float(logp[int(p), int(t)]) - s) < 1e-4
            pairs.append((int(p), int(t)))
    return {"scores (best first)": scores, "parent's dtype": parent, "token's dtype": token,
            "the kept (parent, token) pairs": sorted(pairs),
            "every score is its (parent, token)'s": matches}


def _run_beam(beam_step: Any, case: Case) -> dict[str, Any]:
    if case.kwargs.get("search"):
        return _run_search(beam_step, case)
    (beam_logp, logits, width), _ = case.fresh()
    out = _read_beam(beam_step(beam_logp.clone(), logits.clone(), width), beam_logp, logits)
    # the dtypes, not the order of tied candidates: compare empty slices of the tensors
    out["parent's dtype"] = out["parent's dtype"][:0]
    out["token's dtype"] = out["token's dtype"][:0]
    return out


def _run_search(beam_step: Any, case: Case) -> dict[str, Any]:
    """A fixed-length beam search with ``beam_step`` on a small GPT; width 1 is greedy."""
    width, steps = case.args
    model = _model(17, 32)
    beams = torch.tensor([[3, 1, 4]])
    beam_logp = torch.zeros(1)
    with torch.no_grad():
        for _ in range(steps):
            logits = model(beams)[0][:, -1]
            out = beam_step(beam_logp.clone(), logits.clone(), width)
            _read_beam(out, beam_logp, logits)  # a pair, a None, ...: named before indexing
            scores, parent, token = out
            beams = torch.cat([beams[parent.long()], token.long()[:, None]], dim=1)
            beam_logp = scores
    return {"the beams after the search": beams, "their log-probabilities": beam_logp}


def _search_cases() -> list[Case]:
    return [Case("a 6-step beam search of width 3 built on your beam_step", 3, 6, search=True),
            Case("a 5-step beam search of width 1 (greedy) built on your beam_step", 1, 5, search=True)]


@check("beam_step", mistakes=BEAM_STEP)
def check_beam_step(beam_step) -> None:
    """Exercise 2: extend every beam by every token, keep the best ``width`` (log space)."""
    compare(beam_step, _reference_beam_step, _beam_cases() + _search_cases(), name="beam_step",
            run=_run_beam, mistakes=BEAM_STEP, atol=1e-5, rtol=1e-5)


# ---- exercise 3: the GNMT score ----------------------------------------------------------------


def _reference_gnmt(log_prob, length, alpha):
    return log_prob / gnmt_length_penalty(length, alpha)


def _gn_no_penalty(log_prob, length, alpha):
    return log_prob


def _gn_per_token(log_prob, length, alpha):
    return log_prob / length


def _gn_no_exponent(log_prob, length, alpha):
    return log_prob / ((5 + length) / 6)


def _gn_multiply(log_prob, length, alpha):
    return log_prob * ((5 + length) / 6) ** alpha


def _gn_precedence(log_prob, length, alpha):  # ** binds tighter than /
    return log_prob / ((5 + length) / 6 ** alpha)


def _gn_precedence_2(log_prob, length, alpha):
    return log_prob / (5 + length) / 6 ** alpha


def _gn_length_over_6(log_prob, length, alpha):  # (5 + length / 6)
    return log_prob / (5 + length / 6) ** alpha


def _gn_times_alpha(log_prob, length, alpha):
    return log_prob / (((5 + length) / 6) * alpha)


def _gn_floor(log_prob, length, alpha):
    return log_prob / ((5 + length) // 6) ** alpha


def _gn_sign(log_prob, length, alpha):
    return -log_prob / ((5 + length) / 6) ** alpha


GNMT = [
    Mistake("no penalty", _gn_no_penalty, hint="that is the log-probability itself: divide it by "
            "the length penalty ((5 + length) / 6) ** alpha"),
    Mistake("divided by the length", _gn_per_token, hint="dividing by the length (a plain "
            "average) is not GNMT's penalty; divide by ((5 + length) / 6) ** alpha"),
    Mistake("no exponent", _gn_no_exponent, hint="the penalty is ((5 + length) / 6) ** alpha; you "
            "left out the exponent alpha"),
    Mistake("multiplied", _gn_multiply, hint="divide by the penalty, do not multiply: a longer "
            "hypothesis's (negative) log-probability is shrunk towards 0"),
    Mistake("6 ** alpha", _gn_precedence, hint="** binds tighter than /: write "
            "((5 + length) / 6) ** alpha with both parentheses"),
    Mistake("/ (5 + length) / 6 ** alpha", _gn_precedence_2, hint="** binds tighter than /: write "
            "((5 + length) / 6) ** alpha with both parentheses"),
    Mistake("5 + length / 6", _gn_length_over_6, hint="/ binds tighter than +: the penalty is "
            "((5 + length) / 6) ** alpha, with (5 + length) in parentheses"),
    Mistake("times alpha", _gn_times_alpha, hint="alpha is an exponent: ((5 + length) / 6) ** "
            "alpha, not ((5 + length) / 6) * alpha"),
    Mistake("integer division", _gn_floor, hint="// rounds (5 + length) / 6 down to a whole "
            "number: divide with /"),
    Mistake("sign flipped", _gn_sign, hint="the score keeps the log-probability's sign (<= 0): "
            "log_prob / ((5 + length) / 6) ** alpha, without a minus"),
]


def _gnmt_cases() -> list[Case]:
    rows = [(-12.0, 7, 1.0), (-30.5, 40, 0.6), (-12.0, 7, 0.0), (-3.25, 2, 2.0), (0.0, 3, 0.7),
            (-5.0, 1, 0.65), (-7.5, 19, 0.7)]
    return [Case(f"gnmt_score({lp}, {n}, {a})", lp, n, a) for lp, n, a in rows]


@check("gnmt_score", mistakes=GNMT)
def check_gnmt_score(gnmt_score) -> None:
    """Exercise 3: log_prob / ((5 + length) / 6) ** alpha."""
    compare(gnmt_score, _reference_gnmt, _gnmt_cases(), name="gnmt_score",
            mistakes=GNMT, read=lambda v, case: as_float(v, case.label), atol=1e-9, rtol=1e-6)
