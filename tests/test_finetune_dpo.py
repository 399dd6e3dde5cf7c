"""dpo_loss and sequence_logps: log 2 at the start, the gradient's sign, hand computations, masks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from llmcourse.finetune import dpo_loss, sequence_logps


def test_equal_policy_and_reference_give_log_2():
    lp = torch.tensor([-5.0, -17.0, -2.5])
    loss, c, r = dpo_loss(lp, lp - 1, lp, lp - 1, beta=0.3)
    assert loss.item() == pytest.approx(math.log(2))
    assert torch.equal(c, torch.zeros(3)) and torch.equal(r, torch.zeros(3))


def test_a_hand_computation():
    pc, pr = torch.tensor([-10.0]), torch.tensor([-14.0])
    rc, rr = torch.tensor([-11.0]), torch.tensor([-12.0])
    loss, c, r = dpo_loss(pc, pr, rc, rr, beta=0.5)
    assert c.item() == pytest.approx(0.5) and r.item() == pytest.approx(-1.0)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1.5)))


def test_the_gradient_raises_chosen_and_lowers_rejected():
    pc = torch.tensor([-8.0, -3.0], requires_grad=True)
    pr = torch.tensor([-9.0, -2.0], requires_grad=True)
    ref = torch.tensor([-8.5, -2.5])
    loss, _, _ = dpo_loss(pc, pr, ref, ref, beta=0.1)
    loss.backward()
    assert (pc.grad < 0).all() and (pr.grad > 0).all()   # descent raises chosen, lowers rejected
    assert torch.allclose(pc.grad, -pr.grad)


def test_rewards_are_detached_and_the_reference_gets_no_gradient():
    pc = torch.tensor([-1.0], requires_grad=True)
    rc = torch.tensor([-1.5], requires_grad=True)
    loss, c, _ = dpo_loss(pc, pc.detach() - 2, rc, torch.tensor([-3.0]), beta=0.1)
    loss.backward()
    assert not c.requires_grad and rc.grad is None and pc.grad is not None


def test_bad_inputs_are_refused():
    a = torch.zeros(2)
    with pytest.raises(ValueError, match="beta must be > 0"):
        dpo_loss(a, a, a, a, beta=0)
    with pytest.raises(ValueError, match="share one shape"):
        dpo_loss(a, torch.zeros(3), a, a)


def _hand_logps(logits, ids, start, end):
    logp = F.log_softmax(logits, -1)
    return sum(logp[t - 1, ids[t]].item() for t in range(start, end))


def test_sequence_logps_sums_only_the_response():
    torch.manual_seed(0)
    logits = torch.randn(2, 7, 5)
    ids = torch.randint(0, 5, (2, 7))
    got = sequence_logps(logits, ids, prompt_lens=torch.tensor([3, 2]), lengths=torch.tensor([7, 5]))
    assert got.shape == (2,)
    assert got[0].item() == pytest.approx(_hand_logps(logits[0], ids[0], 3, 7), abs=1e-5)
    assert got[1].item() == pytest.approx(_hand_logps(logits[1], ids[1], 2, 5), abs=1e-5)


def test_sequence_logps_ignores_the_padding_and_the_prompt():
    torch.manual_seed(1)
    logits = torch.randn(1, 6, 4)
    ids = torch.tensor([[1, 2, 3, 0, 0, 0]])
    base = sequence_logps(logits, ids, 2, lengths=4)
    changed = logits.clone()
    changed[0, 4:] += 5.0            # predictions of padding tokens
    ids2 = ids.clone()
    ids2[0, 0] = 3                   # a prompt token that is never a target
    assert torch.allclose(sequence_logps(changed, ids2, 2, lengths=4), base)


def test_sequence_logps_with_a_model_is_differentiable():
    from llmcourse.model import GPT, GPTConfig

    torch.manual_seed(2)
    model = GPT(GPTConfig(vocab_size=11, block_size=16, n_layer=1, n_head=1, n_embd=8))
    ids = torch.randint(0, 11, (3, 9))
    out = sequence_logps(model(ids)[0], ids, 4)
    out.sum().backward()
    assert out.shape == (3,) and (out < 0).all()
    assert model.lm_head.weight.grad is not None


def test_sequence_logps_refuses_an_empty_prompt():
    with pytest.raises(ValueError, match="prompt_lens"):
        sequence_logps(torch.zeros(1, 4, 3), torch.zeros(1, 4, dtype=torch.long), 0)


def test_a_few_dpo_steps_raise_the_margin_and_keep_the_reference():
    import copy

    from llmcourse.model import GPT, GPTConfig

    torch.manual_seed(3)
    ref = GPT(GPTConfig(vocab_size=6, block_size=12, n_layer=1, n_head=1, n_embd=16)).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    ref_state = {k: v.clone() for k, v in ref.state_dict().items()}
    policy = copy.deepcopy(ref)
    for p in policy.parameters():
        p.requires_grad_(True)
    prompts = torch.randint(0, 6, (8, 4), generator=torch.Generator().manual_seed(0))
    chosen = torch.cat([prompts, torch.full((8, 5), 1)], 1)      # responses of token 1 ...
    rejected = torch.cat([prompts, torch.full((8, 5), 2)], 1)    # ... preferred to token 2
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-2, weight_decay=0.0)
    with torch.no_grad():
        rc, rr = sequence_logps(ref(chosen)[0], chosen, 4), sequence_logps(ref(rejected)[0], rejected, 4)
    losses = []
    for _ in range(20):
        loss, c, r = dpo_loss(sequence_logps(policy(chosen)[0], chosen, 4),
                              sequence_logps(policy(rejected)[0], rejected, 4), rc, rr, beta=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(math.log(2), abs=1e-5)
    assert losses[-1] < 0.5 * losses[0] and (c > r).all()
    assert all(torch.equal(v, ref_state[k]) for k, v in ref.state_dict().items())
