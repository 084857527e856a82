"""Reports: truth tables (terminal, Markdown, HTML), the run's matrix.json, and baselines."""
