"""Signatures over everything this project unpickles: a trust root the data plane cannot write.

A sha256 next to the file it describes proves nothing to a reader: whoever can write the bucket
can replace both. So every record that names a digest of something to be unpickled (a registry
index entry, a champion entry, a training snapshot's ``metadata.json``, a candidate pickle's
``.sig.json``) carries a signature made with a key the data plane cannot use:

* prod (``conf/prod/globals.yml``): an AWS KMS asymmetric key (``ECC_NIST_P256``, ``SIGN_VERIFY``).
  Training signs (``kms:Sign``), every reader verifies (``kms:Verify``); nobody holds the private key.
* base/dev (``conf/base/globals.yml``): an Ed25519 key in ``conf/local/`` (git-ignored, outside
  ``data/``), generated the first time something is signed.

What is signed is a short message (purpose + sha256 of the canonical JSON of the record without its
signature), so the same bytes go to KMS (``MessageType=RAW`` stays far below its 4 KB limit) and to
Ed25519. The purpose keeps a signature from being replayed as another kind of record. The key a
record *names* is never used to verify it: the configured key is.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from readmit_kedro.io.atomic import ModelIntegrityError

__all__ = [
    "DEFAULT_KEY_FILE",
    "SIGNATURE_FIELD",
    "AwsKmsKey",
    "Ed25519KeyFile",
    "SignatureError",
    "SigningKey",
    "signing_key",
]

SIGNATURE_FIELD = "signature"
# conf/base/globals.yml's model_signing.filepath, relative to the project root (where kedro runs):
# the default of the registry CLI and of code that builds a registry without Kedro.
DEFAULT_KEY_FILE = "conf/local/model_signing_ed25519.pem"
_FORMAT = b"readmit-kedro signed record v1"


class SignatureError(ModelIntegrityError):
    """A record is unsigned, or its signature does not verify with the configured key."""


def canonical_json(payload: Any) -> bytes:
    """One byte form per JSON value (sorted keys, no spaces), as written and as read back."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _message(purpose: str, payload: Any) -> bytes:
    digest = hashlib.sha256(canonical_json(payload)).hexdigest()
    return b"\n".join([_FORMAT, purpose.encode(), digest.encode()])


class SigningKey(ABC):
    """Signs and verifies records; subclasses hold the key material or its handle."""

    algorithm: str

    @property
    @abstractmethod
    def key_id(self) -> str:
        """A name of the key for records and error messages (never used to pick the key)."""

    @abstractmethod
    def _sign(self, message: bytes) -> bytes: ...

    @abstractmethod
    def _verify(self, message: bytes, signature: bytes) -> bool: ...

    def sign(self, purpose: str, record: Mapping[str, Any]) -> dict[str, Any]:
        """``record`` with a ``signature`` field over everything else in it."""
        payload = _json_value({k: v for k, v in record.items() if k != SIGNATURE_FIELD})
        signature = {
            "algorithm": self.algorithm,
            "key_id": self.key_id,
            "value": base64.b64encode(self._sign(_message(purpose, payload))).decode(),
        }
        return {**payload, SIGNATURE_FIELD: signature}

    def verify(self, purpose: str, record: Any, what: str) -> dict[str, Any]:
        """``record`` if its signature verifies for ``purpose``; :class:`SignatureError` if not."""
        signature = record.get(SIGNATURE_FIELD) if isinstance(record, Mapping) else None
        if not isinstance(signature, Mapping) or not isinstance(signature.get("value"), str):
            raise SignatureError(
                f"refusing {what}: it carries no signature, so nothing vouches for the digest it "
                f"names (expected one by {self.key_id}; records from before signing must be "
                "registered again by a training run)"
            )
        try:
            raw = base64.b64decode(signature["value"], validate=True)
        except ValueError:
            raw = b""
        payload = {k: v for k, v in record.items() if k != SIGNATURE_FIELD}
        if signature.get("algorithm") != self.algorithm or not (
            raw and self._verify(_message(purpose, payload), raw)
        ):
            raise SignatureError(
                f"refusing {what}: its signature does not verify with {self.key_id} "
                f"({self.algorithm}); it was changed after signing or signed by another key"
            )
        return dict(record)


class Ed25519KeyFile(SigningKey):
    """An Ed25519 private key in a PEM file outside the data plane (base/dev).

    Created (mode 0600) the first time something is signed; verifying without it fails, because
    a fresh key could not vouch for anything signed before.
    """

    algorithm = "ed25519"

    def __init__(self, filepath: str | os.PathLike[str]) -> None:
        self._path = Path(filepath)
        self._key: Any = None

    @property
    def key_id(self) -> str:
        return f"the Ed25519 key {self._path}"

    def _private_key(self, *, create: bool) -> Any:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        if self._key is None:
            if not self._path.exists():
                if not create:
                    raise SignatureError(
                        f"cannot verify any signature: the model-signing key {self._path} does "
                        "not exist (conf model_signing.filepath; a training run creates it)"
                    )
                self._path.parent.mkdir(parents=True, exist_ok=True)
                pem = Ed25519PrivateKey.generate().private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                self._create(pem)
            key = serialization.load_pem_private_key(self._path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise SignatureError(f"{self._path} is not an Ed25519 private key")
            self._key = key
        return self._key

    def _create(self, pem: bytes) -> None:
        """Publish the new key in one step; if another process got there first, keep its key."""
        # A name of its own per caller (mkstemp, mode 0600): threads of one process share a pid.
        fd, tmp = tempfile.mkstemp(prefix=f".{self._path.name}.", dir=self._path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        try:
            os.link(tmp, self._path)  # fails if the key exists: never replace a key in use
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)

    def _sign(self, message: bytes) -> bytes:
        return self._private_key(create=True).sign(message)

    def _verify(self, message: bytes, signature: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature

        try:
            self._private_key(create=False).public_key().verify(signature, message)
        except InvalidSignature:
            return False
        return True


class AwsKmsKey(SigningKey):
    """An AWS KMS asymmetric key (prod): ``kms:Sign`` to sign, ``kms:Verify`` to verify.

    ``key_id`` is the key ARN (an alias works too, but an alias can be re-pointed). ``endpoint_url``
    is for an AWS-compatible endpoint (tests use moto's server); credentials come from the default
    AWS chain (the ECS task role).
    """

    algorithm = "ECDSA_SHA_256"

    def __init__(
        self, key_id: str, region: str | None = None, endpoint_url: str | None = None
    ) -> None:
        if not key_id:
            raise ValueError("model_signing.key_id is required for the aws_kms backend")
        self._key_id = key_id
        self._region = region
        self._endpoint_url = endpoint_url
        self._client: Any = None

    @property
    def key_id(self) -> str:
        return f"the KMS key {self._key_id}"

    def _kms(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client(
                "kms", region_name=self._region, endpoint_url=self._endpoint_url
            )
        return self._client

    def _sign(self, message: bytes) -> bytes:
        response = self._kms().sign(
            KeyId=self._key_id, Message=message, MessageType="RAW", SigningAlgorithm=self.algorithm
        )
        return response["Signature"]

    def _verify(self, message: bytes, signature: bytes) -> bool:
        kms = self._kms()
        try:
            response = kms.verify(
                KeyId=self._key_id,
                Message=message,
                MessageType="RAW",
                Signature=signature,
                SigningAlgorithm=self.algorithm,
            )
        except kms.exceptions.KMSInvalidSignatureException:
            return False
        return bool(response.get("SignatureValid"))


def signing_key(settings: SigningKey | Mapping[str, Any] | None) -> SigningKey:
    """The key of a ``model_signing`` conf block; ``None`` is base's local key file."""
    if isinstance(settings, SigningKey):
        return settings
    settings = dict(settings or {"backend": "ed25519", "filepath": DEFAULT_KEY_FILE})
    backend = settings.pop("backend", None)
    if backend == "ed25519":
        return Ed25519KeyFile(settings["filepath"])
    if backend == "aws_kms":
        return AwsKmsKey(
            settings["key_id"], settings.get("region"), settings.get("endpoint_url") or None
        )
    raise ValueError(f"model_signing.backend must be 'ed25519' or 'aws_kms', not {backend!r}")


def _json_value(payload: Any) -> Any:
    """``payload`` as it will read back from JSON (tuples become lists), so both sign alike."""
    return json.loads(json.dumps(payload))
