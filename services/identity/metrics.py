"""Identity's domain metrics. Labels are outcomes and grant types only, never user or
tenant ids."""

from prometheus_client import Counter, Histogram

LOGINS = Counter(
    "jinji_identity_logins_total",
    "Password login attempts by result (success, challenge, failure, throttled).",
    ["result"],
)
MFA = Counter(
    "jinji_identity_mfa_total",
    "Second-factor checks by method (totp, recovery_code, enrollment) and result.",
    ["method", "result"],
)
TOKENS = Counter(
    "jinji_identity_tokens_issued_total",
    "Access tokens issued by grant (login, refresh_token, client_credentials).",
    ["grant"],
)
PASSWORD_HASH_SECONDS = Histogram(
    "jinji_identity_password_hash_seconds",
    "Time to hash or verify one password (argon2id).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
