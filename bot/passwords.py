"""Staff passwords: argon2id with argon2-cffi's default cost (RFC 9106, low-memory profile).

The cost is the point in production (about a third of a second of CPU per check) and pure
waste in tests, which hash hundreds of passwords: a test run lowers it once with
:func:`use_parameters`. Hashes carry their own parameters, so a cheap hash still verifies,
and the console rehashes it at the next sign-in under production parameters.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from argon2 import PasswordHasher

# argon2-cffi's defaults: time_cost 3, memory_cost 64 MiB, parallelism 4.
PRODUCTION: dict[str, Any] = {}
_parameters: dict[str, Any] = dict(PRODUCTION)


def use_parameters(**parameters: Any) -> None:
    """Hash with other argon2 parameters from now on (the test suite's cheap ones)."""
    _parameters.clear()
    _parameters.update(parameters)
    hasher.cache_clear()
    dummy_hash.cache_clear()


@cache
def hasher() -> PasswordHasher:
    return PasswordHasher(**_parameters)


def hash_password(password: str) -> str:
    return hasher().hash(password)


@cache
def dummy_hash() -> str:
    """A hash to check unknown logins against, so they take as long as real ones."""
    return hasher().hash("not a password, only to spend the same time")
