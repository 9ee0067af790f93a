"""Typed settings, read from ``HEALTHGRID_*`` environment variables.

Never built at import time: ``create_app(settings)`` and the CLI build one and pass it on,
tests build their own. Nested groups use ``__`` (``HEALTHGRID_FHIR__MAX_COUNT=200``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "dev-secret-change-me"}


class FhirSettings(BaseModel):
    default_count: int = Field(20, ge=1, le=1000)
    max_count: int = Field(500, ge=1, le=5000)
    # Validate every outgoing resource against the R4(B) models of fhir.resources.
    validate_output: bool = True


class WebSettings(BaseModel):
    default_language: Literal["zh", "en"] = "zh"
    timezone: str = "Asia/Shanghai"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HEALTHGRID_", env_nested_delimiter="__", extra="ignore"
    )

    env: Literal["dev", "test", "prod"] = "dev"
    data_dir: Path = Path("./healthgrid-data")
    # Empty means: the embedded SQLite file <data_dir>/healthgrid.sqlite3.
    database_url: str = ""
    secret_key: str = "dev-secret-change-me"
    sql_echo: bool = False
    fhir: FhirSettings = FhirSettings()
    web: WebSettings = WebSettings()

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        if v and not v.startswith(("sqlite", "postgresql")):
            raise ValueError("HEALTHGRID_DATABASE_URL must be a sqlite:// or postgresql:// URL")
        if v.startswith("postgresql://"):
            # psycopg 3 is the driver we ship; plain postgresql:// would pick psycopg2.
            v = "postgresql+psycopg://" + v.removeprefix("postgresql://")
        return v

    @model_validator(mode="after")
    def _no_placeholder_secret_in_prod(self) -> Settings:
        if self.env == "prod" and self.secret_key in PLACEHOLDER_SECRETS:
            raise ValueError("HEALTHGRID_SECRET_KEY must be set to a real secret when HEALTHGRID_ENV=prod")
        return self

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'healthgrid.sqlite3').resolve()}"


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides winning."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
