"""Dataset statistics and the PNG histogram."""

from __future__ import annotations

from acecoder_rl.data import compute_stats, load_acecode, plot_stats


def test_sample_statistics_match_the_resource_readme():
    """README: 80 inferences, 16 per model; 64 with pass_rate 1.0, 15 with 0.0 and one with 7/19."""
    stats = compute_stats(load_acecode("sample"))
    assert (stats.rows, stats.by_source, stats.inferences) == (1, {"oss": 1}, 80)
    assert (stats.tests_per_row_min, stats.tests_per_row_mean, stats.tests_per_row_max) == (19, 19.0, 19)
    assert stats.pass_rate_bins == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert stats.pass_rate_histograms["all"] == [
        15,
        0,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        64,
    ]  # 7/19 = 0.368 -> bin 0.3-0.4
    models = {
        "codellama_instruct",
        "llama3.1_instruct",
        "mistral_instruct_v3",
        "qwen_coder_2.5",
        "qwen_coder_2.5_32b",
    }
    assert set(stats.pass_rate_histograms) == {"all"} | models
    assert all(sum(stats.pass_rate_histograms[m]) == 16 for m in models)
    assert stats.pass_rate_histograms["qwen_coder_2.5"] == [0, 0, 0, 1, 0, 0, 0, 0, 0, 15]
    assert "tests_per_row" not in stats.to_dict()


def test_rows_without_inferences(tmp_path):
    stats = compute_stats(load_acecode("mbppplus"))
    assert (stats.rows, stats.by_source, stats.inferences) == (399, {"mbppplus": 399}, 0)
    assert stats.tests_per_row_min >= 1
    path = plot_stats(stats, tmp_path / "plots" / "mbpp.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_png_is_written(tmp_path):
    path = plot_stats(compute_stats(load_acecode("sample")), tmp_path / "stats.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
