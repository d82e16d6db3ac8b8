"""Runs the KL analysis (``mixmerge.analysis.kl_neighbourhood``): scores each expert's eval samples under the
expert and under rl-mixed (teacher forcing, one model loaded at a time), then writes the cell table, the
correlation, the figure and the settings.

The records keep each sample's decoded text, not its token ids: the response is re-tokenized (plus the end token
when it stopped), so a sample whose text does not round-trip through the tokenizer is scored as re-tokenized.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mixmerge.analysis.kl_neighbourhood import correlation, kl_ci, mark_neighbours
from mixmerge.grid import Grid
from mixmerge.report import stats
from mixmerge.report.records import load_scores
from mixmerge.analysis.outputs import write_outputs

HEAD_POSITIONS = 1024


def read_samples(records: str, rows: str, max_items: int | None, seed: int) -> list[tuple[str, list, str, bool]]:
    """(item id, prompt messages, response text, stopped) for every sample of ``records``; with ``max_items``,
    a seeded subset of the items (all their samples)."""
    from mixmerge.data.rows import read_rows

    prompts = {str(r["id"]): r["prompt"] for r in read_rows(rows)}
    items = [json.loads(line) for line in Path(records).read_text().splitlines() if line.strip()]
    if max_items and len(items) > max_items:
        keep = np.random.default_rng(seed).choice(len(items), size=max_items, replace=False)
        items = [items[i] for i in sorted(keep)]
    return [(str(it["id"]), prompts[str(it["id"])], transcript_or_text(it["domain"], s["text"]),
             s.get("finish_reason") == "stop") for it in items for s in it["samples"]]


def transcript_or_text(domain: str, text: str):
    """A multi-turn domain's sample is its transcript (a list of messages, scored as the chat template writes it,
    tool answers included); any other sample is its text."""
    from mixmerge.domains import get_domain

    return json.loads(text) if get_domain(domain).environment is not None else text


class Scorer:
    """One causal LM: the summed log-probability of responses given chat prompts (teacher forcing)."""

    def __init__(self, model_dir: str, batch_size: int):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(self.device).eval()
        self.batch_size = batch_size

    def encode(self, samples: list[tuple[str, list, str, bool]]) -> list[tuple[list[int], int]]:
        """(prompt + response token ids, response length) per sample; a prompt is templated once per item."""
        heads: dict[str, list[int]] = {}
        out = []
        for item, prompt, text, stopped in samples:
            if item not in heads:
                head = self.tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
                heads[item] = self.tokenizer(head, add_special_tokens=False)["input_ids"]
            if isinstance(text, list):  # a transcript: its turns after the prompt, final end of turn included
                head = self.tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
                text = self.tokenizer.apply_chat_template(prompt + text, tokenize=False)[len(head):]
                stopped = False
            answer = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if stopped:
                answer = answer + [self.tokenizer.eos_token_id]
            out.append((heads[item] + answer, len(answer)))
        return out

    def _batch_logprobs(self, batch: list[tuple[list[int], int]]) -> list[float]:
        """Summed response log-probs of one batch; the output head runs on ``HEAD_POSITIONS`` positions at a time,
        so a long response never holds its whole logits tensor (positions x vocabulary) at once."""
        import torch

        pad = self.tokenizer.pad_token_id or 0
        width = max(len(ids) for ids, _ in batch)
        ids = torch.tensor([i + [pad] * (width - len(i)) for i, _ in batch], device=self.device)
        mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in batch], device=self.device)
        first = min(len(seq) - 1 - n for seq, n in batch)
        total = torch.zeros(len(batch), dtype=torch.float64, device=self.device)
        with torch.no_grad():
            hidden = self.model.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state
            head = self.model.get_output_embeddings()
            for start in range(first, width - 1, HEAD_POSITIONS):
                stop = min(width - 1, start + HEAD_POSITIONS)
                logp = torch.log_softmax(head(hidden[:, start:stop]).float(), dim=-1)
                picked = logp.gather(-1, ids[:, start + 1:stop + 1, None])[..., 0]
                where = torch.arange(start, stop, device=self.device)[None, :]
                lo = torch.tensor([len(seq) - 1 - n for seq, n in batch], device=self.device)[:, None]
                hi = torch.tensor([len(seq) - 1 for seq, _ in batch], device=self.device)[:, None]
                total += (picked * ((where >= lo) & (where < hi))).sum(-1).double()
        return total.tolist()

    def logprobs(self, samples: list[tuple[str, list, str, bool]]) -> tuple[np.ndarray, np.ndarray]:
        """(summed log-prob of each response, its token count); batches of similar lengths."""
        encoded = self.encode(samples)
        sums, counts = np.zeros(len(encoded)), np.array([n for _, n in encoded], dtype=float)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
        for start in range(0, len(order), self.batch_size):
            chosen = order[start:start + self.batch_size]
            sums[chosen] = self._batch_logprobs([encoded[i] for i in chosen])
        return sums, counts


def score_all(samples: dict[tuple[str, str], list], models: dict[str, str], batch_size: int) -> dict:
    """{(expert, benchmark): (log p_expert, log p_mixed, tokens)}, each model loaded once."""
    mixed = Scorer(models["rl-mixed"], batch_size)
    under_mixed = {key: mixed.logprobs(s) for key, s in samples.items()}
    del mixed
    out = {}
    for expert in dict.fromkeys(e for e, _ in samples):
        own = Scorer(models[expert], batch_size)
        for key in [k for k in samples if k[0] == expert]:
            log_p, tokens = own.logprobs(samples[key])
            out[key] = (log_p, under_mixed[key][0], tokens)
        del own
    return out


def cell_table(the_grid: Grid, samples: dict, scored: dict, root: str, seed: int) -> pd.DataFrame:
    scores = load_scores(the_grid, root)
    domains = dict(the_grid.bench_domains)
    rows = []
    for (expert, bench), (log_p, log_q, tokens) in scored.items():
        item_of = np.array([item for item, *_ in samples[(expert, bench)]])
        row = {"expert": expert, "benchmark": bench, "domain": domains[bench], "n_items": len(np.unique(item_of)),
               "n_samples": len(item_of), **kl_ci(item_of, log_p, log_q, tokens, seed)}
        mixed, single = scores.get(("rl-mixed", bench)), scores.get((expert, bench))
        if mixed is not None and single is not None:
            ids = sorted(set(mixed.ids) & set(single.ids))
            res = stats.paired([mixed.aligned("strict", ids)], [single.aligned("strict", ids)], seed=seed)
            row.update(delta_perf=res.diff, delta_perf_lo=res.lo, delta_perf_hi=res.hi, delta_perf_n=res.n)
        rows.append(row)
    return pd.DataFrame(rows)


def run_kl_neighbourhood(spec: dict, settings: dict, models: dict[str, str], rows: dict[str, str],
                         out: dict[str, str], root: str = ".", threads: int = 1) -> pd.DataFrame:
    import torch

    from mixmerge import grid
    from mixmerge.analysis.plots import kl_figure

    torch.set_num_threads(threads)
    started = time.monotonic()
    the_grid = Grid.from_config(spec)
    samples = {(e, b): read_samples(str(Path(root, grid.eval_records(e, b))), rows[b], settings["max_items"],
                                    settings["seed"]) for e in the_grid.experts for b in the_grid.benchmarks}
    table = cell_table(the_grid, samples, score_all(samples, models, settings["batch_size"]), root, settings["seed"])
    table = mark_neighbours(table, settings["level"], settings["epsilon_rule"], settings["epsilon_value"])
    corr = {level: correlation(table[f"kl_{level}"], table.get("delta_perf", np.full(len(table), np.nan)))
            for level in ("sequence", "token")}
    corr_table = pd.DataFrame([{"kl": level, **c} for level, c in corr.items()])
    write_outputs(out, {"table": table, "correlation": corr_table},
                  lambda path: kl_figure(table, settings["level"], path),
                  {"analysis": "kl_neighbourhood", "settings": settings, "models": models, "correlation": corr,
                   "seconds": round(time.monotonic() - started, 2)})
    return table
