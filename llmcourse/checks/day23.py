"""Checks for day 23, "Sampling experiments": distinct-n, the repeated n-gram rate, the model's own loss.

Each ``check_*`` compares the learner's function with the package's on a small battery of
inputs (word samples and token-id samples of different lengths, a sample shorter than ``n``,
no samples at all, n = 1, 2, 3; rows of several sizes and prompt lengths for the loss), prints
one line (a pass, the hint of a typical mistake from the exercise's table, or "not done yet")
and returns a verdict. None of them raises. The references are
:mod:`llmcourse.generate.experiments` (unrounded).

Example::

    >>> from llmcourse.checks import day23
    >>> ok = day23.check_distinct_n(lambda samples, n: 0.5)
    ❌ distinct_n: distinct_n(samples, n) should be 0.454545, got 0.5 (on distinct_n(4 word samples ...))
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable

import torch
import torch.nn.functional as F

from llmcourse.checks._core import Case, CheckFailed, Mistake, as_float, check, compare, refuse_reference
from llmcourse.generate.experiments import distinct_n, repeated_ngram_rate, sample_loss

__all__ = ["check_distinct_n", "check_repeated_ngram_rate", "check_sample_loss", "DISTINCT_N",
           "REPEATED_NGRAM_RATE", "SAMPLE_LOSS"]

# Samples of different lengths whose n-grams repeat within and across samples, and one
# sample shorter than n: every typical mistake gives another number on them.
_SAMPLES = [
    ["to", "be", "or", "not", "to", "be", "to", "be"],
    ["be", "to", "be", "or"],
    ["or", "not"],
    ["not"],
]


def _ids() -> list[list[int]]:
    """Token-id samples of 12, 7, 3 and 9 ids from a vocabulary of 4: many repeats."""
    g = torch.Generator().manual_seed(23)
    return [torch.randint(0, 4, (n,), generator=g).tolist() for n in (12, 7, 3, 9)]


def _ngram_cases(name: str) -> list[Case]:
    words = "4 word samples of 8, 4, 2 and 1 words"
    return [
        Case(f"{name}({words}, n=2)", _SAMPLES, 2),
        Case(f"{name}({words}, n=3)", _SAMPLES, 3),
        Case(f"{name}({words}, n=1)", _SAMPLES, 1),
        Case(f"{name}(4 samples of 12, 7, 3 and 9 token ids, n=2)", _ids(), 2),
        Case(f"{name}(2 strings 'abab', 'ab' as samples of characters, n=2)", ["abab", "ab"], 2),
        Case(f"{name}([['a'], ['b']], n=2): no sample has an n-gram", [["a"], ["b"]], 2),
        Case(f"{name}([], n=1): no samples", [], 1),
        Case(f"{name}([[1, 12, 11, 2]], n=2): (1, 12) and (11, 2) differ", [[1, 12, 11, 2]], 2),
    ]


def _number(name: str) -> Callable[[Any, Case], float]:
    return lambda value, case: as_float(value, name)


def _grams(sample, n):
    return [tuple(sample[i:i + n]) for i in range(len(sample) - n + 1)]


# ---- exercise 1: distinct_n ----------------------------------------------------------------------


def _d_crash(samples, n):  # ZeroDivisionError without n-grams
    grams = [g for s in samples for g in _grams(s, n)]
    return len(set(grams)) / len(grams)


def _d_tokens(samples, n):  # the share of different single tokens, whatever n
    flat = [t for s in samples for t in s]
    return len(set(flat)) / len(flat) if flat else 0.0


def _d_joined(samples, n):  # n-grams across the end of one sample and the start of the next
    grams = _grams([t for s in samples for t in s], n)
    return len(set(grams)) / len(grams) if grams else 0.0


def _d_by_tokens(samples, n):
    grams = [g for s in samples for g in _grams(s, n)]
    tokens = sum(len(s) for s in samples)
    return len(set(grams)) / tokens if tokens else 0.0


def _d_mean(samples, n):  # the mean of each sample's own distinct-n
    values = [len(set(_grams(s, n))) / len(_grams(s, n)) for s in samples if len(s) >= n]
    return sum(values) / len(values) if values else 0.0


def _d_inverted(samples, n):
    grams = [g for s in samples for g in _grams(s, n)]
    return len(grams) / len(set(grams)) if grams else 0.0


def _d_last_missing(samples, n):  # range(len(s) - n): the last n-gram of each sample is lost
    grams = [tuple(s[i:i + n]) for s in samples for i in range(len(s) - n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def _d_bigrams(samples, n):  # n = 2 written in, whatever n is
    grams = [g for s in samples for g in _grams(s, 2)]
    return len(set(grams)) / len(grams) if grams else 0.0


def _d_one_without_grams(samples, n):  # 1.0 ("all different") when there is nothing to count
    grams = [g for s in samples for g in _grams(s, n)]
    return len(set(grams)) / len(grams) if grams else 1.0


def _d_joined_strings(samples, n):  # "".join: (1, 12) and (11, 2) both become "112"
    grams = ["".join(map(str, g)) for s in samples for g in _grams(s, n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def _d_integer_division(samples, n):  # // rounds the share down to 0 (or 1)
    grams = [g for s in samples for g in _grams(s, n)]
    return len(set(grams)) // len(grams) if grams else 0.0


def _d_sets_added(samples, n):  # the different n-grams of each sample, added up
    total = sum(len(_grams(s, n)) for s in samples)
    return sum(len(set(_grams(s, n))) for s in samples) / total if total else 0.0


_INTEGER_DIVISION = ("divided with //, which rounds the share down to 0; divide with / to get a "
                     "float between 0 and 1")

DISTINCT_N = [
    Mistake("integer division", _d_integer_division, hint=_INTEGER_DIVISION),
    Mistake("different n-grams of each sample added up", _d_sets_added,
            hint="added up the different n-grams of each sample, so an n-gram two samples share "
                 "counts twice; put the n-grams of all samples into one set, then count it"),
    Mistake("lists in a set", lambda samples, n: (lambda g: len(set(g)) / len(g) if g else 0.0)(
        [s[i:i + n] for s in samples for i in range(len(s) - n + 1)]),
            hint="a list cannot go into a set (it is unhashable): make each n-gram a tuple, "
                 "tuple(s[i:i + n])"),
    Mistake("1.0 without n-grams", _d_one_without_grams,
            hint="with no n-gram at all (every sample shorter than n, or no samples) return 0.0, "
                 "not 1.0"),
    Mistake("n-gram joined into a string", _d_joined_strings,
            hint="joined each n-gram's tokens into one string with no separator, so (1, 12) and "
                 "(11, 2) both became '112': keep n-grams as tuples, tuple(sample[i:i + n])"),
    Mistake("no n-grams crashes", _d_crash,
            hint="with no n-gram at all (every sample shorter than n, or no samples) return 0.0 "
                 "instead of dividing by 0"),
    Mistake("single tokens", _d_tokens,
            hint="returned the share of different single tokens; count n-grams: "
                 "tuple(sample[i:i + n]) for every i of each sample"),
    Mistake("across samples", _d_joined,
            hint="counted n-grams across the end of one sample and the start of the next; take "
                 "the n-grams of each sample separately, then pool them"),
    Mistake("divides by tokens", _d_by_tokens,
            hint="divided by the number of tokens; divide by the number of n-grams "
                 "(len(sample) - n + 1 per sample)"),
    Mistake("mean of samples", _d_mean,
            hint="returned the mean of each sample's own distinct-n; pool the n-grams of all "
                 "samples: a phrase every sample repeats should lower the score"),
    Mistake("all / different", _d_inverted,
            hint="returned all / different; divide the number of different n-grams by the "
                 "number of all n-grams"),
    Mistake("last n-gram lost", _d_last_missing,
            hint="missed the last n-gram of each sample: a sample of L units has L - n + 1 "
                 "n-grams, range(len(s) - n + 1)"),
    Mistake("n = 2 written in", _d_bigrams,
            hint="counted bigrams whatever n is; use the argument n: tuple(s[i:i + n])"),
]


@check("distinct_n", mistakes=DISTINCT_N)
def check_distinct_n(distinct_n_fn: Callable[[Any, int], Any]) -> None:
    """Exercise 1: different n-grams / all n-grams, n-grams within each sample, 0.0 without any."""
    compare(distinct_n_fn, lambda samples, n: distinct_n(samples, n, digits=None),
            _ngram_cases("distinct_n"), name="distinct_n(samples, n)", mistakes=DISTINCT_N,
            read=_number("distinct_n(samples, n)"), atol=1e-4, rtol=0.0)


# ---- exercise 2: repeated_ngram_rate -------------------------------------------------------------


def _r_crash(samples, n):
    repeats = sum(len(_grams(s, n)) - len(set(_grams(s, n))) for s in samples)
    return repeats / sum(len(_grams(s, n)) for s in samples)


def _r_across(samples, n):  # one set of seen n-grams for all samples
    seen, repeats, total = set(), 0, 0
    for s in samples:
        for g in _grams(s, n):
            repeats += g in seen
            seen.add(g)
            total += 1
    return repeats / total if total else 0.0


def _r_first_time(samples, n):
    repeats = sum(len(_grams(s, n)) - len(set(_grams(s, n))) for s in samples)
    total = sum(len(_grams(s, n)) for s in samples)
    return 1 - repeats / total if total else 0.0


def _r_by_tokens(samples, n):
    repeats = sum(len(_grams(s, n)) - len(set(_grams(s, n))) for s in samples)
    tokens = sum(len(s) for s in samples)
    return repeats / tokens if tokens else 0.0


def _r_once_each(samples, n):  # a repeated n-gram counted once, however often it comes back
    repeats = sum(len({g for g in _grams(s, n) if _grams(s, n).count(g) > 1}) for s in samples)
    total = sum(len(_grams(s, n)) for s in samples)
    return repeats / total if total else 0.0


def _r_every_occurrence(samples, n):  # the first occurrence counted as a repeat too
    repeats = sum(sum(1 for g in _grams(s, n) if _grams(s, n).count(g) > 1) for s in samples)
    total = sum(len(_grams(s, n)) for s in samples)
    return repeats / total if total else 0.0


def _r_last_missing(samples, n):
    repeats = total = 0
    for s in samples:
        grams = [tuple(s[i:i + n]) for i in range(len(s) - n)]
        repeats += len(grams) - len(set(grams))
        total += len(grams)
    return repeats / total if total else 0.0


def _r_mean(samples, n):  # the mean of each sample's own rate
    rates = [(len(_grams(s, n)) - len(set(_grams(s, n)))) / len(_grams(s, n))
             for s in samples if len(s) >= n]
    return sum(rates) / len(rates) if rates else 0.0


def _r_integer_division(samples, n):
    repeats = sum(len(_grams(s, n)) - len(set(_grams(s, n))) for s in samples)
    total = sum(len(_grams(s, n)) for s in samples)
    return repeats // total if total else 0.0


REPEATED_NGRAM_RATE = [
    Mistake("integer division", _r_integer_division, hint=_INTEGER_DIVISION),
    Mistake("mean of samples", _r_mean,
            hint="returned the mean of each sample's own rate; add up the repeats of all "
                 "samples and divide by the number of n-grams of all samples"),
    Mistake("no n-grams crashes", _r_crash,
            hint="with no n-gram at all (every sample shorter than n, or no samples) return 0.0 "
                 "instead of dividing by 0"),
    Mistake("across samples", _r_across,
            hint="counted an n-gram that another sample used as a repeat; a repeat is an n-gram "
                 "seen earlier in the *same* sample (start a new set for every sample)"),
    Mistake("first time", _r_first_time,
            hint="returned the share of n-grams seen for the first time; count the ones already "
                 "seen instead"),
    Mistake("divides by tokens", _r_by_tokens,
            hint="divided by the number of tokens; divide by the number of n-grams"),
    Mistake("once each", _r_once_each,
            hint="counted each repeated n-gram once; an n-gram written three times is two repeats"),
    Mistake("first occurrence counted", _r_every_occurrence,
            hint="counted the first occurrence of a repeated n-gram too; only the later ones, "
                 "already seen, are repeats"),
    Mistake("last n-gram lost", _r_last_missing,
            hint="missed the last n-gram of each sample: a sample of L units has L - n + 1 "
                 "n-grams, range(len(s) - n + 1)"),
]


@check("repeated_ngram_rate", mistakes=REPEATED_NGRAM_RATE)
def check_repeated_ngram_rate(rate_fn: Callable[[Any, int], Any]) -> None:
    """Exercise 2: n-grams seen earlier in the same sample / all n-grams, 0.0 without any."""
    cases = _ngram_cases("repeated_ngram_rate")
    cases.insert(1, Case("repeated_ngram_rate([['a', 'b', 'a', 'b', 'a', 'b', 'a']], n=2): ab "
                         "three times", [list("abababa")], 2))
    compare(rate_fn, lambda samples, n: repeated_ngram_rate(samples, n, digits=None), cases,
            name="repeated_ngram_rate(samples, n)", mistakes=REPEATED_NGRAM_RATE,
            read=_number("repeated_ngram_rate(samples, n)"), atol=1e-4, rtol=0.0)


# ---- exercise 3: sample_loss ---------------------------------------------------------------------


def _toy_model() -> torch.nn.Module:
    """A small GPT with dropout: each call hands it over in training mode (see ``_run_loss``)."""
    from llmcourse.model import GPT, GPTConfig

    torch.manual_seed(7)
    return GPT(GPTConfig(vocab_size=13, block_size=20, n_layer=1, n_head=1, n_embd=12, dropout=0.2))


def _ce(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def _l_every_token(model, rows, prompt_len):
    model.eval()
    with torch.no_grad():
        _, loss = model(rows[:, :-1], rows[:, 1:])
    return loss.item()


def _l_unshifted(model, rows, prompt_len):
    model.eval()
    with torch.no_grad():
        logits, _ = model(rows)
    return _ce(logits[:, prompt_len:], rows[:, prompt_len:]).item()


def _l_perplexity(model, rows, prompt_len):
    model.eval()
    with torch.no_grad():
        logits, _ = model(rows)
    return math.exp(_ce(logits[:, prompt_len - 1:-1], rows[:, prompt_len:]).item())


def _l_sum(model, rows, prompt_len):
    model.eval()
    with torch.no_grad():
        logits, _ = model(rows)
    pred = logits[:, prompt_len - 1:-1]
    return F.cross_entropy(pred.reshape(-1, pred.shape[-1]), rows[:, prompt_len:].reshape(-1),
                           reduction="sum").item()


def _l_first_sampled_lost(model, rows, prompt_len):
    model.eval()
    with torch.no_grad():
        logits, _ = model(rows)
    return _ce(logits[:, prompt_len:-1], rows[:, prompt_len + 1:]).item()


def _l_3d(model, rows, prompt_len):     # (B, T, V) logits straight into F.cross_entropy
    model.eval()
    with torch.no_grad():
        logits, _ = model(rows)
    return F.cross_entropy(logits[:, prompt_len - 1:-1], rows[:, prompt_len:]).item()


def _l_tuple(model, rows, prompt_len):  # model(rows) is (logits, loss)
    model.eval()
    with torch.no_grad():
        logits = model(rows)
    pred = logits[:, prompt_len - 1:-1]
    return _ce(pred, rows[:, prompt_len:]).item()


def _l_model_loss(model, rows, prompt_len):  # the model's loss with the rows as their own targets
    model.eval()
    with torch.no_grad():
        _, loss = model(rows, rows)
    return loss.item()


def _l_no_eval(model, rows, prompt_len):  # the model stays in training mode: dropout on
    with torch.no_grad():
        logits, _ = model(rows)
    return _ce(logits[:, prompt_len - 1:-1], rows[:, prompt_len:]).item()


def _l_tensor(model, rows, prompt_len):  # the loss as a 0-d tensor, not a Python float
    model.eval()
    with torch.no_grad():
        logits, _ = model(rows)
    return _ce(logits[:, prompt_len - 1:-1], rows[:, prompt_len:])


def _l_no_grad_missing(model, rows, prompt_len):  # gradients recorded for nothing
    model.eval()
    logits, _ = model(rows)
    return _ce(logits[:, prompt_len - 1:-1], rows[:, prompt_len:]).item()


def _l_not_cut(model, rows, prompt_len):  # logits[:, prompt_len - 1:] is one position too long
    model.eval()
    with torch.no_grad():
        logits, _ = model(rows)
    return _ce(logits[:, prompt_len - 1:], rows[:, prompt_len:]).item()


def _l_without_prompt(model, rows, prompt_len):  # the model sees only the last prompt token
    model.eval()
    with torch.no_grad():
        _, loss = model(rows[:, prompt_len - 1:-1], rows[:, prompt_len:])
    return loss.item()


def _l_targets_unshifted(model, rows, prompt_len):  # targets cut where the logits are
    model.eval()
    with torch.no_grad():
        logits, _ = model(rows)
    return _ce(logits[:, prompt_len - 1:-1], rows[:, prompt_len - 1:-1]).item()


def _l_bits(model, rows, prompt_len):
    model.eval()
    with torch.no_grad():
        logits, _ = model(rows)
    return _ce(logits[:, prompt_len - 1:-1], rows[:, prompt_len:]).item() / math.log(2)


def _l_writes_into_rows(model, rows, prompt_len):  # targets = rows[:, 1:] is a view of rows
    model.eval()
    with torch.no_grad():
        logits, _ = model(rows[:, :-1])
    targets = rows[:, 1:]
    targets[:, :prompt_len - 1] = -1           # marks the prompt in the caller's rows
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           ignore_index=-1).item()


_ROWS_CHANGED = ("sample_loss changed the rows it was given (targets = rows[:, 1:] is a view: "
                 "writing into it writes into rows); .clone() it first, or slice the logits "
                 "and targets instead of marking the prompt")
_NO_GRAD = ("the forward ran with gradients on; score under torch.no_grad() (with "
            "torch.no_grad(): logits, _ = model(rows)), nothing is trained here")
_EVAL = "the model ran in training mode; call model.eval() first: dropout makes the score noisy"
_FLOAT = "return a Python float: call .item() on the loss"

SAMPLE_LOSS = [
    Mistake("no model.eval()", _l_no_eval, expect=_EVAL),
    Mistake("no torch.no_grad()", _l_no_grad_missing, expect=_NO_GRAD),
    Mistake("writes into rows", _l_writes_into_rows, expect=_ROWS_CHANGED),
    Mistake("logits not cut at -1", _l_not_cut,
            hint="logits[:, prompt_len - 1:] has one position more than the targets "
                 "rows[:, prompt_len:]: the last position predicts a token after the row, cut it "
                 "with logits[:, prompt_len - 1:-1]"),
    Mistake("without the prompt", _l_without_prompt,
            hint="ran the model on rows[:, prompt_len - 1:-1] alone, so it never saw the rest of "
                 "the prompt; run it on the whole rows and take logits[:, prompt_len - 1:-1]"),
    Mistake("targets unshifted", _l_targets_unshifted,
            hint="scored logits[:, prompt_len - 1:-1] against the tokens at the same positions; "
                 "each position predicts the next token: the targets are rows[:, prompt_len:]"),
    Mistake("bits", _l_bits,
            hint="divided by log(2) (bits per token); return the mean cross-entropy in nats, as "
                 "F.cross_entropy gives it"),
    Mistake("a tensor, not a float", _l_tensor, expect=_FLOAT),
    Mistake("(B, T, V) into cross_entropy", _l_3d,
            hint="F.cross_entropy wants logits (N, V) and targets (N,): reshape with "
                 "pred.reshape(-1, V) and targets.reshape(-1) (given (B, T, V) it takes dim 1 as "
                 "the classes)"),
    Mistake("(logits, loss) not unpacked", _l_tuple,
            hint="the model returns a pair (logits, loss): unpack it, logits, _ = model(rows)"),
    Mistake("the model's own loss", _l_model_loss,
            hint="model(rows, rows) scores every position against itself (no shift, the prompt "
                 "too); compute F.cross_entropy of logits[:, prompt_len - 1:-1] against "
                 "rows[:, prompt_len:]"),
    Mistake("every token", _l_every_token,
            hint="returned the loss on every token, the prompt's too (as if the prompt were one "
                 "token, like the notebook's); count only the sampled ones, after prompt_len "
                 "tokens (targets rows[:, prompt_len:])"),
    Mistake("unshifted", _l_unshifted,
            hint="logits[:, t] predicts token t + 1, so the logits for the sampled tokens are "
                 "logits[:, prompt_len - 1:-1]"),
    Mistake("perplexity", _l_perplexity,
            hint="returned the perplexity exp(loss); return the mean cross-entropy itself (nats "
                 "per token)"),
    Mistake("sum", _l_sum,
            hint="summed the cross-entropy over the tokens; return the mean (F.cross_entropy's "
                 "default reduction)"),
    Mistake("first sampled token lost", _l_first_sampled_lost,
            hint="left out the first sampled token: it is predicted by the prompt's last "
                 "position, logits[:, prompt_len - 1]"),
]


def _run_loss(impl: Any, case: Case) -> Any:
    """``impl(model, rows, prompt_len)`` with the model in training mode; no forward may run in it."""
    (model, rows, prompt_len), _ = case.fresh()
    rows_before = rows.clone()
    model.train()  # as a model comes out of training: the answer must switch dropout off itself
    modes: list[bool] = []
    grads: list[bool] = []

    def note(module: torch.nn.Module, _args: Any, _out: Any) -> None:  # returns None: output kept
        modes.append(module.training)
        grads.append(torch.is_grad_enabled())

    hook = model.register_forward_hook(note)
    torch.manual_seed(0)
    try:
        out = impl(model, rows, prompt_len)
    finally:
        hook.remove()
    if any(modes):
        raise CheckFailed(_EVAL)
    if any(grads):
        raise CheckFailed(_NO_GRAD)
    if not torch.equal(rows, rows_before):
        raise CheckFailed(f"{_ROWS_CHANGED} (on {case.label})")
    return out


def _read_loss(value: Any, case: Case) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        raise CheckFailed(f"sample_loss returned a tensor of shape {tuple(value.shape)}, not a number: "
                          f"{_FLOAT}")
    return as_float(value, "sample_loss(model, rows, prompt_len)")


@check("sample_loss", mistakes=SAMPLE_LOSS)
def check_sample_loss(loss_fn: Callable[[Any, torch.Tensor, int], Any]) -> None:
    """Exercise 3: the model's mean cross-entropy on the sampled tokens (after the prompt), a float.

    The model (with dropout) is handed over in training mode: the answer must call ``model.eval()``.
    """
    # the package's sample_loss is wrapped by @torch.no_grad(): look under the wrapper
    refuse_reference(inspect.unwrap(loss_fn) if callable(loss_fn) else loss_fn, "loss_fn")
    model = _toy_model()
    g = torch.Generator().manual_seed(3)
    cases = [
        Case("sample_loss(model, rows (3, 15), prompt_len=4)", model,
             torch.randint(0, 13, (3, 15), generator=g), 4),
        Case("sample_loss(model, rows (1, 20) = block_size, prompt_len=1)", model,
             torch.randint(0, 13, (1, 20), generator=g), 1),
        Case("sample_loss(model, rows (4, 9), prompt_len=8: one sampled token)", model,
             torch.randint(0, 13, (4, 9), generator=g), 8),
        Case("sample_loss(model, rows (2, 12), prompt_len=3)", model,
             torch.randint(0, 13, (2, 12), generator=g), 3),
    ]
    compare(loss_fn, sample_loss, cases, name="sample_loss(model, rows, prompt_len)", run=_run_loss,
            mistakes=SAMPLE_LOSS, read=_read_loss, atol=1e-4, rtol=1e-4)
