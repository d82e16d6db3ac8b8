"""The report: tables with CIs and paired tests, figures, the cost side and one self-contained HTML page, from the
grid's per-item eval records, model cards, attempts logs, benchmark files and TensorBoard events."""
