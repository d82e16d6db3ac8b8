"""``MultiTeacherDistillationTrainer``: TRL's ``DistillationTrainer`` (on-policy: the student samples, the teacher
scores the sampled tokens) extended to one teacher per domain, the study's MT-OPD (§2.4).

What changes against TRL, and only that:
- teachers: a dict domain -> model, all in this process (on CPU, or sharded by the job's accelerate/ZeRO config on
  GPUs), or domain -> server client (``mixmerge.training.teacher_client``: the teacher answers the log-probs of the
  sampled tokens, so only the ``study`` loss); each row's ``domain`` picks its teacher (``teacher_index`` is added
  to the generation batch);
- sampling: ``samples_per_prompt`` responses per prompt (TRL's trainer samples one);
- loss: ``study`` (PPO-clip with the per-token advantage log π_T − log π_S) or ``full_reverse_kl`` (TRL's own
  generalised JSD at beta=1), both per teacher group (``mixmerge.training.opd_loss``);
- logs: per domain, the reverse KL to the routed teacher (the full-vocabulary KL(π_S ‖ π_T) per response token,
  through TRL's chunked divergence; local teachers only) and the response length, as ``opd/<metric>/<domain>``
  scalars.
Generation, batching, checkpointing and resume are TRL's/transformers' own.
"""
from __future__ import annotations

import torch
from trl import DistillationTrainer
from trl.trainer.utils import RepeatSampler

from mixmerge.training.opd_loss import LOSS_MODES, full_reverse_kl, head_token_logps, route_rows, rows_by_teacher, \
    study_loss

STATS = ("kl_sum", "tokens", "rows", "advantage_sum")


class MultiTeacherDistillationTrainer(DistillationTrainer):
    _name = "MultiTeacherDistillation"

    def __init__(self, model, teachers: dict, args, *, loss_mode: str = "study", epsilon: float = 0.2,
                 samples_per_prompt: int = 1, **kwargs):
        if loss_mode not in LOSS_MODES:
            raise ValueError(f"config key 'opd.loss': {loss_mode!r} is not one of {list(LOSS_MODES)}")
        self.loss_mode, self.epsilon, self.samples_per_prompt = loss_mode, epsilon, samples_per_prompt
        self.domains = sorted(teachers)
        self.teacher_of = {d: i for i, d in enumerate(self.domains)}
        served = [hasattr(teachers[d], "completion_logps") for d in self.domains]
        self.served = all(served)
        if any(served) and not self.served:
            raise ValueError("teachers: either every one a local model or every one a server")
        if self.served and loss_mode != "study":
            raise ValueError(f"config key 'opd.loss': {loss_mode!r} needs the teachers' whole next-token "
                             "distributions; teacher servers answer the log-probs of the sampled tokens (use study)")
        super().__init__(model=model, teacher_model=None, args=args, **kwargs)
        self.teachers = [teachers[d] if self.served else self._prepare_teacher(teachers[d], d) for d in self.domains]
        self._domain_stats = torch.zeros(len(self.domains), len(STATS), dtype=torch.float64)

    def _prepare_teacher(self, teacher, domain: str):
        student_vocab = self.model.config.get_text_config().vocab_size
        teacher_vocab = teacher.config.get_text_config().vocab_size
        if student_vocab != teacher_vocab:
            raise ValueError(f"teacher of domain {domain!r}: vocab_size {teacher_vocab} differs from the student's "
                             f"{student_vocab}")
        teacher.eval().requires_grad_(False)
        if self.is_deepspeed_enabled:
            from trl.models import prepare_deepspeed

            return prepare_deepspeed(teacher, self.accelerator)
        return self.accelerator.prepare_model(teacher, evaluation_mode=True)

    def _get_train_sampler(self, dataset=None):
        """TRL's sampler with each prompt repeated ``samples_per_prompt`` times inside one generation batch."""
        dataset = self.train_dataset if dataset is None else dataset
        completions = (self.args.per_device_train_batch_size * self.accelerator.num_processes
                       * self.args.gradient_accumulation_steps)
        return RepeatSampler(data_source=dataset, mini_repeat_count=self.samples_per_prompt,
                             batch_size=completions // self.samples_per_prompt,
                             repeat_count=self.args.gradient_accumulation_steps, shuffle=self.shuffle_dataset,
                             seed=self.args.seed)

    def _generate_and_score_completions(self, inputs):
        unknown = sorted({x["domain"] for x in inputs} - set(self.teacher_of))
        if unknown:
            raise ValueError(f"rows of domain {unknown[0]!r} have no teacher (teachers: {self.domains})")
        out = super()._generate_and_score_completions(inputs)
        device = out["completion_ids"].device
        out["teacher_index"] = torch.tensor([self.teacher_of[x["domain"]] for x in inputs], device=device)
        out["num_samples_in_batch"] = self.accelerator.gather(torch.tensor([float(len(inputs))], device=device)).sum()
        return out

    def _teacher_hidden(self, teacher: int, input_ids, attention_mask, logits_to_keep):
        model = self.teachers[teacher]
        unwrapped = self.accelerator.unwrap_model(model)
        with torch.no_grad():
            hidden = self._forward_redirection(model, unwrapped, self._get_last_hidden_state, unwrapped, input_ids,
                                               attention_mask, logits_to_keep)
        return hidden, unwrapped.get_output_embeddings()

    def _compute_loss(self, unwrapped_student, inputs, num_items_in_batch):
        completion_ids, mask = inputs["completion_ids"], inputs["completion_mask"]
        input_ids = torch.cat([inputs["prompt_ids"], completion_ids], dim=1)
        attention_mask = torch.cat([inputs["prompt_mask"], mask], dim=1)
        keep = completion_ids.size(1)
        student_hidden = self._get_last_hidden_state(unwrapped_student, input_ids, attention_mask, keep)
        student_head = unwrapped_student.get_output_embeddings()
        if self.served:
            return self._served_study_loss(student_hidden, student_head, inputs)
        route = inputs["teacher_index"]
        groups = rows_by_teacher(route)
        teachers = {t: self._teacher_hidden(t, input_ids[rows], attention_mask[rows], keep)
                    for t, rows in groups.items()}
        study = self.loss_mode == "study"
        kl_loss, entropy, tokens = student_hidden.new_zeros(()), student_hidden.new_zeros(()), 0
        for t, rows in groups.items():
            hidden, head = teachers[t]
            with torch.set_grad_enabled(not study and torch.is_grad_enabled()):
                kl, entropy_sum, n = full_reverse_kl(student_hidden[rows].detach() if study else student_hidden[rows],
                                                     hidden, student_head, head, mask[rows], self.temperature)
            kl_loss = kl_loss + kl * n
            entropy, tokens = entropy + entropy_sum.detach(), tokens + n
            self._record(t, kl.detach() * n, n, len(rows))
        if study:
            logps = head_token_logps(student_hidden, student_head, completion_ids, self.temperature)
            with torch.no_grad():
                teacher_logps = route_rows(route, lambda t, rows: head_token_logps(
                    teachers[t][0], teachers[t][1], completion_ids[rows], self.temperature))
            loss = self._study_loss(logps, teacher_logps, inputs)
        else:
            loss = kl_loss / (num_items_in_batch if num_items_in_batch is not None else max(int(tokens), 1))
        return loss, entropy, torch.as_tensor(tokens, device=student_hidden.device)

    def _served_study_loss(self, student_hidden, student_head, inputs):
        """The study loss with each row's teacher log-probs asked of its domain's server (one request per teacher)."""
        completion_ids, mask, route = inputs["completion_ids"], inputs["completion_mask"], inputs["teacher_index"]
        logps, entropy = head_token_logps(student_hidden, student_head, completion_ids, self.temperature,
                                          with_entropy=True)
        teacher_logps = route_rows(route, lambda t, rows: self.teachers[t].completion_logps(
            inputs["prompt_ids"][rows], inputs["prompt_mask"][rows], completion_ids[rows], mask[rows],
            self.temperature))
        for t, rows in rows_by_teacher(route).items():
            self._record(t, 0.0, mask[rows].sum(), len(rows))
        loss = self._study_loss(logps, teacher_logps, inputs)
        return loss, (entropy.detach() * mask).sum(), mask.sum()

    def _study_loss(self, logps, teacher_logps, inputs):
        mask = inputs["completion_mask"]
        samples = inputs["num_samples_in_batch"] / self.accelerator.num_processes
        loss, advantage = study_loss(logps, logps.detach(), teacher_logps, mask, self.epsilon, samples)
        for t, rows in rows_by_teacher(inputs["teacher_index"]).items():
            self._domain_stats[t, STATS.index("advantage_sum")] += float((advantage[rows] * mask[rows]).sum())
        return loss

    def _record(self, teacher: int, kl_sum, tokens, rows: int) -> None:
        if self.model.training:
            self._domain_stats[teacher, :3] += torch.tensor([float(kl_sum), float(tokens), float(rows)],
                                                            dtype=torch.float64)

    def domain_metrics(self, stats: torch.Tensor) -> dict[str, float]:
        """Per-domain means from summed stats: reverse KL per response token, response length in tokens, and (study
        loss) the mean advantage per token, the sampled estimate of the negative reverse KL."""
        out = {}
        for i, domain in enumerate(self.domains):
            kl_sum, tokens, rows, advantage_sum = stats[i].tolist()
            if rows == 0:
                continue
            if not self.served:
                out[f"opd/reverse_kl/{domain}"] = kl_sum / max(tokens, 1)
            out[f"opd/response_length/{domain}"] = tokens / rows
            if self.loss_mode == "study":
                out[f"opd/advantage/{domain}"] = advantage_sum / max(tokens, 1)
        return out

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self.model.training:
            device = self.accelerator.device
            stats = self.accelerator.reduce(self._domain_stats.to(device), reduction="sum").cpu()
            logs = {**logs, **self.domain_metrics(stats)}
            self._domain_stats.zero_()
        super().log(logs, start_time)
