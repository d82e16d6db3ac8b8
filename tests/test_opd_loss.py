"""MT-OPD's losses (mixmerge.training.opd_loss): the study loss equals the PPO-clip surrogate computed by hand
with advantage log π_T − log π_S, each row is scored by its own domain's teacher, and full_reverse_kl is the
reverse KL(π_S ‖ π_T) over the vocabulary."""
import math

import pytest
import torch

from mixmerge.training.opd_loss import full_reverse_kl, head_token_logps, route_rows, study_loss, token_logps


def test_two_token_toy_equals_hand_computed_ppo_clip():
    # one response of two tokens over a two-token vocabulary
    logits = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0]]], requires_grad=True)   # π_S: (.5,.5), (.75,.25)
    tokens = torch.tensor([[0, 1]])
    old = torch.log(torch.tensor([[0.4, 0.25]]))          # the sampling policy's log-probs of the tokens
    teacher = torch.log(torch.tensor([[0.8, 0.125]]))      # the teacher's log-probs of the same tokens
    mask = torch.ones(1, 2)
    loss, advantage = study_loss(token_logps(logits, tokens), old, teacher, mask, epsilon=0.2)

    # by hand: A = log π_T − log π_old; r = π_S / π_old; surrogate = min(r A, clip(r, .8, 1.2) A); loss = −mean
    a0, a1 = math.log(0.8 / 0.4), math.log(0.125 / 0.25)
    r0, r1 = 0.5 / 0.4, 0.25 / 0.25
    s0 = min(r0 * a0, min(max(r0, 0.8), 1.2) * a0)         # 1.25 clipped to 1.2
    s1 = min(r1 * a1, min(max(r1, 0.8), 1.2) * a1)
    assert advantage.tolist()[0] == pytest.approx([a0, a1])
    assert loss.item() == pytest.approx(-(s0 + s1) / 2, abs=1e-6)
    assert loss.item() == pytest.approx(-0.1 * math.log(2), abs=1e-6)

    loss.backward()
    # the clipped token has no gradient; the other one: −½ A r (onehot(y) − π_S)
    assert logits.grad[0, 0].tolist() == pytest.approx([0.0, 0.0], abs=1e-7)
    assert logits.grad[0, 1].tolist() == pytest.approx([-0.5 * a1 * -0.75, -0.5 * a1 * 0.75], abs=1e-6)


def test_on_policy_loss_is_the_mean_advantage_and_sample_mean_aggregation():
    logps = torch.log(torch.tensor([[0.5, 0.25, 0.9], [0.2, 0.6, 0.6]]))
    teacher = torch.log(torch.tensor([[0.25, 0.5, 0.3], [0.4, 0.6, 0.1]]))
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    loss, advantage = study_loss(logps, logps, teacher, mask)
    per_sample = [(advantage[0, :2].sum() / 2).item(), (advantage[1].sum() / 3).item()]
    assert loss.item() == pytest.approx(-sum(per_sample) / 2)
    # under gradient accumulation the denominator is the whole step's samples
    loss8, _ = study_loss(logps, logps, teacher, mask, num_samples=8)
    assert loss8.item() == pytest.approx(-sum(per_sample) / 8)


def test_each_row_is_scored_by_its_own_domains_teacher():
    vocab, length = 6, 5
    teacher_logits = torch.full((4, vocab), -1e4)
    for d in range(4):
        teacher_logits[d, d] = 0.0                          # teacher d puts all its mass on token d
    domain = torch.tensor([2, 0, 3, 1, 1, 3, 0, 2])
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 4, (len(domain), length), generator=generator)
    tokens[:, 0] = domain                                   # every row has its own domain's token at least once
    student = token_logps(torch.randn(len(domain), length, vocab, generator=generator), tokens)
    calls = []

    def teacher_logps(teacher, rows):
        calls.append((teacher, rows.tolist()))
        return token_logps(teacher_logits[teacher].expand(len(rows), length, vocab), tokens[rows])

    routed = route_rows(domain, teacher_logps)
    _, advantage = study_loss(student, student, routed, torch.ones_like(tokens))
    assert sorted(t for t, _ in calls) == [0, 1, 2, 3]
    assert all(domain[rows].eq(t).all() for t, rows in calls), "a teacher saw another domain's rows"
    hit = tokens == domain.unsqueeze(1)
    assert torch.allclose(advantage[hit], -student[hit])                       # log π_T = 0 on its own token
    assert (advantage[~hit] < -9000).all()                                      # every other token: ~ −1e4
    for d in range(4):
        own = token_logps(teacher_logits[d].expand(len(domain), length, vocab), tokens) - student
        assert torch.equal(advantage[domain == d], own[domain == d])


def test_full_reverse_kl_is_trl_beta_one_divergence():
    torch.manual_seed(0)
    hidden, vocab = 8, 7
    student_head, teacher_head = torch.nn.Linear(hidden, vocab), torch.nn.Linear(hidden, vocab)
    hs, ht = torch.randn(2, 3, hidden), torch.randn(2, 3, hidden)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    kl, _, n = full_reverse_kl(hs, ht, student_head, teacher_head, mask)
    log_s = torch.log_softmax(student_head(hs), -1)
    log_t = torch.log_softmax(teacher_head(ht), -1)
    by_hand = (log_s.exp() * (log_s - log_t)).sum(-1)[mask.bool()].mean()
    assert int(n) == 4 and kl.item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_chunked_head_logps_equal_the_full_logits_and_their_gradient():
    torch.manual_seed(1)
    head = torch.nn.Linear(8, 11)
    hidden = torch.randn(2, 3, 8, requires_grad=True)
    tokens = torch.randint(0, 11, (2, 3))
    chunked = head_token_logps(hidden, head, tokens, temperature=0.7, chunk_size=4)
    full = token_logps(head(hidden), tokens, temperature=0.7)
    assert torch.allclose(chunked, full, atol=1e-5)
    (grad_chunked,) = torch.autograd.grad(chunked.sum(), hidden)
    (grad_full,) = torch.autograd.grad(full.sum(), hidden)
    assert torch.allclose(grad_chunked, grad_full, atol=1e-5)
