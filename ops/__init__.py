"""Operator tools around the server: ``voucherctl`` (cli.py), the load test (loadtest.py), the
demo (demo.py) and the embedded PostgreSQL and Redis for machines without them (embedded.py).
Nothing in ``server/`` imports this package; the production image does not contain it."""
