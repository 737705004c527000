"""The use cases, one home each (STYLE.md point 9; cosmicpython's service layer, with
aiohttp's conventions).

A handler (``server/handlers``) parses the request into a typed command, calls one service
function and turns its result, or the domain error it raises, into a response. The service
decides: it reads and writes the ledger through the adapters (``server/db``), in the
transactions it opens, with the audit entries it writes; it never sees a request. It takes its
dependencies as a parameter (``server/services/ports.py``: ``Ports``, or the till's
``TillPorts``), so the CLI, the load test and the tests call it as the HTTP edge does, without
aiohttp. The rules it applies live in ``shared/``, the SQL in ``server/db/``.
"""
