"""`python -m benchmarks [--quick] [--repeats R] [--skip-notebooks]`: print the table, write JSON.

All ratios compare contenders measured in the same run, interleaved (each repeat runs every
contender once), so machine noise hits them alike; the table shows medians over repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from pathlib import Path

import numpy as np

from benchmarks import engine, notebooks, training

OUT = Path(__file__).resolve().parent / "latest.json"


def throughput(args: argparse.Namespace) -> dict:
    """Samples per second of one epoch for each contender and dtype (median over repeats)."""
    contenders = {
        "bpkit layers": training.epoch_bpkit,
        "bpkit fit()": training.epoch_fit,
        "fused NumPy": training.epoch_fused,
    }
    torch_version = training.torch_available()
    if torch_version:
        contenders["PyTorch CPU"] = training.epoch_torch
    results = {"torch": torch_version or "not installed (pip install '.[bench]' to add the column)"}
    results["threads"] = training.blas_threads()
    for dtype in (np.float64, np.float32):
        X, y = training.make_data(args.samples, dtype)
        times = {name: [] for name in [*contenders, "per-sample loop"]}
        per_sample_n = max(args.samples // 10, 640)
        for run in contenders.values():  # warm-up: imports, BLAS thread start-up, first allocations
            run(X[:640], y[:640], args.batch)
        for _ in range(args.repeats):
            for name, run in contenders.items():
                times[name].append(run(X, y, args.batch) / len(X))
            if dtype == np.float64:
                times["per-sample loop"].append(
                    training.epoch_per_sample(X[:per_sample_n], y[:per_sample_n], args.batch) / per_sample_n
                )
        rates = {name: 1 / statistics.median(t) for name, t in times.items() if t}
        results[np.dtype(dtype).name] = {"samples_per_s": rates, "gemm_peak_gflops": training.gemm_peak(dtype)}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6,000 samples, 1 repeat, no notebooks: a smoke run")
    parser.add_argument("--samples", type=int, default=60_000, help="samples per epoch (default: MNIST's 60,000)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-notebooks", action="store_true", help="do not time the solution notebooks")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.repeats, args.skip_notebooks = 6_000, 1, True

    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "processor": platform.machine(),
        },
        "config": {"samples": args.samples, "batch": args.batch, "repeats": args.repeats},
    }
    print(
        f"Training throughput: 784-100-10 ReLU MLP, softmax cross-entropy, SGD, batch {args.batch}, "
        f"{args.samples:,} samples, median of {args.repeats}"
    )
    report["training"] = tp = throughput(args)
    print(f"  (PyTorch: {tp['torch']}; BLAS and PyTorch threads: {training.blas_threads()})")
    for dtype in ("float64", "float32"):
        rates = tp[dtype]["samples_per_s"]
        fused = rates["fused NumPy"]
        peak = tp[dtype]["gemm_peak_gflops"]
        print(f"\n  {dtype}: machine GEMM peak {peak:.1f} GFLOP/s")
        print(
            f"  {'contender':<18}{'samples/s':>12}{'GFLOP/s':>10}{'% of peak':>11}{'vs fused':>10}{'bpkit / this':>14}"
        )
        for name, rate in rates.items():
            gflops = rate * training.FLOPS_PER_SAMPLE / 1e9
            print(
                f"  {name:<18}{rate:>12,.0f}{gflops:>10.2f}{100 * gflops / peak:>10.1f}%"
                f"{rate / fused:>9.2f}x{rates['bpkit layers'] / rate:>13.2f}x"
            )
    print(
        "\n  targets: bpkit layers >= 0.9x fused NumPy (float64), >= 0.95x (float32); >= 1.5x PyTorch (float64); "
        ">= 15x the per-sample loop (float64)"
    )
    r64, r32 = tp["float64"]["samples_per_s"], tp["float32"]["samples_per_s"]
    verdicts = {
        "bpkit >= 0.9x fused (float64)": r64["bpkit layers"] / r64["fused NumPy"] >= 0.9,
        "bpkit >= 0.95x fused (float32)": r32["bpkit layers"] / r32["fused NumPy"] >= 0.95,
        "bpkit >= 15x per-sample (float64)": r64["bpkit layers"] / r64["per-sample loop"] >= 15,
    }
    if "PyTorch CPU" in r64:
        verdicts["bpkit >= 1.5x PyTorch (float64)"] = r64["bpkit layers"] / r64["PyTorch CPU"] >= 1.5
    for name, ok in verdicts.items():
        print(f"  {'met    ' if ok else 'NOT met'}  {name}")
    report["targets"] = verdicts

    print("\nScalar engine (bpkit.engine.Value)")
    report["engine"] = eng = engine.million_node_graph()
    nodes, limit = engine.largest_recursive_graph()
    eng["recursive_max_nodes"], eng["recursion_limit"] = nodes, limit
    print(
        f"  {eng['nodes']:,}-node graph: built at {eng['build_nodes_per_s']:,.0f} nodes/s, "
        f"backward at {eng['backward_nodes_per_s']:,.0f} nodes/s"
    )
    print(f"  micrograd-style recursive sort: largest chain {nodes:,} nodes (recursion limit {limit})")

    if not args.skip_notebooks:
        print("\nSolution notebooks (execution seconds, fresh kernel each)")
        report["notebooks"] = secs = notebooks.time_notebooks()
        for name, s in secs.items():
            print(f"  {name:<36}{s:>7.1f} s")
        print(f"  {'total':<36}{sum(secs.values()):>7.1f} s")

    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
