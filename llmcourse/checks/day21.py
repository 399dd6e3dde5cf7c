"""Checks for day 21, "Temperature".

Each ``check_*`` function compares the learner's code with a reference on a small seeded battery
of inputs (batched and 1-D, float32 and float64, temperatures below, at and above 1, rows with
zero probabilities, temperature 0 for sampling), prints one line - a pass, the hint of a typical
mistake from the exercise's table, or "not done yet" - and never raises. The references are
``logits / temperature``, :func:`reference_entropy` and :func:`reference_sample`.

``sample`` draws at random, so its check compares what can be compared: the ids at
temperature 0 (the argmax, with no number drawn from the generator), the shape and dtype, that
the same generator seed gives the same ids and another seed other ids, and the frequencies of
10000 draws from each distribution against the reference's (within 0.02).

Example::

    >>> import torch
    >>> from llmcourse.checks import day21
    >>> ok = day21.check_apply_temperature(lambda logits, t: logits / t)
    ✅ apply_temperature: passed
    >>> round(float(day21.reference_entropy(torch.tensor([0.5, 0.5, 0.0]))), 4)   # ln 2
    0.6931
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import Tensor

from llmcourse.checks._core import Case, Mistake, as_tensor, assert_dtype, check, compare

__all__ = ["check_apply_temperature", "check_entropy", "check_sample", "reference_entropy",
           "reference_sample", "APPLY_TEMPERATURE", "ENTROPY", "SAMPLE"]


def reference_entropy(probs: Tensor) -> Tensor:
    """Entropy in nats of each distribution along the last dimension (``0 log 0 = 0``)."""
    return -torch.special.xlogy(probs, probs).sum(dim=-1)


def reference_sample(logits: Tensor, temperature: float,
                     generator: torch.Generator | None = None) -> Tensor:
    """``(B,)`` ids: one draw per row from ``softmax(logits / temperature)``; 0 is the argmax."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def _reference_temperature(logits: Tensor, temperature: float) -> Tensor:
    return logits / temperature


# ---- exercise 1: apply_temperature ---------------------------------------------------------------


def _scaled(value: Any, case: Case) -> dict[str, Any]:
    """What the logits mean (their log-softmax: a shift of a row changes nothing), their dtype."""
    logits = case.args[0]
    out = as_tensor(value, "apply_temperature(...)", shape=tuple(logits.shape)).detach()
    if not out.is_floating_point():
        return {"scaled logits, up to a shift per row": out}
    return {"scaled logits, up to a shift per row": torch.log_softmax(out, dim=-1)}


def _run_temperature(impl: Any, case: Case) -> dict[str, Any]:
    """The result, and whether the logits handed in are still the model's afterwards."""
    (logits, t), _ = case.fresh()
    before = logits.clone()
    out = impl(logits, t)
    return {"result": out, "input left unchanged": bool(torch.equal(logits, before))}


def _read_temperature(obs: dict[str, Any], case: Case) -> dict[str, Any]:
    return {**_scaled(obs["result"], case), "input left unchanged": obs["input left unchanged"]}


def _t_times(logits, t):
    return logits * t


def _t_probs(logits, t):
    return torch.softmax(logits / t, dim=-1)


def _t_softmax_first(logits, t):
    return torch.softmax(logits, dim=-1) / t


def _t_unchanged(logits, t):
    return logits.clone()


def _t_in_place(logits, t):
    return logits.div_(t)


def _t_fixed(logits, temperature):  # the notebook's last t of its loop, not the argument
    return logits / 2.0


def _t_floor(logits, t):  # // rounds every scaled logit down
    return logits // t


APPLY_TEMPERATURE = [
    Mistake("logits * T", _t_times,
            hint="multiplied the logits by the temperature; divide them: logits / temperature "
                 "(T < 1 sharpens, T > 1 flattens)"),
    Mistake("probabilities", _t_probs,
            hint="returned probabilities (each row sums to 1); return the scaled logits, "
                 "logits / temperature - the softmax comes after"),
    Mistake("softmax before scaling", _t_softmax_first,
            hint="scaled the probabilities (softmax before scaling); scale the logits: "
                 "logits / temperature, then the softmax"),
    Mistake("unchanged", _t_unchanged,
            hint="left the logits unchanged (adding or subtracting a number shifts every logit "
                 "alike, which the softmax ignores); divide them by the temperature"),
    Mistake("in place", _t_in_place,
            hint="changed its input in place (logits.div_ or /=); return a new tensor, "
                 "logits / temperature: the caller still needs the model's logits"),
    Mistake("// temperature", _t_floor,
            hint="// rounds every scaled logit down to a whole number; divide with /, "
                 "logits / temperature"),
    Mistake("fixed T", _t_fixed,
            hint="divided by a fixed number, not by the temperature argument (a notebook "
                 "variable?); use the function's temperature"),
]


def _temperature_cases() -> list[Case]:
    g = torch.Generator().manual_seed(21)
    logits = torch.randn(3, 2, 7, generator=g) * 2.0
    return [
        Case("apply_temperature(logits (3, 2, 7), 0.6)", logits, 0.6),
        Case("apply_temperature(logits (3, 2, 7), 2.5)", logits, 2.5),
        Case("apply_temperature(logits (9,), 1.0)", torch.randn(9, generator=g), 1.0),
        Case("apply_temperature(logits (4, 50) float64, 0.05: close to greedy)",
             torch.randn(4, 50, generator=g, dtype=torch.float64), 0.05),
        Case("apply_temperature(logits (2, 65), 2.0)", torch.randn(2, 65, generator=g), 2.0),
    ]


@check("apply_temperature", mistakes=APPLY_TEMPERATURE)
def check_apply_temperature(apply_temperature: Callable[[Tensor, float], Tensor]) -> None:
    """Exercise 1: ``logits / T`` as a new tensor, any leading dimensions, T below and above 1."""
    compare(apply_temperature, _reference_temperature, _temperature_cases(),
            name="apply_temperature(logits, T)", run=_run_temperature, read=_read_temperature,
            mistakes=APPLY_TEMPERATURE, atol=1e-4)


# ---- exercise 2: entropy -------------------------------------------------------------------------


def _h_nan(p):
    return -(p * p.log()).sum(-1)


def _h_negative(p):
    return torch.special.xlogy(p, p).sum(-1)


def _h_bits(p):
    return -(torch.special.xlogy(p, p) / math.log(2)).sum(-1)


def _h_mean(p):
    return -torch.special.xlogy(p, p).mean(-1)


def _h_one_number(p):
    return -torch.special.xlogy(p, p).sum()


def _h_dim0(p):
    return -torch.special.xlogy(p, p).sum(0)


def _h_no_minus_log(p):  # -sum log p, the p in front forgotten
    return -torch.log(p.clamp_min(1e-12)).sum(-1)


def _h_float32(p):
    return -torch.special.xlogy(p, p).sum(-1).float()


def _h_exp(p):  # exp(H), the effective number of choices, instead of H
    return torch.exp(-torch.special.xlogy(p, p).sum(-1))


def _h_softmax_first(p):  # treats the probabilities as logits
    q = torch.softmax(p, dim=-1)
    return -torch.special.xlogy(q, q).sum(-1)


def _h_clamps_in_place(p):  # clamp_ writes into the caller's probabilities
    p.clamp_(min=1e-12)
    return -(p * p.log()).sum(-1)


def _h_log_softmax(p):  # log_softmax treats the probabilities as logits
    return -(p * torch.log_softmax(p, dim=-1)).sum(-1)


def _h_dim1(p):  # dim=1: the last dimension only for 2-D probabilities
    return -torch.special.xlogy(p, p).sum(dim=1)


def _h_nan_to_num_after_sum(p):  # the nan of 0 log 0 replaced only after the sum
    return (-(p * p.log()).sum(-1)).nan_to_num(0.0)


def _h_log10(p):
    return -(p * torch.log10(p.clamp_min(1e-30))).sum(-1)


ENTROPY = [
    Mistake("nan at 0", _h_nan,
            hint="gave nan where a probability is 0 (0 * log 0 = 0 * -inf); use "
                 "torch.special.xlogy(p, p), or drop the zeros with torch.where"),
    Mistake("negative", _h_negative,
            hint="the entropy is negative: H = -sum p log p (the minus sign); log p <= 0, so the "
                 "entropy is >= 0"),
    Mistake("bits", _h_bits,
            hint="the entropy is in bits (log2); this lesson uses nats, torch.log (the natural "
                 "log, as the cross-entropy loss does)"),
    Mistake("mean", _h_mean,
            hint="the entropy is averaged over the vocabulary; sum -p log p over it "
                 "(.sum(dim=-1)), do not take the mean"),
    Mistake("one number", _h_one_number,
            hint="returned one number for the whole batch; sum over the last dimension only "
                 "(dim=-1): one entropy per distribution"),
    Mistake("dim 0", _h_dim0,
            hint="summed over the first dimension; sum over the last one (dim=-1), where each "
                 "distribution's probabilities are"),
    Mistake("no p in front", _h_no_minus_log,
            hint="summed -log p without weighting by p; H = -sum p * log p"),
    Mistake("exp(H)", _h_exp,
            hint="returned exp(H), the effective number of choices; return the entropy itself, "
                 "H = -sum p log p"),
    Mistake("softmax of the probabilities", _h_softmax_first,
            hint="applied a softmax to the probabilities; probs already sum to 1: compute "
                 "-sum p log p on them as given"),
    Mistake("log_softmax of the probabilities", _h_log_softmax,
            hint="log_softmax treats the probabilities as logits; take the log of the "
                 "probabilities themselves: -sum p * log p (torch.special.xlogy(p, p))"),
    Mistake("dim=1", _h_dim1,
            hint="summed over dim 1, which is the last one only for 2-D probabilities; sum over "
                 "dim=-1, whatever the number of leading dimensions"),
    Mistake("log10", _h_log10,
            hint="used log10; the entropy in nats uses the natural log, torch.log"),
    Mistake("nan_to_num after the sum", _h_nan_to_num_after_sum,
            hint="a row with a zero probability came out as 0: its nan was replaced after the sum, "
                 "which loses the whole row; make 0 log 0 = 0 before summing, "
                 "torch.special.xlogy(p, p)"),
    Mistake("float32", _h_float32, expect="dtype float32, expected float64"),
    Mistake("changes probs in place", _h_clamps_in_place, hint="your entropy changed the caller's "
            "probabilities (an in-place op such as clamp_ or +=): compute on a new tensor, e.g. "
            "torch.special.xlogy(p, p), and leave probs as it was"),
]


def _entropy_cases() -> list[Case]:
    g = torch.Generator().manual_seed(5)
    probs = torch.softmax(torch.randn(2, 3, 5, generator=g) * 1.5, dim=-1)
    probs[0, 1] = torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0])  # certain: entropy 0
    probs[1, 2] = torch.tensor([0.5, 0.0, 0.25, 0.25, 0.0])  # zeros: 0 log 0 counts as 0
    return [
        Case("entropy(probs (4, 6), no zeros)",
             torch.softmax(torch.randn(4, 6, generator=g), dim=-1)),
        Case("entropy(probs (2, 3, 5), rows with zeros and a certain row)", probs),
        Case("entropy(probs (7,), uniform: log 7)", torch.full((7,), 1 / 7)),
        Case("entropy(probs (3, 65) float64)",
             torch.softmax(torch.randn(3, 65, generator=g, dtype=torch.float64) * 3, dim=-1)),
    ]


def _run_entropy(impl: Any, case: Case) -> dict[str, Any]:
    (probs,), _ = case.fresh()
    before = probs.clone()
    out = impl(probs)
    return {"entropy": out, "probs left unchanged": bool(torch.equal(probs, before))}


def _read_entropy(obs: dict[str, Any], case: Case) -> dict[str, Any]:
    return {"entropy": _entropies(obs["entropy"], case),
            "probs left unchanged": obs["probs left unchanged"]}


def _entropies(value: Any, case: Case) -> Tensor:
    return as_tensor(value, "entropy(probs)").detach()


@check("entropy", mistakes=ENTROPY)
def check_entropy(entropy: Callable[[Tensor], Tensor]) -> None:
    """Exercise 2: entropy in nats along the last dimension, 0 log 0 = 0, any leading dims."""
    compare(entropy, reference_entropy, _entropy_cases(), name="entropy(probs)",
            run=_run_entropy, read=_read_entropy, mistakes=ENTROPY, atol=1e-5)


# ---- exercise 3: sample --------------------------------------------------------------------------

_DRAWS = 10000  # rows per distribution in the frequency cases


def _run_sample(impl: Any, case: Case) -> dict[str, Any]:
    """Ids, their shape and dtype; at T > 0 also the frequencies and reproducibility.

    Run under a fixed global seed (the caller's global RNG is restored afterwards), so that an
    answer drawing from the global RNG matches its mistake of the table draw for draw.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return _observe_sample(impl, case)


def _observe_sample(impl: Any, case: Case) -> dict[str, Any]:
    (logits, t), _ = case.fresh()
    before = logits.clone()
    gen = torch.Generator().manual_seed(1)
    state = gen.get_state()
    ids = as_tensor(impl(logits, t, gen), "sample(...)")
    assert_dtype(ids, torch.int64, "sample(...)", "return token ids, as logits.argmax(dim=-1) and "
                 "torch.multinomial give them (not logits, probabilities or a converted dtype)")
    obs: dict[str, Any] = {"shape": tuple(ids.shape), "dtype": str(ids.dtype).replace("torch.", ""),
                           "logits left unchanged": bool(torch.equal(logits, before))}
    if t == 0:  # greedy: the argmax, and the generator left as it was (no number drawn)
        obs["generator untouched at temperature 0"] = bool(torch.equal(gen.get_state(), state))
    if t == 0 or ids.shape != logits.shape[:1] or ids.is_floating_point():
        obs["ids"] = ids
        return obs
    again = impl(logits.clone(), t, torch.Generator().manual_seed(1))
    obs["the same seed gives the same ids"] = isinstance(again, torch.Tensor) and \
        bool(torch.equal(again, ids))
    other = impl(logits.clone(), t, torch.Generator().manual_seed(2))
    obs["another seed gives other ids"] = not (isinstance(other, torch.Tensor)
                                               and bool(torch.equal(other, ids)))
    n = int(case.kwargs.get("rows", 1))
    V = logits.shape[-1]
    freq = torch.stack([torch.bincount(ids[i::n].clamp(0, V - 1), minlength=V).double()
                        / (ids.numel() // n) for i in range(n)])
    obs["frequency of each id (per distribution)"] = freq
    return obs


def _s_times(logits, t, generator=None):
    if t == 0:
        return logits.argmax(-1)
    return torch.multinomial(torch.softmax(logits * t, -1), 1, generator=generator)[:, 0]


def _s_no_temperature(logits, t, generator=None):
    if t == 0:
        return logits.argmax(-1)
    return torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)[:, 0]


def _s_divides_by_zero(logits, t, generator=None):
    return torch.multinomial(torch.softmax(logits / t, -1), 1, generator=generator)[:, 0]


def _s_raw_logits(logits, t, generator=None):
    if t == 0:
        return logits.argmax(-1)
    return torch.multinomial(logits / t, 1, generator=generator)[:, 0]


def _s_always_argmax(logits, t, generator=None):
    return logits.argmax(-1)


def _s_keepdim(logits, t, generator=None):
    if t == 0:
        return logits.argmax(-1, keepdim=True)
    return torch.multinomial(torch.softmax(logits / t, -1), 1, generator=generator)


def _s_no_generator(logits, t, generator=None):
    if t == 0:
        return logits.argmax(-1)
    return torch.multinomial(torch.softmax(logits / t, -1), 1)[:, 0]


def _s_dim0(logits, t, generator=None):
    if t == 0:
        return logits.argmax(-1)
    return torch.multinomial(torch.softmax(logits / t, 0).T.contiguous().T, 1,
                             generator=generator)[:, 0]


def _s_argmax_dim0(logits, t, generator=None):
    if t == 0:
        return logits.argmax(0)
    return torch.multinomial(torch.softmax(logits / t, -1), 1, generator=generator)[:, 0]


def _s_squeeze(logits, t, generator=None):  # .squeeze() drops the batch too when B == 1
    if t == 0:
        return logits.argmax(-1)
    return torch.multinomial(torch.softmax(logits / t, -1), 1, generator=generator).squeeze()


def _s_divides_in_place(logits, t, generator=None):
    if t == 0:
        return logits.argmax(-1)
    logits /= t
    return torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)[:, 0]


def _s_global_seed(logits, t, generator=None):  # "reproducible" by seeding torch itself
    if t == 0:
        return logits.argmax(-1)
    torch.manual_seed(0)
    return torch.multinomial(torch.softmax(logits / t, -1), 1)[:, 0]


def _s_draws_at_zero(logits, t, generator=None):  # T = 0 sampled at T = 1
    probs = torch.softmax(logits / (t if t > 0 else 1.0), -1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def _s_tiny_temperature(logits, t, generator=None):  # T = 0 as a tiny T: a draw that is the argmax
    probs = torch.softmax(logits / max(t, 1e-6), -1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def _s_last_position(logits, t, generator=None):  # logits[:, -1] as for (B, T, V) logits
    logits = logits[:, -1]
    if t == 0:
        return logits.argmax(-1)
    return torch.multinomial(torch.softmax(logits / t, -1), 1, generator=generator)


def _s_int32(logits, t, generator=None):
    if t == 0:
        return logits.argmax(-1).int()
    return torch.multinomial(torch.softmax(logits / t, -1), 1, generator=generator)[:, 0].int()


def _s_max_values(logits, t, generator=None):  # the largest logit, not its position
    if t == 0:
        return logits.max(dim=-1).values
    return torch.multinomial(torch.softmax(logits / t, -1), 1, generator=generator)[:, 0]


def _s_as_list(logits, t, generator=None):
    if t == 0:
        return logits.argmax(-1).tolist()
    return torch.multinomial(torch.softmax(logits / t, -1), 1, generator=generator)[:, 0].tolist()


def _s_generator_positional(logits, t, generator=None):  # multinomial(probs, 1, generator)
    if t == 0:
        return logits.argmax(-1)
    return torch.multinomial(torch.softmax(logits / t, -1), 1, generator)[:, 0]


def _s_flat_argmax(logits, t, generator=None):  # argmax() without dim: one id for the batch
    if t == 0:
        return logits.argmax()
    return torch.multinomial(torch.softmax(logits / t, -1), 1, generator=generator)[:, 0]


SAMPLE = [
    Mistake("squeeze() drops the batch", _s_squeeze, hint="with one row, .squeeze() also drops the "
            "batch dimension (shape ()); take [:, 0] (or .squeeze(-1)) so the result is (B,)"),
    Mistake("divides the logits in place", _s_divides_in_place, hint="logits /= T changed the "
            "caller's logits: compute logits / T into a new tensor and leave the input as it was"),
    Mistake("divides by zero", _s_divides_by_zero,
            hint="temperature 0 must give the argmax: handle temperature == 0 first with "
                 "logits.argmax(dim=-1) (dividing by 0 gives inf and nan)"),
    Mistake("argmax without dim", _s_flat_argmax,
            hint="logits.argmax() without a dim gives one index into the flattened batch; take "
                 "the argmax of each row, logits.argmax(dim=-1), shape (B,)"),
    Mistake("argmax along dim 0", _s_argmax_dim0,
            hint="at temperature 0 take the argmax of each row: logits.argmax(dim=-1)"),
    Mistake("keepdim", _s_keepdim,
            hint="returned shape (B, 1); return one id per row, shape (B,): take [:, 0] of "
                 "torch.multinomial's result"),
    Mistake("logits * T", _s_times,
            hint="the samples follow softmax(logits * T): divide by the temperature, "
                 "softmax(logits / T)"),
    Mistake("no temperature", _s_no_temperature,
            hint="the samples follow softmax(logits), the temperature has no effect; sample "
                 "from softmax(logits / temperature)"),
    Mistake("raw logits", _s_raw_logits,
            hint="torch.multinomial needs probabilities: take softmax(logits / T) first"),
    Mistake("always argmax", _s_always_argmax,
            hint="at a temperature > 0 every row gave its most likely token: that is greedy "
                 "decoding; draw with torch.multinomial(probs, 1, generator=generator)"),
    Mistake("generator ignored", _s_no_generator,
            hint="the same generator seed gave other ids: pass generator=generator to "
                 "torch.multinomial, so that a seed reproduces the draw"),
    Mistake("softmax over dim 0", _s_dim0,
            hint="took the softmax over the first dimension (the batch); each row is a "
                 "distribution: torch.softmax(logits / T, dim=-1)"),
    Mistake("seeds torch globally", _s_global_seed,
            hint="another generator seed gave the same ids: the draw ignores generator (a "
                 "torch.manual_seed inside?); pass generator=generator to torch.multinomial "
                 "and leave the global seed alone"),
    Mistake("draws at temperature 0", _s_draws_at_zero,
            hint="temperature 0 drew at random; it means greedy: return logits.argmax(dim=-1) "
                 "for every row, without a draw"),
    Mistake("tiny temperature for 0", _s_tiny_temperature,
            hint="at temperature 0 your sample drew a random number from the generator (a tiny "
                 "temperature such as max(T, 1e-6), or a draw before the argmax?); greedy means no "
                 "draw: if temperature == 0, return logits.argmax(dim=-1) at once"),
    Mistake("last position taken again", _s_last_position,
            hint="logits[:, -1] keeps only the last vocabulary entry of each row: these logits "
                 "are already the last position's, (B, V), one row per sequence; use them as "
                 "they are"),
    Mistake("int32 ids", _s_int32, expect="should have dtype int64, got int32"),
    Mistake("max values", _s_max_values, expect="should have dtype int64, got float32"),
    Mistake("a list", _s_as_list, expect="should be a torch tensor, got a list"),
    Mistake("generator passed by position", _s_generator_positional,
            hint="pass the generator by name, torch.multinomial(probs, 1, generator=generator): "
                 "the third positional argument of multinomial is replacement"),
]


def _sample_cases() -> list[Case]:
    g = torch.Generator().manual_seed(7)
    base = torch.tensor([[1.5, 0.0, -1.0, 0.5, 2.0, -2.0],
                         [0.0, 0.2, 3.0, -0.5, 1.0, 0.3]])  # 2 distributions over 6 tokens
    wide = torch.randn(3, 9, generator=g)
    return [
        Case("sample(logits (2, 6), temperature=0, generator)", base, 0.0),
        Case("sample(logits (5, 40), temperature=0, generator)",
             torch.randn(5, 40, generator=g) * 2, 0.0),
        Case(f"sample(logits ({2 * _DRAWS}, 6): 2 distributions repeated, temperature=0.7, "
             "generator)", base.repeat(_DRAWS, 1), 0.7, rows=2),
        Case(f"sample(logits ({3 * _DRAWS}, 9): 3 distributions repeated, temperature=1.6, "
             "generator)", wide.repeat(_DRAWS, 1), 1.6, rows=3),
        Case("sample(logits (1, 6) with one token far ahead, temperature=1.0, generator): one row",
             torch.tensor([[0.0, 1.0, 30.0, -1.0, 0.5, 0.0]]), 1.0),
    ]


@check("sample", mistakes=SAMPLE)
def check_sample(sample: Callable[..., Any]) -> None:
    """Exercise 3: one draw per row from softmax(logits / T), the argmax for T = 0, (B,) int64."""
    compare(sample, reference_sample, _sample_cases(), name="sample(logits, T, generator)",
            run=_run_sample, mistakes=SAMPLE, atol=0.02, rtol=0.0)
