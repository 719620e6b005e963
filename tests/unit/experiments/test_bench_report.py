"""docs/performance.md from benchmark results: the goals of issue 13 are marked met or missed by how much."""

from __future__ import annotations

from lsi.experiments.bench_report import _verdict, render


def results(paper_b256: float, startup: float) -> dict:
    inf = []
    for config in ("embedded", "paper"):
        for d in (32, 128):
            rate = paper_b256 if config == "paper" else 5000.0
            inf.append({"config": config, "d": d, "backend": "ort-int8", "batch1_1thread": rate / 2,
                        "batch256_all": rate, **{f"{c}_{q}_ms": 1.0 for c in ("batch1_1thread", "batch256_all")
                                                  for q in ("p50", "p99")}})
    part = {k: 10.0 for k in ("O forward", "D_theta forward + L_lat", "backward", "optimizer", "step")}
    part.update({f"{k} [cpu]": v for k, v in part.items()})
    return {
        "machine": {"cpu": "cpu", "cores": 2, "cpu_capability": "AVX512", "torch": "t", "onnxruntime": "o",
                    "python": "3", "torch_threads": 2, "OMP_WAIT_POLICY": "PASSIVE", "load_start": 0.5,
                    "load_end": 0.7, "seconds": 600},
        "inference": inf, "optical": {"32": {"pattern_limited": 90.0}, "128": {"pattern_limited": 22.5}},
        "generator": [], "training": {"joint": part, "joint, before": part, "readout": part},
        "optical_encoder": [{"case": "equivalent matmul (patterns given)", "ms": 10.0, "p99_ms": 11.0},
                            {"case": "A, masks learning (one-pass quantiser)", "ms": 15.0, "p99_ms": 16.0},
                            {"case": "A, frozen or eval (cached patterns)", "ms": 10.0, "p99_ms": 11.0}],
        "autocast": {"loss_fp32": 1.0, "loss_bf16": 1.0, "grad_cosine": 1.0},
        "allocator": {"glibc default": {"joint step": 5.0, "joint step [cpu]": 4.0, "A, masks learning": 2.0}},
        "exported": {"checkpoint": "c", "scenes": 4, "infer_startup_s": startup,
                     "models": {"torch (checkpoint)": {"id_match": 0.75},
                                "int8 (onnx)": {"id_match": 0.7475, "max_abs_diff_ws": 0.01, "bytes": 10**6}}},
    }


def test_verdicts_say_met_or_by_how_much():
    assert _verdict(1200, 1000) == "**met**"
    assert _verdict(250, 1000) == "**missed** by 4.0x"
    assert _verdict(2.0, 3.0, higher_is_better=False) == "**met**"
    assert _verdict(6.0, 3.0, higher_is_better=False) == "**missed** by 2.0x"


def test_goals_table_uses_the_measured_values():
    text = render(results(paper_b256=500.0, startup=0.8))
    row = next(line for line in text.splitlines() if line.startswith("| paper-scale D_θ + P_A, d = 32"))
    assert "500 /s (ort-int8)" in row and "**missed** by 2.0x" in row
    startup = next(line for line in text.splitlines() if "command line" in line)
    assert "0.80 s" in startup and "**met**" in startup
    assert "| int8 (onnx) | 74.75% | -0.25 points |" in text
    assert "learning 15 ms = 1.5x" in text
