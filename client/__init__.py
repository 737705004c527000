"""The one typed client of the server's HTTP API, for every caller that is not the server:
the cashier terminal (``client.till``), the operators' tools and the load test
(``client.staff``, ``client.citizen``). Answers are decoded into msgspec Structs
(``client.wire``), refusals raised as ``ApiError`` with the server's stable code
(``shared/errors.py``). It imports ``shared/`` and aiohttp only: never the server, the terminal
or the tools (``lint-imports``)."""
