"""KEKs in AWS KMS: key material never leaves KMS; DEKs travel to it to be wrapped or unwrapped.

Destroying a KEK here is what makes tenant offboarding final: once the key is disabled and
scheduled for deletion, every DEK wrapped under it, and so every backup of that tenant's
data, is unreadable.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from jinji.keys.provider import KeyUnavailable, UnwrapFailed, check_owner

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_kms.type_defs import KeyMetadataTypeDef

_PREFIX = "aws-kms:"
_ARN_RE = re.compile(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+")
_OWNER_TAG = "jinji:owner"
# Only codes that mean "this key will not work again". Throttling, AccessDenied (an IAM
# mistake) and the like propagate unchanged: callers may treat KeyUnavailable as final.
_KEY_GONE = frozenset({"DisabledException", "NotFoundException", "KMSInvalidStateException"})
_BAD_BLOB = frozenset({"InvalidCiphertextException", "IncorrectKeyException"})
# The shortest window AWS allows. The key is unusable from the moment deletion is scheduled;
# the window only delays the irreversible part.
_PENDING_WINDOW_DAYS = 7


def _context(owner: str) -> dict[str, str]:
    # CloudTrail logs the encryption context in clear text: ids and purpose only, never
    # names or customer content.
    return {_OWNER_TAG: owner, "jinji:purpose": "dek"}


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _raise_mapped(exc: ClientError) -> None:
    code = _code(exc)
    if code in _KEY_GONE:
        raise KeyUnavailable(f"KMS key is unusable ({code})") from exc
    if code in _BAD_BLOB:
        raise UnwrapFailed(f"wrapped key does not open under this KEK and owner ({code})") from exc


def _key_arn(kek_ref: str, region: str) -> str:
    arn = kek_ref.removeprefix(_PREFIX)
    if arn == kek_ref or not _ARN_RE.fullmatch(arn):
        raise ValueError("malformed aws-kms kek_ref")
    # A key in another region looks "not found" from here, and destroy() reads not found as
    # already destroyed: refuse rather than report a shredding that did not happen.
    if arn.split(":")[3] != region:
        raise ValueError(f"aws-kms kek_ref is for another region than {region}")
    return arn


class AwsKmsKeyProvider:
    def __init__(
        self, region: str, endpoint_url: str | None = None, client: KMSClient | None = None
    ) -> None:
        if client is None:
            # Own session: boto3's default session is not safe to share across the threads
            # asyncio.to_thread runs us on. Bounded timeouts so a KMS outage fails requests
            # instead of hanging them.
            config = Config(
                connect_timeout=5, read_timeout=10, retries={"mode": "standard", "max_attempts": 3}
            )
            client = boto3.session.Session().client(
                "kms", region_name=region, endpoint_url=endpoint_url, config=config
            )
        self._kms = client
        self._region = client.meta.region_name

    def create(self, owner: str) -> str:
        resp = self._kms.create_key(
            Description=f"Jinji KEK for {check_owner(owner)}",
            KeyUsage="ENCRYPT_DECRYPT",
            KeySpec="SYMMETRIC_DEFAULT",
            Tags=[{"TagKey": _OWNER_TAG, "TagValue": owner}],
        )
        return _PREFIX + resp["KeyMetadata"]["Arn"]

    def wrap(self, kek_ref: str, owner: str, dek: bytes) -> bytes:
        arn = _key_arn(kek_ref, self._region)
        try:
            resp = self._kms.encrypt(KeyId=arn, Plaintext=dek, EncryptionContext=_context(owner))
        except ClientError as exc:
            _raise_mapped(exc)
            raise
        return resp["CiphertextBlob"]

    def unwrap(self, kek_ref: str, owner: str, wrapped: bytes) -> bytes:
        arn = _key_arn(kek_ref, self._region)
        if not wrapped:
            raise UnwrapFailed("wrapped key is empty")
        try:
            # KeyId pins the KEK: without it KMS would accept a blob made under any key we
            # may use, and a row could be pointed at another tenant's wrapped DEK.
            resp = self._kms.decrypt(
                CiphertextBlob=wrapped, KeyId=arn, EncryptionContext=_context(owner)
            )
        except ClientError as exc:
            _raise_mapped(exc)
            raise
        return resp["Plaintext"]

    def destroy(self, kek_ref: str) -> None:
        arn = _key_arn(kek_ref, self._region)
        meta = self._describe(arn)
        if meta is None or meta.get("KeyState") == "PendingDeletion":
            return
        # The id KMS itself reports for this ARN: AWS accepts it or the ARN, moto (our test
        # server) only the id.
        key_id = meta["KeyId"]
        try:
            # Redundant with scheduling deletion on real AWS, but it takes effect even if the
            # scheduling call fails (say, a missing kms:ScheduleKeyDeletion permission).
            self._kms.disable_key(KeyId=key_id)
            self._kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=_PENDING_WINDOW_DAYS)
        except ClientError as exc:
            # A concurrent destroy got there first: AWS refuses both calls on a key pending
            # deletion. Anything else is a real failure.
            if _code(exc) not in {"NotFoundException", "KMSInvalidStateException"}:
                raise
            meta = self._describe(arn)
            if meta is not None and meta.get("KeyState") != "PendingDeletion":
                raise

    def _describe(self, arn: str) -> KeyMetadataTypeDef | None:
        try:
            return self._kms.describe_key(KeyId=arn)["KeyMetadata"]
        except ClientError as exc:
            if _code(exc) == "NotFoundException":
                return None  # deleted for good once the pending window has passed
            raise
