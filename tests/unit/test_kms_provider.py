"""The AWS KMS provider against moto running as a real HTTP server.

Server mode, not the in-process decorator, so requests go through botocore's real HTTP,
signing, retry and error parsing, as they would against AWS.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.core.exceptions import JsonRESTError
from moto.kms.models import KmsBackend

from jinji.db import Database
from jinji.keys import (
    AssociatedData,
    DecryptionFailed,
    DekCache,
    Envelope,
    KeyUnavailable,
    UnwrapFailed,
    make_provider,
)
from jinji.keys.aws_kms import AwsKmsKeyProvider
from jinji.keys.sql_store import SqlDekStore
from tests.conftest import moto_server

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

REGION = "ap-northeast-1"
TENANT_A = "3f1c9a52-6f0e-4c8e-9a43-1d2b7c5e8f01"
TENANT_B = "9b2e4d61-0a7f-4b3c-8e15-6c9d2f4a7b02"
DEK = bytes(range(32))


@pytest.fixture(scope="module")
def kms_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def kms_enforces_key_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto refuse disabled and pending-deletion keys the way AWS does.

    moto 5.2.5 still encrypts and decrypts with a disabled or pending-deletion key. AWS
    answers DisabledException / KMSInvalidStateException (Encrypt, Decrypt, DisableKey and
    ScheduleKeyDeletion API references; "Key states of AWS KMS keys"). The server runs in
    this process, so patching its backend teaches it that rule while our provider still
    parses the errors off the wire.
    Remove this fixture once moto enforces key state itself.
    """

    def require(state_ok: Callable[[str], bool], backend: KmsBackend, key_id: str) -> None:
        key = backend.keys.get(backend.any_id_to_key_id(key_id))
        if key is None or state_ok(key.key_state):
            return  # unknown keys: moto's own NotFoundException path
        if key.key_state == "Disabled":
            raise JsonRESTError("DisabledException", f"{key.arn} is disabled.")
        raise JsonRESTError("KMSInvalidStateException", f"{key.arn} is {key.key_state}.")

    def usable(state: str) -> bool:
        return state == "Enabled"

    def not_pending(state: str) -> bool:
        return state != "PendingDeletion"

    def guard(name: str, state_ok: Callable[[str], bool], key_arg: str) -> None:
        original = getattr(KmsBackend, name)

        def guarded(self: KmsBackend, *args: Any, **kwargs: Any) -> Any:
            key_id = kwargs.get(key_arg, args[0] if args and key_arg == "key_id" else None)
            if key_id is not None:
                require(state_ok, self, key_id)
            return original(self, *args, **kwargs)

        monkeypatch.setattr(KmsBackend, name, guarded)

    guard("encrypt", usable, "key_id")
    guard("decrypt", usable, "key_id")
    guard("disable_key", not_pending, "key_id")
    guard("schedule_key_deletion", not_pending, "key_id")


@pytest.fixture
def kms(kms_endpoint: str) -> KMSClient:
    return boto3.session.Session().client("kms", region_name=REGION, endpoint_url=kms_endpoint)


@pytest.fixture
def provider(kms_endpoint: str) -> AwsKmsKeyProvider:
    return AwsKmsKeyProvider(REGION, endpoint_url=kms_endpoint)


def key_arn(kek_ref: str) -> str:
    return kek_ref.removeprefix("aws-kms:")


def test_create_makes_a_tagged_symmetric_key(provider: AwsKmsKeyProvider, kms: KMSClient) -> None:
    ref = provider.create(TENANT_A)
    assert ref.startswith(f"aws-kms:arn:aws:kms:{REGION}:")
    meta = kms.describe_key(KeyId=key_arn(ref))["KeyMetadata"]
    assert meta["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert meta["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert meta["KeyState"] == "Enabled"
    tags = kms.list_resource_tags(KeyId=key_arn(ref))["Tags"]
    assert {"TagKey": "jinji:owner", "TagValue": TENANT_A} in tags


def test_create_refuses_a_bad_owner(provider: AwsKmsKeyProvider) -> None:
    with pytest.raises(ValueError, match="owner"):
        provider.create("a:b")


def test_wrap_unwrap_round_trip(provider: AwsKmsKeyProvider) -> None:
    ref = provider.create(TENANT_A)
    wrapped = provider.wrap(ref, TENANT_A, DEK)
    assert DEK not in wrapped
    assert provider.unwrap(ref, TENANT_A, wrapped) == DEK


def test_unwrap_as_another_owner_fails(provider: AwsKmsKeyProvider) -> None:
    ref = provider.create("platform")
    wrapped = provider.wrap(ref, TENANT_A, DEK)
    with pytest.raises(UnwrapFailed):
        provider.unwrap(ref, TENANT_B, wrapped)


def test_tampered_wrapped_key_fails(provider: AwsKmsKeyProvider) -> None:
    ref = provider.create(TENANT_A)
    wrapped = bytearray(provider.wrap(ref, TENANT_A, DEK))
    wrapped[-1] ^= 0x01
    with pytest.raises(UnwrapFailed):
        provider.unwrap(ref, TENANT_A, bytes(wrapped))
    with pytest.raises(UnwrapFailed):
        provider.unwrap(ref, TENANT_A, b"")


def test_unwrap_under_another_kek_fails(provider: AwsKmsKeyProvider) -> None:
    ref_a, ref_b = provider.create(TENANT_A), provider.create(TENANT_A)
    wrapped = provider.wrap(ref_a, TENANT_A, DEK)
    # AWS answers IncorrectKeyException (-> UnwrapFailed); moto answers AccessDeniedException,
    # which the provider deliberately passes through. Either way the DEK stays shut.
    with pytest.raises((UnwrapFailed, ClientError)):
        provider.unwrap(ref_b, TENANT_A, wrapped)


@pytest.mark.parametrize(
    "ref",
    [
        "arn:aws:kms:ap-northeast-1:123456789012:key/abc",
        "aws-kms:not-an-arn",
        "aws-kms:arn:aws:kms:ap-northeast-1:123456789012:alias/jinji",
        "local:platform:" + "0" * 32,
    ],
)
def test_malformed_kek_refs_are_refused(provider: AwsKmsKeyProvider, ref: str) -> None:
    with pytest.raises(ValueError, match="malformed"):
        provider.unwrap(ref, TENANT_A, b"x")


@pytest.mark.usefixtures("kms_enforces_key_state")
def test_destroy_makes_unwrap_fail_for_good(provider: AwsKmsKeyProvider, kms: KMSClient) -> None:
    ref = provider.create(TENANT_A)
    wrapped = provider.wrap(ref, TENANT_A, DEK)
    provider.destroy(ref)

    meta = kms.describe_key(KeyId=key_arn(ref))["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion"
    assert not meta["Enabled"]
    days_left = (meta["DeletionDate"].timestamp() - time.time()) / 86400
    assert 6.9 < days_left <= 7.0
    for _ in range(2):
        with pytest.raises(KeyUnavailable):
            provider.unwrap(ref, TENANT_A, wrapped)
    with pytest.raises(KeyUnavailable):
        provider.wrap(ref, TENANT_A, DEK)
    provider.destroy(ref)  # AWS refuses to disable a pending-deletion key; still a success
    with pytest.raises(KeyUnavailable):
        AwsKmsKeyProvider(REGION, endpoint_url=kms.meta.endpoint_url).unwrap(ref, TENANT_A, wrapped)


@pytest.mark.usefixtures("kms_enforces_key_state")
def test_destroy_racing_another_destroy_succeeds(kms_endpoint: str, kms: KMSClient) -> None:
    client = boto3.session.Session().client("kms", region_name=REGION, endpoint_url=kms_endpoint)
    provider = AwsKmsKeyProvider(REGION, client=client)
    ref = provider.create(TENANT_A)

    errors: list[str] = []

    def other_destroy_wins(params: dict[str, Any], **_: Any) -> None:
        kms.schedule_key_deletion(KeyId=params["KeyId"], PendingWindowInDays=7)

    def record(parsed: dict[str, Any], **_: Any) -> None:
        errors.append(parsed.get("Error", {}).get("Code", "ok"))

    client.meta.events.register("provide-client-params.kms.DisableKey", other_destroy_wins)
    client.meta.events.register("after-call.kms.DisableKey", record)
    provider.destroy(ref)
    assert errors == ["KMSInvalidStateException"]
    assert kms.describe_key(KeyId=key_arn(ref))["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_kek_ref_for_another_region_is_refused(provider: AwsKmsKeyProvider) -> None:
    ref = provider.create(TENANT_A).replace(f":{REGION}:", ":us-east-1:")
    with pytest.raises(ValueError, match="another region"):
        provider.destroy(ref)


@pytest.mark.usefixtures("kms_enforces_key_state")
def test_disabled_key_is_unavailable(provider: AwsKmsKeyProvider, kms: KMSClient) -> None:
    ref = provider.create(TENANT_A)
    wrapped = provider.wrap(ref, TENANT_A, DEK)
    kms.disable_key(KeyId=key_arn(ref).rsplit("/", 1)[1])  # moto takes only the bare id here
    with pytest.raises(KeyUnavailable, match="DisabledException"):
        provider.unwrap(ref, TENANT_A, wrapped)


def test_unknown_key_is_unavailable_and_destroy_is_a_no_op(provider: AwsKmsKeyProvider) -> None:
    ref = f"aws-kms:arn:aws:kms:{REGION}:123456789012:key/{uuid.uuid4()}"
    with pytest.raises(KeyUnavailable, match="NotFoundException"):
        provider.unwrap(ref, TENANT_A, b"x" * 64)
    provider.destroy(ref)


def test_make_provider_builds_a_working_kms_provider(kms_endpoint: str, tmp_path: Path) -> None:
    provider = make_provider(
        "aws-kms", key_dir=tmp_path / "unused", kms_region=REGION, kms_endpoint_url=kms_endpoint
    )
    assert isinstance(provider, AwsKmsKeyProvider)
    ref = provider.create("platform")
    assert provider.unwrap(ref, "platform", provider.wrap(ref, "platform", DEK)) == DEK
    assert not (tmp_path / "unused").exists()


@pytest.mark.usefixtures("kms_enforces_key_state")
async def test_envelope_on_kms_end_to_end(provider: AwsKmsKeyProvider, db: Database) -> None:
    """KMS-wrapped DEKs in the real PostgreSQL store."""
    tenant = str(uuid.uuid4())
    store = SqlDekStore(db)
    cache = DekCache(ttl=300)
    envelope = Envelope(provider, store, cache)
    aad = AssociatedData(tenant, "employees", "salary", "42")

    old_kek = provider.create(tenant)
    await envelope.create_dek(tenant, old_kek)
    blob1 = await envelope.encrypt(tenant, "山田太郎".encode(), aad)
    await envelope.create_dek(tenant, old_kek)
    blob2 = await envelope.encrypt(tenant, b"8500000", aad)
    assert await envelope.decrypt(tenant, blob1, aad) == "山田太郎".encode()
    with pytest.raises(DecryptionFailed):
        await envelope.decrypt(tenant, blob2, AssociatedData(tenant, "employees", "salary", "43"))

    new_kek = provider.create(tenant)
    assert await envelope.rewrap(tenant, new_kek) == 2
    provider.destroy(old_kek)
    cache.clear()
    assert await envelope.decrypt(tenant, blob1, aad) == "山田太郎".encode()
    assert await envelope.decrypt(tenant, blob2, aad) == b"8500000"

    provider.destroy(new_kek)
    cache.clear(tenant)
    with pytest.raises(KeyUnavailable):
        await envelope.decrypt(tenant, blob1, aad)
