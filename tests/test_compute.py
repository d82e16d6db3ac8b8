"""GPU-hours arithmetic of the report's compute table, and the check that saved weights are whole."""
import math

import pytest
import torch
from safetensors.torch import save_file

from mixmerge.training.distributed import check_full_weights, world_size
from mixmerge.report.tables import compute_markdown, compute_table, gpu_hours, mix_vs_experts

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
    write_bench(bench_dir / "eval" / "rl-mixed" / "math.tsv", 1800)


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
    assert table.loc["eval:rl-mixed/math", "gpu_hours"] == pytest.approx(0.5)  # 30 min x 1 GPU
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
