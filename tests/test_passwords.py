"""Production password hashing keeps argon2's full cost; the suite's cheap hashes still work."""

from __future__ import annotations

from argon2 import PasswordHasher, extract_parameters

from bot import passwords


def test_production_parameters_are_argon2s_recommended_cost() -> None:
    hashed = PasswordHasher(**passwords.PRODUCTION).hash("pw")
    params = extract_parameters(hashed)
    assert (params.time_cost, params.memory_cost, params.parallelism) == (3, 65536, 4)
    assert hashed.startswith("$argon2id$")


def test_a_cheap_hash_verifies_and_is_flagged_for_rehash_in_production() -> None:
    cheap = passwords.hash_password("correct horse")
    assert passwords.hasher().verify(cheap, "correct horse")
    assert PasswordHasher(**passwords.PRODUCTION).check_needs_rehash(cheap)
