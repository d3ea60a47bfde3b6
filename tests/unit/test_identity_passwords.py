"""services.identity.passwords: policy, NFC handling and timing-safe verification (no database)."""

from __future__ import annotations

from importlib import resources
from typing import Any, Literal

import pytest
from argon2 import PasswordHasher, Type, extract_parameters

from services.identity import passwords
from services.identity.passwords import PasswordRejected, check_password
from services.identity.settings import IdentitySettings

# The real parameters cost tens of milliseconds a hash; tests that are not about the
# parameters use argon2's minimum so the suite stays fast.
CHEAP: dict[str, Any] = {
    "time_cost": 1,
    "memory_cost": 8,
    "parallelism": 1,
    "hash_len": 32,
    "salt_len": 16,
    "type": Type.ID,
}

# 12 characters, not in the list, no username: the base the length tests grow or shrink.
UNCOMMON = "vq7#Lm2!xR9@"


@pytest.fixture
def cheap() -> PasswordHasher:
    return PasswordHasher(**CHEAP)


def rejected(password: str, username: str = "tanaka") -> str:
    with pytest.raises(PasswordRejected) as caught:
        check_password(password, username=username)
    assert caught.value.message
    assert str(caught.value) == caught.value.message
    return caught.value.code


# --- the shipped list -----------------------------------------------------------------------


def test_common_password_list_is_large_lower_case_and_attributed() -> None:
    common = passwords.common_passwords()
    assert len(common) >= 30_000
    assert all(entry == entry.lower() and entry.strip() == entry and entry for entry in common)
    text = (
        resources.files("services.identity")
        .joinpath("data", "common-passwords.txt")
        .read_text(encoding="utf-8")
    )
    first, second, *_ = text.splitlines()
    assert first.startswith("# Common passwords, from the zxcvbn project")
    assert "MIT License" in first
    # Rank order kept: the most common password comes first.
    assert second == "123456"
    assert not any(line.startswith("#") for line in text.splitlines()[1:])


def test_common_password_list_is_loaded_once() -> None:
    assert passwords.common_passwords() is passwords.common_passwords()


# --- length ---------------------------------------------------------------------------------


def test_eleven_characters_are_too_short() -> None:
    assert rejected(UNCOMMON[:11]) == "too_short"


def test_twelve_characters_are_enough() -> None:
    check_password(UNCOMMON, username="tanaka")


def test_128_characters_are_accepted_and_129_refused() -> None:
    long = (UNCOMMON * 11)[:128]
    check_password(long, username="tanaka")
    assert rejected(long + "z") == "too_long"


def test_japanese_passwords_are_counted_in_characters_not_bytes() -> None:
    check_password("あ" * 12, username="tanaka")  # 36 bytes in UTF-8, 12 characters
    assert rejected("あ" * 11) == "too_short"
    check_password("パスワードは長いほうが安全です", username="tanaka")
    check_password("あ" * 128, username="tanaka")
    assert rejected("あ" * 129) == "too_long"


def test_length_is_counted_after_nfc_normalisation() -> None:
    # "e" + combining acute: two code points typed, one character after NFC.
    decomposed_e = "e\u0301"
    assert rejected(decomposed_e * 11) == "too_short"  # 22 code points before NFC
    check_password(decomposed_e * 12, username="tanaka")


def test_no_composition_rules() -> None:
    check_password("correct horse battery staple", username="tanaka")
    check_password("zzzzzzzzzzzzzzzzzzzzzzzzq", username="tanaka")


# --- common passwords -----------------------------------------------------------------------


def _long_common_passwords() -> list[str]:
    return sorted(p for p in passwords.common_passwords() if len(p) >= passwords.MIN_LENGTH)


def test_the_list_has_entries_long_enough_to_pass_the_length_rule() -> None:
    assert len(_long_common_passwords()) >= 100


@pytest.mark.parametrize("password", ["1qaz2wsx3edc", "qwertyuiop12", "leavemealone"])
def test_common_passwords_are_refused_whatever_their_case(password: str) -> None:
    assert password in passwords.common_passwords()
    assert rejected(password) == "common"
    assert rejected(password.upper()) == "common"
    assert rejected(password.title()) == "common"


def test_every_long_enough_list_entry_is_refused() -> None:
    for password in _long_common_passwords():
        if len(password) <= passwords.MAX_LENGTH:
            assert rejected(password, username="zz") == "common", password


# --- username -------------------------------------------------------------------------------


def test_password_equal_to_the_username_is_refused() -> None:
    assert rejected("Tanaka.Hiroshi", username="tanaka.hiroshi") == "contains_username"


def test_password_containing_the_username_is_refused_case_insensitively() -> None:
    assert rejected("my-TANAKA-password!", username="Tanaka") == "contains_username"
    assert rejected("abc田中太郎xyz123", username="田中太郎") == "contains_username"


def test_very_short_usernames_are_not_checked() -> None:
    check_password("alpha-centauri-77", username="al")
    assert rejected("alpha-centauri-77", username="alp") == "contains_username"


def test_length_is_reported_before_the_other_rules() -> None:
    assert rejected("tanaka", username="tanaka") == "too_short"


# --- hashing and verification ---------------------------------------------------------------


def test_hash_is_argon2id_and_verifies(cheap: PasswordHasher) -> None:
    password_hash = passwords.hash_password(cheap, UNCOMMON)
    assert password_hash.startswith("$argon2id$")
    assert UNCOMMON not in password_hash
    assert passwords.verify_password(cheap, password_hash, UNCOMMON)


def test_wrong_password_is_false_not_an_exception(cheap: PasswordHasher) -> None:
    password_hash = passwords.hash_password(cheap, UNCOMMON)
    assert passwords.verify_password(cheap, password_hash, UNCOMMON + "x") is False
    assert passwords.verify_password(cheap, password_hash, "") is False


@pytest.mark.parametrize("garbage", ["", "not a hash", "$argon2id$v=19$m=8", "$argon2id$ä"])
def test_unusable_stored_hash_is_false_not_an_exception(
    cheap: PasswordHasher, garbage: str
) -> None:
    assert passwords.verify_password(cheap, garbage, UNCOMMON) is False


@pytest.mark.parametrize(
    ("typed_at_signup", "typed_at_login"),
    [
        ("caf\u00e9-au-lait-42", "cafe\u0301-au-lait-42"),
        ("cafe\u0301-au-lait-42", "caf\u00e9-au-lait-42"),
        # Japanese: が as one code point, and as か plus a combining dakuten (U+3099).
        ("\u304cっこうの図書館", "\u304b\u3099っこうの図書館"),
    ],
)
def test_canonically_equivalent_passwords_match(
    cheap: PasswordHasher, typed_at_signup: str, typed_at_login: str
) -> None:
    assert typed_at_signup != typed_at_login
    password_hash = passwords.hash_password(cheap, typed_at_signup)
    assert passwords.verify_password(cheap, password_hash, typed_at_login)


class SpyHasher(PasswordHasher):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.verified: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verified.append(hash if isinstance(hash, str) else hash.decode())
        return super().verify(hash, password)


def test_unknown_user_is_false_after_a_real_argon2_verify_with_the_same_parameters() -> None:
    # The configured parameters, not the cheap ones: the dummy must cost what a real hash costs.
    real = passwords.hasher(IdentitySettings())
    spy = SpyHasher(
        time_cost=real.time_cost,
        memory_cost=real.memory_cost,
        parallelism=real.parallelism,
        hash_len=real.hash_len,
        salt_len=real.salt_len,
        type=real.type,
    )
    real_hash = passwords.hash_password(real, UNCOMMON)

    assert passwords.verify_password(spy, None, UNCOMMON) is False
    assert passwords.verify_password(spy, None, "") is False

    assert len(spy.verified) == 2
    dummy = spy.verified[0]
    assert spy.verified[1] == dummy  # made once, then reused
    assert dummy != real_hash
    assert extract_parameters(dummy) == extract_parameters(real_hash)
    assert not spy.check_needs_rehash(dummy)


def test_dummy_hash_follows_the_hasher_parameters(cheap: PasswordHasher) -> None:
    spy = SpyHasher(**CHEAP)
    assert passwords.verify_password(spy, None, UNCOMMON) is False
    (dummy,) = spy.verified
    assert extract_parameters(dummy) == extract_parameters(passwords.hash_password(cheap, "x"))


def test_needs_rehash(cheap: PasswordHasher) -> None:
    stronger = PasswordHasher(**{**CHEAP, "time_cost": 2})
    password_hash = passwords.hash_password(cheap, UNCOMMON)
    assert passwords.needs_rehash(cheap, password_hash) is False
    assert passwords.needs_rehash(stronger, password_hash) is True
    assert passwords.needs_rehash(cheap, "not a hash") is True


def test_one_time_password_still_works() -> None:
    otp = passwords.one_time_password()
    assert len(otp) == 20
    assert not set(otp) & set("0O1lI")
