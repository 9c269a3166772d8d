"""Inference settings (prefix ``CREWS_``); every default works with ``crews up``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from inference.cache_dir import default_cache_dir
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
