"""One adapter module per aggregate; SQL inline with $n placeholders."""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Conn: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"
# what services hold to reach the ledger (they never import asyncpg themselves)
Pool: TypeAlias = "asyncpg.Pool[Any]"
