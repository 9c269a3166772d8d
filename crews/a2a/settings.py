"""Settings of the crews' A2A endpoints (prefix ``CREWS_A2A_``); every default works with ``crews up``."""

from __future__ import annotations

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

KEY_SETTING = "CREWS_A2A_PUSH_SECRET_KEY"
MAKE_KEY = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'


def fernet_keys(value: str) -> list[Fernet]:
    """The Fernet keys of ``CREWS_A2A_PUSH_SECRET_KEY`` (comma-separated); ``ValueError`` names the bad one."""
    keys: list[Fernet] = []
    for position, key in enumerate((k.strip() for k in value.split(",") if k.strip()), start=1):
        try:
            keys.append(Fernet(key))
        except ValueError as exc:
            raise ValueError(
                f"{KEY_SETTING}: key {position} is not a Fernet key (32 bytes, URL-safe base64); make one with {MAKE_KEY}"
            ) from exc
    return keys


class A2ASettings(BaseSettings):
    """Discovery and push notifications of the crews served as A2A agents."""

    model_config = SettingsConfigDict(env_prefix="CREWS_A2A_", extra="ignore")

    default_crew: str = Field(
        "", description="the crew whose card the origin serves at /.well-known/agent-card.json (empty: none)"
    )
    push_allow_private: bool = Field(
        False,
        description="allow webhook URLs on loopback, link-local, private or metadata addresses (local use, tests)",
    )
    push_max_attempts: int = Field(8, gt=0, description="deliveries of one update before it is dropped")
    push_backoff_s: float = Field(1.0, gt=0, description="wait before the first retry; doubles each retry")
    push_backoff_max_s: float = Field(300.0, gt=0, description="longest wait between retries")
    push_timeout_s: float = Field(10.0, gt=0, description="how long one delivery may take")
    push_max_configs: int = Field(10, gt=0, description="most webhooks one task may have")
    push_secret_key: SecretStr | None = Field(
        None,
        description="Fernet key(s), comma-separated, the first sealing: webhook tokens and credentials are "
        "kept in Redis sealed with it (crews.a2a.push.sealing); unset: a push config with a token or "
        "credentials is refused",
    )

    @field_validator("push_secret_key")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        fernet_keys(value.get_secret_value())  # a bad key stops the process at start, naming the setting
        return value
