"""The use cases, one home each (STYLE.md point 9): a handler parses a request into a typed
command, calls one function here and turns its result or domain error into JSON. A service
takes its dependencies (``ports``) as a parameter, never a request: the CLI, the load test and
the tests call it without aiohttp. The rules it applies live in ``shared/``, the SQL in
``server/db/``."""
