"""The report: tables, figures and the compute accounting from eval records and benchmark files."""
