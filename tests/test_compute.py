"""GPU-hours arithmetic of the report's compute table, the runs' own compute records (an interrupted and resumed
run costs the sum of its attempts), and the check that saved weights are whole."""
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from safetensors.torch import save_file

from mixmerge.training.distributed import check_full_weights, world_size
from mixmerge import grid
from mixmerge.report.compute import compute_markdown, compute_table, gpu_hours, mix_vs_experts
from mixmerge.training.attempts import read_attempts, summarise_attempts

EXPERTS = ["rl-math", "rl-code", "rl-science", "rl-instruct"]
# The study's Table 2 (GPU-hours on 8 GPUs per run): mixed 2166.4; the four experts sum to 6524.8.
STUDY = {"rl-math": 2100.0, "rl-code": 1900.0, "rl-science": 1224.8, "rl-instruct": 1300.0, "rl-mixed": 2166.4}


def write_bench(path, *walls):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time"]
    lines += [f"{w}\t0:00:00\t1\t1\t1\t1\t0\t0\t0\t0" for w in walls]
    path.write_text("\n".join(lines) + "\n")


def study_benchmarks(bench_dir):
    for node, hours in STUDY.items():
        write_bench(bench_dir / "grpo" / f"{node}.tsv", hours * 3600 / 8)
    write_bench(bench_dir / "sft" / "sft.tsv", 7200)
    write_bench(bench_dir / "merge" / "merge-ties.tsv", 90)
    write_bench(bench_dir / "eval" / "rl-mixed.tsv", 1800)


CONFIG = {"gpus": {"sft": 8, "grpo": 8, "merge": 0, "eval": 1}}


def test_gpu_hours_is_wall_time_times_gpus():
    assert gpu_hours(3600, 8) == 8
    assert gpu_hours(5400, 2) == 3
    assert gpu_hours(10_000, 0) == 0


def test_study_table2_ratio(tmp_path):
    study_benchmarks(tmp_path)
    table = compute_table(tmp_path, CONFIG).set_index("node")
    assert table.loc["rl-mixed", "gpu_hours"] == pytest.approx(2166.4)
    assert table.loc["sft", "gpu_hours"] == pytest.approx(16.0)  # 2 h x 8 GPUs
    assert table.loc["merge-ties", "gpu_hours"] == 0  # merged on CPU
    assert table.loc["eval:rl-mixed", "gpu_hours"] == pytest.approx(0.5)  # 30 min x 1 GPU
    ratio = mix_vs_experts(table.reset_index(), EXPERTS)
    assert ratio["experts_gpu_hours"] == pytest.approx(6524.8)
    assert ratio["mixed_over_experts_gpu_hours"] == pytest.approx(2166.4 / 6524.8)
    assert round(100 * ratio["mixed_over_experts_gpu_hours"], 1) == 33.2
    assert "= 33.2% (the study" in compute_markdown(table.reset_index(), ratio)


def test_ratio_uses_each_nodes_gpu_count_not_wall_time_alone(tmp_path):
    study_benchmarks(tmp_path)
    table = compute_table(tmp_path, CONFIG)
    table.loc[table["node"] == "rl-mixed", ["gpus", "gpu_hours"]] = [4, 2166.4 / 2]  # mixed on half the GPUs
    ratio = mix_vs_experts(table, EXPERTS)
    assert ratio["mixed_over_experts_wall"] == pytest.approx(2166.4 / 6524.8)
    assert ratio["mixed_over_experts_gpu_hours"] == pytest.approx(2166.4 / 2 / 6524.8)


def test_repeated_benchmark_uses_the_mean(tmp_path):
    write_bench(tmp_path / "grpo" / "rl-mixed.tsv", 100, 300)
    assert compute_table(tmp_path, CONFIG).set_index("node").loc["rl-mixed", "wall_seconds"] == 200


def test_cpu_grid_and_missing_nodes_say_n_a(tmp_path):
    study_benchmarks(tmp_path)
    cpu = compute_table(tmp_path, {"gpus": {"sft": 0, "grpo": 0, "merge": 0, "eval": 0}})
    ratio = mix_vs_experts(cpu, EXPERTS)
    assert math.isnan(ratio["mixed_over_experts_gpu_hours"])
    assert ratio["mixed_over_experts_wall"] == pytest.approx(2166.4 / 6524.8)
    assert "GPU-hours 0.00 / 0.00 = n/a" in compute_markdown(cpu, ratio)
    (tmp_path / "grpo" / "rl-code.tsv").unlink()
    partial = compute_table(tmp_path, CONFIG)
    ratio = mix_vs_experts(partial, EXPERTS)
    assert ratio["missing_nodes"] == ["rl-code"] and math.isnan(ratio["mixed_over_experts_gpu_hours"])
    assert "n/a (no benchmark for rl-code)" in compute_markdown(partial, ratio)


def test_full_weights_pass_and_zero3_placeholders_fail(tmp_path):
    save_file({"a": torch.zeros(4, 3), "b": torch.zeros(5)}, str(tmp_path / "model.safetensors"))
    assert check_full_weights(tmp_path) == 17
    save_file({"a": torch.zeros(0)}, str(tmp_path / "model-00002-of-00002.safetensors"))
    with pytest.raises(ValueError, match="empty"):
        check_full_weights(tmp_path)
    with pytest.raises(ValueError, match="no \\*.safetensors"):
        check_full_weights(tmp_path / "nothing")


def test_world_size():
    assert world_size({}) == 1
    assert world_size({"WORLD_SIZE": "8"}) == 8


# One training attempt in its own process, as the grpo/sft stage runs it: the attempts log records the start (GPUs,
# lease wait), the phases and a progress line per step; FINISH saves the model through save_final with a stand-in
# trainer, which sums every attempt into the model card.
ATTEMPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from mixmerge.training.attempts import AttemptLog
    checkpoints, out, steps, finish = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "finish"
    log = AttemptLog(checkpoints, "rl-math").start("checkpoint-3" if finish else None)
    time.sleep(0.01)  # loading the model takes time (phases are recorded to the millisecond)
    log.mark("load")
    for step in range(1, steps + 1):
        time.sleep(0.05)
        log.progress(step)
    log.mark("train")
    if finish:
        import torch
        from safetensors.torch import save_file
        from mixmerge.training.save_resume import save_final

        class State:
            global_step, log_history = steps, []

        class Trainer:
            state = State()
            def save_model(self, path):
                Path(path).mkdir(parents=True, exist_ok=True)
                save_file({"w": torch.ones(2)}, str(Path(path) / "model.safetensors"))
            def is_world_process_zero(self):
                return True

        class Tokenizer:
            def save_pretrained(self, path):
                (Path(path) / "tokenizer.json").write_text("{}")

        save_final(Trainer(), Tokenizer(), out, {"node": "rl-math"}, time.time(), log)
""")


def run_attempt(tmp_path, steps, finish, lease_wait, gpus="0,1"):
    env = {**os.environ, "MIXMERGE_LEASE_WAIT_S": str(lease_wait), "CUDA_VISIBLE_DEVICES": gpus}
    return subprocess.Popen([sys.executable, "-c", ATTEMPT, str(tmp_path / "checkpoints/rl-math"),
                             str(tmp_path / grid.model_dir("rl-math")), str(steps), "finish" if finish else "stop"],
                            env=env)


def test_a_resumed_run_costs_the_sum_of_its_attempts(tmp_path):
    log_path = tmp_path / "checkpoints/rl-math/attempts.jsonl"
    first = run_attempt(tmp_path, steps=10_000, finish=False, lease_wait=1.5)
    deadline = time.monotonic() + 60
    while sum(r["event"] == "progress" for r in read_attempts(log_path)) < 10 and time.monotonic() < deadline:
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)  # interrupted: no end record, no model
    assert first.wait() == -signal.SIGKILL
    assert run_attempt(tmp_path, steps=5, finish=True, lease_wait=0.5).wait() == 0

    card = json.loads((tmp_path / grid.model_card("rl-math")).read_text())["compute"]
    assert [a["status"] for a in card["attempts"]] == ["interrupted", "finished"]
    killed, resumed = card["attempts"]
    assert killed["step"] >= 10 and resumed["resumed_from"] == "checkpoint-3" and resumed["step"] == 5
    assert card["wall_seconds"] == pytest.approx(killed["wall_s"] + resumed["wall_s"], abs=1e-3)
    assert killed["wall_s"] >= 10 * 0.05 and card["lease_wait_seconds"] == pytest.approx(2.0)
    assert card["gpus"] == 2 and card["gpu_hours"] == pytest.approx(card["wall_seconds"] * 2 / 3600, rel=1e-3)
    assert card["load_seconds"] > 0 and card["train_seconds"] > 0
    copied = read_attempts(tmp_path / grid.model_dir("rl-math") / "attempts.jsonl")
    assert summarise_attempts(copied)["wall_seconds"] == card["wall_seconds"]

    # Snakemake's benchmark file holds only the last attempt; the compute table uses the run's own record.
    write_bench(tmp_path / "benchmarks/grpo/rl-math.tsv", resumed["wall_s"])
    table = compute_table(tmp_path / "benchmarks", {"gpus": {"grpo": 8}}, tmp_path / "results/models")
    row = table.set_index("node").loc["rl-math"]
    assert row["attempts"] == 2 and row["gpus"] == 2 and row["source"].startswith("run record")
    assert row["wall_seconds"] == pytest.approx(killed["wall_s"] + resumed["wall_s"], abs=1e-3)
    assert row["gpu_hours"] == pytest.approx(gpu_hours(row["wall_seconds"], 2), rel=1e-3)
    assert row["lease_wait_seconds"] == pytest.approx(2.0)


def test_a_node_without_a_run_record_falls_back_to_its_benchmark(tmp_path):
    write_bench(tmp_path / "benchmarks/grpo/rl-code.tsv", 300)
    (tmp_path / "results/models/rl-code").mkdir(parents=True)
    (tmp_path / "results/models/rl-code/mixmerge_card.json").write_text(json.dumps({"wall_seconds": 290}))
    row = compute_table(tmp_path / "benchmarks", {"gpus": {"grpo": 4}}, tmp_path / "results/models").iloc[0]
    assert row["wall_seconds"] == 300 and row["gpus"] == 4 and row["source"].startswith("Snakemake")
