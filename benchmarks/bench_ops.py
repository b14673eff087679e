"""Per-op engine overhead: minigrad forward+backward vs bare numpy (python benchmarks/bench_ops.py)."""

from minigrad.bench import main

if __name__ == "__main__":
    raise SystemExit(main())
