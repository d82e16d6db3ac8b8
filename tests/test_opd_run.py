"""A real (tiny, CPU) multi-teacher on-policy distillation through ``mixmerge opd``: it trains (the reverse KL to
each domain's teacher falls), logs per-domain reverse KL and response length as TensorBoard scalars in the node's
log directory, resumes from its checkpoint with every attempt in the model card, and refuses a domain without an
expert or an expert with another tokenizer, naming it."""
import json

import pytest
import torch
from safetensors.numpy import load_file

from mixmerge.cli import main as mixmerge
from mixmerge.config_checks import ConfigError
from mixmerge.report.curves import event_scalars
from mixmerge.training.attempts import read_attempts

SPEC = {"architecture": "qwen2", "vocab_size": 400, "hidden_size": 64, "intermediate_size": 128, "num_layers": 2,
        "num_heads": 2, "num_kv_heads": 1, "max_positions": 256, "tokenizer_texts_per_domain": 200}
DOMAINS = ("math", "science")


def settings(loss: str, steps: int, lr: float = 1e-3) -> str:
    return json.dumps({"loss": loss, "epsilon": 0.2, "prompts_per_step": 4, "samples_per_prompt": 2, "steps": steps,
                       "trl": {"max_completion_length": 8, "learning_rate": lr, "logging_steps": 1, "save_steps": 2,
                               "lr_scheduler_type": "constant", "gradient_checkpointing": False, "bf16": False,
                               "use_vllm": False, "disable_tqdm": True}})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny student and two teachers: the student's weights plus a different random perturbation each."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = tmp_path_factory.mktemp("opd")
    for d in DOMAINS:
        mixmerge(["data", "--domain", d, "--train-n", "40", "--eval-n", "4", "--out", str(root / d)])
    mixmerge(["base", "--spec", json.dumps(SPEC), "--domains", *DOMAINS, "--out", str(root / "sft")])
    for i, d in enumerate(DOMAINS):
        model = AutoModelForCausalLM.from_pretrained(root / "sft")
        generator = torch.Generator().manual_seed(i)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn(p.shape, generator=generator))
        model.save_pretrained(root / f"rl-{d}")
        AutoTokenizer.from_pretrained(root / "sft").save_pretrained(root / f"rl-{d}")
    return root


def opd(root, name, loss, steps, teachers=DOMAINS, lr=1e-3):
    mixmerge(["opd", "--node", "opd", "--model", str(root / "sft"),
              "--teachers", *(f"{d}={root / f'rl-{d}'}" for d in teachers),
              "--train", *(f"{d}={root / d / 'train.parquet'}" for d in DOMAINS),
              "--settings", settings(loss, steps, lr), "--threads", "2", "--out", str(root / name),
              "--checkpoints", str(root / f"ckpt-{name}"), "--tensorboard", str(root / f"logs/tensorboard/{name}")])


def scalars(root, name, metric):
    frame = event_scalars(root / f"logs/tensorboard/{name}")
    return {d: frame[frame["tag"] == f"train/opd/{metric}/{d}"].set_index("step")["value"] for d in DOMAINS}


def test_study_loss_trains_logs_and_resumes(tiny):
    opd(tiny, "study", "study", 2)
    first = load_file(str(tiny / "study" / "model.safetensors"))
    opd(tiny, "study", "study", 4)  # the same node asked for 4 steps: resumes from checkpoint-2
    final = load_file(str(tiny / "study" / "model.safetensors"))
    sft = load_file(str(tiny / "sft" / "model.safetensors"))
    assert any(not (first[k] == final[k]).all() for k in final) and any(not (sft[k] == final[k]).all() for k in sft)

    card = json.loads((tiny / "study" / "mixmerge_card.json").read_text())
    assert card["global_step"] == 4 and card["teachers"] == {d: str(tiny / f"rl-{d}") for d in DOMAINS}
    # both attempts ran in this process (one attempt id), so read the attempts log's own records
    records = read_attempts(tiny / "study" / "attempts.jsonl")
    starts = [r["resumed_from"] for r in records if r["event"] == "start"]
    assert starts[0] is None and starts[1].endswith("checkpoint-2") and len(starts) == 2
    assert [r["step"] for r in records if r["event"] == "end"] == [2, 4]
    for metric in ("reverse_kl", "response_length", "advantage"):
        for domain, curve in scalars(tiny, "study", metric).items():
            assert curve.index.tolist() == [1, 2, 3, 4], (metric, domain)
            assert metric == "advantage" or (curve > 0).all()


def test_reverse_kl_to_each_domains_teacher_falls(tiny):
    opd(tiny, "rkl", "full_reverse_kl", 8, lr=3e-3)
    for domain, curve in scalars(tiny, "rkl", "reverse_kl").items():
        assert curve.index.tolist() == list(range(1, 9))
        assert curve.iloc[-2:].mean() < 0.9 * curve.iloc[:2].mean(), (domain, curve.tolist())


def test_a_domain_without_expert_or_another_tokenizer_is_named(tiny):
    with pytest.raises(ConfigError, match="domain 'science' has no expert"):
        opd(tiny, "missing", "study", 1, teachers=("math",))
    from transformers import AutoTokenizer

    other = AutoTokenizer.from_pretrained(tiny / "sft")
    other.add_tokens(["<extra_token>"])
    other.save_pretrained(tiny / "rl-science")
    try:
        with pytest.raises(ConfigError, match=r"expert of domain 'science' \(.*rl-science\).*tokenizer differs"):
            opd(tiny, "other", "study", 1)
    finally:
        AutoTokenizer.from_pretrained(tiny / "sft").save_pretrained(tiny / "rl-science")
