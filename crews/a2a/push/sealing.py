"""Webhook secrets at rest: a push config's token and credentials, sealed with Fernet before Redis sees them.

The key is the operator's, ``CREWS_A2A_PUSH_SECRET_KEY``: one or more Fernet keys
(comma-separated; the first seals, every one opens, so a key is rotated by
putting the new one first and dropping the old one once the configs sealed
with it have expired). Fernet (``cryptography``: AES-128-CBC with an
HMAC-SHA256 tag, a timestamp and a random IV) means a value in Redis can be
neither read nor changed without the key. Without a key there is no sealer,
and a config that carries a secret is refused (``crews.a2a.push.configs``).

Make a key with ``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``.
"""

from __future__ import annotations

from cryptography.fernet import InvalidToken, MultiFernet
from pydantic import BaseModel, SecretStr

from crews.a2a.settings import KEY_SETTING, MAKE_KEY, fernet_keys


class PushSecrets(BaseModel):
    """What a webhook's receiver checks: the spec's token and the authentication's credentials."""

    token: str = ""
    credentials: str = ""

    def __bool__(self) -> bool:
        return bool(self.token or self.credentials)


class SealedUnreadable(Exception):
    """A sealed value opens with none of the keys: the key was changed without keeping the old one."""


class PushSealer:
    """Seals and opens ``PushSecrets`` with the operator's keys."""

    def __init__(self, key: SecretStr) -> None:
        keys = fernet_keys(key.get_secret_value())
        if not keys:
            raise ValueError(f"{KEY_SETTING} holds no key; make one with {MAKE_KEY}")
        self._fernet = MultiFernet(keys)

    def seal(self, secrets: PushSecrets) -> str:
        return self._fernet.encrypt(secrets.model_dump_json().encode()).decode()

    def open(self, sealed: str) -> PushSecrets:
        try:
            plain = self._fernet.decrypt(sealed.encode())
        except InvalidToken as exc:
            raise SealedUnreadable(
                f"a webhook's secrets open with none of the keys in {KEY_SETTING}: keep the key they were "
                "sealed with in the list (after the new one) until those webhooks' tasks have expired"
            ) from exc
        return PushSecrets.model_validate_json(plain)
