"""Time-based one-time passwords (RFC 6238) and recovery codes for second-factor sign-in.

TOTP parameters are the ones every authenticator app supports without question: HMAC-SHA-1,
6 digits, 30-second steps. One step either side is accepted for clock drift and typing time.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
import secrets
import time

import pyotp
import segno

DIGITS = 6
STEP_SECONDS = 30
# Steps accepted either side of now: RFC 6238 section 5.2 recommends at most one.
WINDOW = 1

_CODE = re.compile(r"[0-9]{6}")

# Crockford's base32 alphabet: 32 symbols (5 bits each), without i, l, o and u. 0 and 1 stay
# because their look-alikes are gone and are mapped back to them when a code is typed.
_RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_RECOVERY_LENGTH = 10  # 10 x 5 = 50 bits
_RECOVERY_LOOKALIKES = str.maketrans({"i": "1", "l": "1", "o": "0"})


def new_secret() -> str:
    """A new shared secret: 32 base32 characters, 160 bits (the HMAC-SHA-1 key size RFC 4226
    recommends)."""
    return pyotp.random_base32(32)


def otpauth_uri(secret: str, *, account: str, issuer: str = "Jinji") -> str:
    """The ``otpauth://totp/...`` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account, issuer_name=issuer
    )


def qr_svg(uri: str) -> str:
    """The URI as a standalone SVG document (with its namespace, so it also works as an
    ``<img>`` source or a download, not only inline in HTML)."""
    # Error correction M (15%): survives a slightly blurry phone camera without making the
    # code, which holds a 32-character secret, needlessly dense.
    qr = segno.make(uri, error="m", micro=False, boost_error=False)
    out = io.BytesIO()
    qr.save(out, kind="svg", scale=4, border=4, xmldecl=False, svgns=True, title="TOTP QR code")
    return out.getvalue().decode("utf-8")


def verify_code(
    secret: str, code: str, *, last_step: int | None, now: float | None = None
) -> int | None:
    """The time step ``code`` belongs to, or None when it is wrong, too old or already used.

    Store the returned step (users.totp_last_step) and pass it back as ``last_step`` next time:
    a code, or any code from an earlier step, is then accepted only once (RFC 6238 section 5.2).
    """
    code = "".join(code.split())  # apps show "123 456"; people type it that way
    # fullmatch with [0-9]: str.isdigit would also accept other scripts' digits ("١٢٣٤٥٦").
    if _CODE.fullmatch(code) is None:
        return None
    current = int((time.time() if now is None else now) // STEP_SECONDS)
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    matched: int | None = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        if last_step is not None and step <= last_step:
            continue
        # The step is the RFC 4226 counter: generate_otp takes it as is, where at() would turn
        # a time back into the step we already have. No early exit: every candidate costs the
        # same, and when two steps share a code the latest wins, which burns the most steps for
        # the replay guard.
        if hmac.compare_digest(totp.generate_otp(step).encode(), code.encode()):
            matched = step
    return matched


def new_recovery_codes(count: int = 10) -> list[str]:
    """``count`` distinct single-use codes, formatted ``xxxxx-xxxxx``; show them once, store
    only :func:`hash_recovery_code` of each."""
    if count < 1:
        raise ValueError("count must be at least 1")
    codes: list[str] = []
    while len(codes) < count:
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        code = f"{raw[:5]}-{raw[5:]}"
        if code not in codes:
            codes.append(code)
    return codes


def _normalise_recovery_code(code: str) -> str:
    # Case, spaces and dashes are presentation; i, l and o can only be typos of 1, 1 and 0.
    return "".join(code.split()).replace("-", "").lower().translate(_RECOVERY_LOOKALIKES)


def hash_recovery_code(code: str) -> str:
    """SHA-256 hex digest of the normalised code.

    A fast hash is enough here, unlike for passwords: a recovery code is 50 random bits, not
    something a person chose, so there is no dictionary to try and brute-forcing a leaked hash
    means 2**49 guesses on average. A slow hash would only hurt us, because sign-in with a
    recovery code has to compare against each of the user's (up to 10) unused codes.
    """
    return hashlib.sha256(_normalise_recovery_code(code).encode("utf-8")).hexdigest()


def recovery_code_matches(code: str, code_hash: str) -> bool:
    # Bytes, not str: compare_digest refuses non-ASCII str, and code_hash comes from storage.
    return hmac.compare_digest(hash_recovery_code(code).encode(), code_hash.encode("utf-8"))
