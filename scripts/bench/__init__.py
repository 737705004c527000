"""Helpers of ``scripts/bench_redeem.py``: seeding, the server and load-generator processes,
CPU accounting and profile summaries. Not part of the product."""
