"""Multi-teacher on-policy distillation (grid node ``opd``, study §2.4): the SFT student samples responses to the
mixed blend's prompts, and each response is scored token by token by its domain's RL expert
(``MultiTeacherDistillationTrainer``). Where the teachers run is ``opd.teachers.backend``: ``local``, every expert in
the training process; ``vllm_server``, one vLLM server per expert, started by the job's launcher on GPUs of its own
(``mixmerge.compute.teacher_servers``) and asked for the log-probs of the sampled tokens
(``mixmerge.training.teacher_client``)."""
from __future__ import annotations

import time

from mixmerge.config_checks import ConfigError
from mixmerge.training.attempts import AttemptLog
from mixmerge.training.distributed import world_size
from mixmerge.training.grpo import rl_dataset_rows
from mixmerge.training.save_resume import resume_point, save_final, set_threads, train
from mixmerge.training.trainer_args import opd_args


def tokenizer_difference(student, teacher) -> str | None:
    """Why a teacher cannot score the student's tokens (None: it can): the teacher reads the same token ids, so
    the vocabularies (token -> id) and the special tokens must be identical."""
    s_vocab, t_vocab = student.get_vocab(), teacher.get_vocab()
    if s_vocab != t_vocab:
        differing = sorted(set(s_vocab.items()) ^ set(t_vocab.items()), key=str)
        return (f"its vocabulary differs ({len(t_vocab)} tokens against the student's {len(s_vocab)}; "
                f"first difference: {differing[0]!r})")
    for name in ("eos_token", "pad_token", "bos_token"):
        if getattr(student, name, None) != getattr(teacher, name, None):
            return f"its {name} is {getattr(teacher, name, None)!r}, the student's {getattr(student, name, None)!r}"
    return None


def check_teachers(domains: list[str], teachers: dict[str, str], student_tokenizer, load_tokenizer) -> None:
    """Every domain of the data has an expert, and every expert's tokenizer is the student's; a ConfigError names
    the domain or the expert otherwise."""
    missing = [d for d in domains if d not in teachers]
    if missing:
        raise ConfigError(f"config key 'domains': domain {missing[0]!r} has no expert to distil from "
                          f"(experts given: {sorted(teachers) or 'none'})")
    for domain in domains:
        why = tokenizer_difference(student_tokenizer, load_tokenizer(teachers[domain]))
        if why:
            raise ConfigError(f"expert of domain {domain!r} ({teachers[domain]}): its tokenizer differs from the "
                              f"student's: {why}")


def load_teachers(cfg: dict, teachers: dict[str, str], domains: list[str], dtype: str) -> dict:
    """domain -> the expert model (backend local) or a client of its server (backend vllm_server)."""
    if (cfg.get("teachers") or {}).get("backend", "local") == "vllm_server":
        from mixmerge.training.teacher_client import connect

        return connect(domains)
    from transformers import AutoModelForCausalLM

    return {d: AutoModelForCausalLM.from_pretrained(teachers[d], dtype=dtype) for d in domains}


def train_opd(node: str, model_dir: str, teachers: dict[str, str], train_files: dict[str, str], cfg: dict,
              seed: int, threads: int, out_dir: str, checkpoint_dir: str, tensorboard_dir: str | None = None) -> None:
    """Distil the experts ``teachers`` (domain -> model) into the student at ``model_dir`` on the blend of
    ``train_files``; logs, attempts and the model card as GRPO (``mixmerge.training.grpo``)."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mixmerge.training.opd_trainer import MultiTeacherDistillationTrainer

    set_threads(threads)
    started = time.time()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    domains = sorted(train_files)
    check_teachers(domains, teachers, tokenizer, AutoTokenizer.from_pretrained)
    resume = resume_point(checkpoint_dir)
    attempts = AttemptLog(checkpoint_dir, node).start(resume)
    dtype = "bfloat16" if cfg["trl"].get("bf16") else "float32"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    experts = load_teachers(cfg, teachers, domains, dtype)
    trainer = MultiTeacherDistillationTrainer(
        model=model, teachers=experts,
        args=opd_args(cfg, seed=seed, checkpoint_dir=checkpoint_dir, world=world_size(),
                      tensorboard_dir=tensorboard_dir),
        train_dataset=Dataset.from_list(rl_dataset_rows(train_files, seed)), processing_class=tokenizer,
        callbacks=[attempts.callback()], loss_mode=cfg["loss"], epsilon=cfg["epsilon"],
        samples_per_prompt=cfg["samples_per_prompt"])
    attempts.mark("load")
    train(trainer, resume, checkpoint_dir)
    attempts.mark("train")
    save_final(trainer, tokenizer, out_dir, {"node": node, "parents": [model_dir, *(teachers[d] for d in domains)],
                                             "teachers": {d: teachers[d] for d in domains}, "domains": domains,
                                             "config": cfg, "steps": cfg["steps"], "seed": seed}, started, attempts)
