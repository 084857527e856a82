"""Tests of flowcheck.report: truth tables, Markdown, HTML, report directories and baselines."""
