"""services.identity.totp: RFC 6238 codes, the replay guard, QR codes and recovery codes."""

from __future__ import annotations

import base64
import re
import time
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest

from services.identity import totp

# RFC 6238 appendix B: the SHA-1 key is the ASCII string "12345678901234567890".
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()

# A fixed instant well inside a step, so now-1 .. now+1 are unambiguous.
NOW = 1_700_000_015.0
STEP = int(NOW // 30)


@pytest.fixture
def secret() -> str:
    # Fixed, so the codes of neighbouring steps are known to differ (checked below).
    return "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def code_at(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).at(step * 30)


def test_neighbouring_codes_differ(secret: str) -> None:
    codes = [code_at(secret, STEP + offset) for offset in range(-2, 3)]
    assert len(set(codes)) == len(codes)


@pytest.mark.parametrize(
    ("unix_time", "expected"),
    # The 8-digit vectors from RFC 6238 appendix B, truncated to 6 digits (mod 10**6).
    [
        (59, "287082"),
        (1_111_111_109, "081804"),
        (1_111_111_111, "050471"),
        (1_234_567_890, "005924"),
        (2_000_000_000, "279037"),
        (20_000_000_000, "353130"),
    ],
)
def test_rfc_6238_test_vectors(unix_time: int, expected: str) -> None:
    assert totp.verify_code(RFC_SECRET, expected, last_step=None, now=unix_time) == unix_time // 30


def test_current_code_is_accepted_and_returns_its_step(secret: str) -> None:
    assert totp.verify_code(secret, code_at(secret, STEP), last_step=None, now=NOW) == STEP


def test_same_code_is_refused_the_second_time(secret: str) -> None:
    code = code_at(secret, STEP)
    step = totp.verify_code(secret, code, last_step=None, now=NOW)
    assert step == STEP
    assert totp.verify_code(secret, code, last_step=step, now=NOW) is None
    # Still refused a few seconds later, within the same step and the next one.
    assert totp.verify_code(secret, code, last_step=step, now=NOW + 30) is None


def test_previous_step_is_accepted_once(secret: str) -> None:
    code = code_at(secret, STEP - 1)
    step = totp.verify_code(secret, code, last_step=None, now=NOW)
    assert step == STEP - 1
    assert totp.verify_code(secret, code, last_step=step, now=NOW) is None
    # ...and after it, the current code is still good.
    assert totp.verify_code(secret, code_at(secret, STEP), last_step=step, now=NOW) == STEP


def test_next_step_is_accepted_for_clock_drift(secret: str) -> None:
    assert totp.verify_code(secret, code_at(secret, STEP + 1), last_step=None, now=NOW) == STEP + 1


def test_codes_older_than_the_last_used_step_are_refused(secret: str) -> None:
    # Once the current step is used, the previous step's code is no longer good either.
    code = code_at(secret, STEP - 1)
    assert totp.verify_code(secret, code, last_step=STEP, now=NOW) is None


@pytest.mark.parametrize("offset", [-2, 2, -10, 10])
def test_codes_outside_the_window_are_refused(secret: str, offset: int) -> None:
    code = code_at(secret, STEP + offset)
    assert totp.verify_code(secret, code, last_step=None, now=NOW) is None


def test_spaces_are_ignored(secret: str) -> None:
    code = code_at(secret, STEP)
    spaced = f"{code[:3]} {code[3:]}"
    assert totp.verify_code(secret, spaced, last_step=None, now=NOW) == STEP
    assert totp.verify_code(secret, f" {code}\n", last_step=None, now=NOW) == STEP


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "12345",
        "1234567",
        "abcdef",
        "12345a",
        "12-456",
        "１２３４５６",  # full-width digits
        "١٢٣٤٥٦",  # Arabic-Indic digits: str.isdigit() is True for these
    ],
)
def test_malformed_codes_are_refused(secret: str, bad: str) -> None:
    assert totp.verify_code(secret, bad, last_step=None, now=NOW) is None


def test_a_valid_code_with_an_extra_digit_is_refused(secret: str) -> None:
    code = code_at(secret, STEP)
    assert totp.verify_code(secret, code + "0", last_step=None, now=NOW) is None
    assert totp.verify_code(secret, code[:5], last_step=None, now=NOW) is None


def test_wrong_secret_is_refused(secret: str) -> None:
    other = totp.new_secret()
    assert totp.verify_code(other, code_at(secret, STEP), last_step=None, now=NOW) is None


def test_now_defaults_to_the_clock(secret: str) -> None:
    step = totp.verify_code(secret, pyotp.TOTP(secret).now(), last_step=None)
    assert step is not None
    assert abs(step - int(time.time() // 30)) <= 1


def test_new_secret_is_160_bits_of_base32() -> None:
    secret = totp.new_secret()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    assert len(base64.b32decode(secret)) == 20
    assert totp.new_secret() != secret


def test_otpauth_uri_names_issuer_account_and_secret(secret: str) -> None:
    uri = totp.otpauth_uri(secret, account="tanaka@acme")
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth"
    assert parts.netloc == "totp"
    assert unquote(parts.path) == "/Jinji:tanaka@acme"
    query = parse_qs(parts.query)
    assert query["secret"] == [secret]
    assert query["issuer"] == ["Jinji"]
    # What an authenticator app will make of it: the defaults we verify with.
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert (parsed.secret, parsed.digits, parsed.interval) == (secret, 6, 30)
    assert parsed.issuer == "Jinji"


def test_otpauth_uri_with_another_issuer(secret: str) -> None:
    uri = totp.otpauth_uri(secret, account="tanaka", issuer="Jinji Staging")
    assert parse_qs(urlsplit(uri).query)["issuer"] == ["Jinji Staging"]


def test_qr_svg_is_a_standalone_svg_document(secret: str) -> None:
    svg = totp.qr_svg(totp.otpauth_uri(secret, account="tanaka@acme"))
    assert svg.startswith("<svg")
    assert 'xmlns="http://www.w3.org/2000/svg"' in svg
    assert svg.rstrip().endswith("</svg>")
    assert "<path" in svg
    # The secret is in the picture, not in readable text in the markup.
    assert secret not in svg


# --- recovery codes -------------------------------------------------------------------------

RECOVERY = re.compile(r"[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}")


def test_ten_distinct_well_formed_recovery_codes() -> None:
    codes = totp.new_recovery_codes()
    assert len(codes) == 10
    assert len(set(codes)) == 10
    for code in codes:
        assert RECOVERY.fullmatch(code), code
        assert not set(code) & set("ilou")


def test_recovery_code_count() -> None:
    assert len(totp.new_recovery_codes(3)) == 3
    with pytest.raises(ValueError, match="at least 1"):
        totp.new_recovery_codes(0)


def test_recovery_codes_use_the_whole_alphabet() -> None:
    # 50 bits a code needs all 32 symbols; 1,000 codes (10,000 symbols) miss one with
    # probability about 32 * (31/32)**10_000, i.e. never.
    symbols = {c for code in totp.new_recovery_codes(1_000) for c in code if c != "-"}
    assert len(symbols) == 32


@pytest.mark.parametrize("typed", ["ABCDE-FGHIJ", "abcde fghij", "abcdefghij", " AbCdE-fGhIj\n"])
def test_recovery_code_hash_ignores_case_spaces_and_dashes(typed: str) -> None:
    stored = totp.hash_recovery_code("abcde-fghij")
    assert totp.recovery_code_matches(typed, stored)


def test_recovery_code_lookalikes_are_read_as_digits() -> None:
    stored = totp.hash_recovery_code("0a1b1-c0d1e")
    assert totp.recovery_code_matches("OA1B1-C0D1E", stored)
    assert totp.recovery_code_matches("oaib1-codle", stored)


def test_generated_recovery_code_matches_its_hash_only() -> None:
    first, second = totp.new_recovery_codes(2)
    stored = totp.hash_recovery_code(first)
    assert re.fullmatch(r"[0-9a-f]{64}", stored)
    assert first.replace("-", "") not in stored
    assert totp.recovery_code_matches(first, stored)
    assert totp.recovery_code_matches(first.upper().replace("-", " "), stored)
    assert not totp.recovery_code_matches(second, stored)
    assert not totp.recovery_code_matches(first[:-1], stored)
    assert not totp.recovery_code_matches("", stored)


def test_recovery_code_against_a_corrupt_stored_hash_is_false() -> None:
    assert not totp.recovery_code_matches("abcde-fghjk", "")
    assert not totp.recovery_code_matches("abcde-fghjk", "ä" * 64)
