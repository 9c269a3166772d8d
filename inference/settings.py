"""Inference settings (prefix ``CREWS_``); every default works with ``crews up``.

The pool is ``CREWS_LLM_URLS``, or, with ``CREWS_LLM_DISCOVER``, every address
of one DNS name (``inference.discovery``); ``CREWS_LLM_OVERFLOW_*`` declares
the managed endpoint that takes requests in a burst (``inference.overflow``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from inference.cache_dir import default_cache_dir
from inference.discovery import DiscoveryURL
from inference.pricing import ModelPrice

DEFAULT_MODEL = "crews-local"
"""The one served model name everywhere (laptop, CI, production): only the URLs differ."""


class InferenceSettings(BaseSettings):
    """Where the LLM pool is and how patiently to call it."""

    model_config = SettingsConfigDict(env_prefix="CREWS_", extra="ignore")

    llm_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://127.0.0.1:8000/v1"],
        description="OpenAI-compatible base URLs of the pool, comma-separated in the environment",
    )
    llm_discover: str = Field(
        "",
        description="http://<headless Service>:<port>/v1: the pool is every address this name resolves to "
        "(A and AAAA records), re-resolved every CREWS_LLM_DISCOVER_INTERVAL_S; replaces CREWS_LLM_URLS",
    )
    llm_discover_interval_s: float = Field(
        5.0, gt=0, description="how often to re-resolve CREWS_LLM_DISCOVER"
    )
    llm_model: str = Field(DEFAULT_MODEL, description="served model name, the same on every endpoint")
    llm_api_key: SecretStr = Field(SecretStr("none"), description="bearer key for the pool (vLLM: --api-key)")
    llm_provider: str = Field("vllm", description="gen_ai.provider.name on spans")
    llm_default_max_tokens: int = Field(
        1024,
        gt=0,
        description="max_tokens when a role sets none (a rambling model must not fill the context)",
    )
    llm_timeout_s: float = Field(120.0, gt=0, description="read timeout of one request")
    llm_connect_timeout_s: float = Field(5.0, gt=0)
    llm_max_retries: int = Field(4, ge=0, description="retries after the first attempt on 429/5xx/timeouts")
    llm_backoff_base_s: float = Field(0.5, ge=0, description="first retry delay; doubles each retry")
    llm_backoff_max_s: float = Field(8.0, ge=0)
    llm_affinity_slack: int = Field(
        2,
        ge=0,
        description="keep a job on its endpoint while it has at most this many more requests in flight",
    )
    llm_endpoint_cooldown_s: float = Field(
        5.0, ge=0, description="avoid an endpoint this long after it failed"
    )
    llm_prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description="USD per million tokens per served model, JSON: "
        '{"crews-local": {"input_per_mtok": 0.2, "output_per_mtok": 0.6}}; a model not listed costs 0',
    )
    llm_overflow_url: str = Field(
        "",
        description="OpenAI-compatible base URL of a managed API that takes requests while the pool is "
        "overloaded (empty: no overflow)",
    )
    llm_overflow_model: str = Field("", description="the model to ask the overflow endpoint for")
    llm_overflow_api_key_env: str = Field(
        "", description="name of the environment variable that holds the overflow endpoint's API key"
    )
    llm_overflow_provider: str = Field("openai", description="gen_ai.provider.name on the overflow's spans")
    llm_overflow_start_waiting: float = Field(
        10.0,
        gt=0,
        description="send new requests to the overflow once this many requests wait in the pool "
        "(vllm:num_requests_waiting summed over its endpoints)",
    )
    llm_overflow_stop_waiting: float = Field(
        2.0, ge=0, description="back to the pool once at most this many requests wait there"
    )
    llm_overflow_drop_params: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["repetition_penalty"],
        description="request parameters the overflow endpoint refuses (vLLM-only ones), comma-separated",
    )
    llm_metrics_interval_s: float = Field(
        2.0, gt=0, description="how often the pool's /metrics are read for the overflow switch"
    )
    local_cache_dir: Path = Field(
        default_factory=default_cache_dir,
        description="where the local vLLM venv and the converted model are kept",
    )
    local_vllm_pip_args: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="extra pip arguments for the vLLM install, space-separated (e.g. an index for CPU torch)",
    )

    @field_validator("llm_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return [url.strip().rstrip("/") for url in value.split(",") if url.strip()]
        return value

    @field_validator("llm_overflow_drop_params", mode="before")
    @classmethod
    def _split_params(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("llm_discover")
    @classmethod
    def _discover_url(cls, value: str) -> str:
        if value.strip():
            DiscoveryURL.parse(value)
        return value.strip().rstrip("/")

    @model_validator(mode="after")
    def _overflow_declared(self) -> Self:
        if not self.llm_overflow_url:
            return self
        missing = [
            name
            for name, value in (
                ("CREWS_LLM_OVERFLOW_MODEL", self.llm_overflow_model),
                ("CREWS_LLM_OVERFLOW_API_KEY_ENV", self.llm_overflow_api_key_env),
            )
            if not value
        ]
        if missing:
            raise ValueError(f"CREWS_LLM_OVERFLOW_URL is set: set {' and '.join(missing)} too")
        if not os.environ.get(self.llm_overflow_api_key_env):
            raise ValueError(
                f"CREWS_LLM_OVERFLOW_API_KEY_ENV names {self.llm_overflow_api_key_env}, which is not set: "
                "put the overflow endpoint's API key in it"
            )
        if self.llm_overflow_model not in self.llm_prices:
            raise ValueError(
                f"CREWS_LLM_PRICES has no price for the overflow model {self.llm_overflow_model!r}: add "
                f'"{self.llm_overflow_model}": {{"input_per_mtok": ..., "output_per_mtok": ...}} '
                "(a managed API is never free)"
            )
        if self.llm_overflow_stop_waiting >= self.llm_overflow_start_waiting:
            raise ValueError(
                f"CREWS_LLM_OVERFLOW_STOP_WAITING ({self.llm_overflow_stop_waiting:g}) must be below "
                f"CREWS_LLM_OVERFLOW_START_WAITING ({self.llm_overflow_start_waiting:g})"
            )
        return self

    def overflow_api_key(self) -> str:
        """The overflow endpoint's API key, read from the variable CREWS_LLM_OVERFLOW_API_KEY_ENV names."""
        return os.environ.get(self.llm_overflow_api_key_env, "")

    @field_validator("local_vllm_pip_args", mode="before")
    @classmethod
    def _split_args(cls, value: object) -> object:
        return value.split() if isinstance(value, str) else value

    @field_validator("llm_urls")
    @classmethod
    def _not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(
                "CREWS_LLM_URLS is empty: give at least one base URL, e.g. http://127.0.0.1:8000/v1"
            )
        return [url.rstrip("/") for url in value]
