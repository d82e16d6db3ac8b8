"""avg@k evaluation: generation backends (HF, vLLM) and per-item scoring records."""
