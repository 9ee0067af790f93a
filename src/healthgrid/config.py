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


class SecuritySettings(BaseModel):
    # AES-256-GCM keys for personal information at rest, by key id (base64 of 32 bytes);
    # the current one encrypts, all of them decrypt. Empty in dev: kept in the data dir.
    pii_keys: dict[str, str] = {}
    pii_current_key: str = ""
    # HMAC key of the blind index (find an ID number without decrypting); never rotates.
    blind_index_key: str = ""
    session_idle_minutes: int = Field(15, ge=1, le=24 * 60)
    session_max_hours: int = Field(12, ge=1, le=24 * 7)
    # "auto": Secure when the request came over https (behind a TLS proxy, run uvicorn with
    # --proxy-headers); "always" in production behind TLS; "never" for plain-http labs.
    cookie_secure: Literal["auto", "always", "never"] = "auto"
    # Argon2id cost (RFC 9106 §4, second recommended option: t=3, 64 MiB). Each hash keeps
    # its own parameters, so raising them later re-hashes nothing and locks nobody out.
    argon2_time_cost: int = Field(3, ge=1, le=20)
    argon2_memory_kib: int = Field(65536, ge=1024)
    password_min_length: int = Field(10, ge=8, le=128)
    password_max_age_days: int = Field(90, ge=0)  # 0: never expires
    lockout_threshold: int = Field(5, ge=1)
    lockout_minutes: int = Field(15, ge=1)
    # Failed log-ins from one address within the lock-out window before it is refused.
    address_failure_limit: int = Field(20, ge=1)
    # Network logs are kept at least six months (网络安全法 Art. 21).
    audit_retention_days: int = Field(183, ge=183)
    break_glass_min_reason: int = Field(10, ge=4)
    totp_issuer: str = "HealthGrid"
    # Origins allowed to call the API from a browser; none by default (no CORS headers).
    cors_origins: list[str] = []


class PatientSettings(BaseModel):
    """The master patient index's matcher (patients/domain.py): match probabilities at or
    above ``link_threshold`` link a registration to an existing record automatically; at or
    above ``review_threshold`` they go to the review queue; below, a new record is made."""

    link_threshold: float = Field(0.99, gt=0, lt=1)
    review_threshold: float = Field(0.5, gt=0, lt=1)
    # P(two records picked at random are the same person): about 1 / the number of residents
    prior: float = Field(1e-6, gt=0, lt=1)
    max_candidates: int = Field(500, ge=10, le=10_000)  # per registration, from the blocks

    @model_validator(mode="after")
    def _ordered(self) -> PatientSettings:
        if self.review_threshold > self.link_threshold:
            raise ValueError("patients.review_threshold must not exceed patients.link_threshold")
        return self


class NotificationSettings(BaseModel):
    # Every message goes through these senders in turn (notifications/service.py); "inbox"
    # stores it for the inbox page, "log" writes a line without the text.
    senders: list[str] = ["inbox"]


class SchedulingSettings(BaseModel):
    """Booking rules (scheduling/service.py) and the defaults of new schedules (§3.6)."""

    max_pending: int = Field(5, ge=1, le=100)  # appointments booked but not yet attended
    cancel_before_hours: float = Field(2, ge=0, le=14 * 24)  # cancellation deadline
    noshow_limit: int = Field(3, ge=0, le=100)  # 0: never suspend
    noshow_window_days: int = Field(90, ge=1, le=3650)
    noshow_grace_minutes: int = Field(30, ge=0, le=24 * 60)  # after the session ends
    waitlist_offer_minutes: int = Field(30, ge=1, le=7 * 24 * 60)
    reminder_minute: int = Field(18 * 60, ge=0, lt=24 * 60)  # local time the day before
    reserve_ratio: float = Field(0.30, ge=0, le=1)
    reserve_lead_days: int = Field(14, ge=0, le=90)
    release_back_hours: int = Field(48, ge=0, le=24 * 30)
    open_days_ahead: int = Field(7, ge=0, le=90)
    release_minute: int = Field(8 * 60, ge=0, lt=24 * 60)


class ReferralSettings(BaseModel):
    """Two-way referral (referrals/): service levels (§3.5 [EX]) and the force of each
    criteria rule (referrals/criteria.py: block | warn | off per rule code)."""

    urgent_accept_hours: float = Field(2, gt=0, le=72)
    routine_accept_hours: float = Field(24, gt=0, le=14 * 24)
    followup_days: int = Field(14, ge=1, le=90)  # §3.1: follow up within two weeks
    urgent_slot_days: int = Field(3, ge=0, le=30)  # an urgent referral's place must be this soon
    routine_slot_days: int = Field(21, ge=0, le=90)  # how far ahead a routine referral looks
    # Book reserved places for paper referrals too (a free-text reference instead of a
    # referral sent through the platform); off: §3.6 asks for a submitted/accepted referral.
    paper_referrals: bool = False
    criteria: dict[str, str] = {}

    @field_validator("criteria")
    @classmethod
    def _modes(cls, v: dict[str, str]) -> dict[str, str]:
        # The rule codes themselves are checked against referrals/criteria.py by create_app
        # (config imports no context).
        bad = {k: m for k, m in v.items() if m not in ("block", "warn", "off")}
        if bad:
            raise ValueError(f"referral criteria modes are block, warn or off; got {bad}")
        return v


class SurveillanceSettings(BaseModel):
    """Early warning (surveillance/detection.py, signals.py; ../shared/specs/domain-rules.md
    §5.4-§5.5): which detectors run daily and with what parameters, the signal clocks."""

    detection_enabled: bool = True
    detection_hour: int = Field(1, ge=0, le=23)  # local hour from which yesterday is detected
    # CIDARS moving percentile: 5 weeks x 5 years (Zhang et al. 2017); no signal unless at
    # least mpm_min_years of those years are observed (the county reported then).
    mpm_years: int = Field(5, ge=1, le=10)
    mpm_half_width_weeks: int = Field(2, ge=0, le=4)
    mpm_min_years: int = Field(3, ge=1, le=10)
    mpm_min_cases: int = Field(1, ge=1, le=1000)
    # EARS C3 on feed counts (Hutwagner et al. 2003); min_sigma damps alarms after quiet runs
    ears_cutoff: float = Field(2.0, gt=0, le=20)
    ears_min_sigma: float = Field(1.0, ge=0, le=100)
    ears_min_count: int = Field(3, ge=1, le=100_000)
    # CUSUM on feed proportions (R surveillance::algo.cusum defaults for k and h)
    cusum_k: float = Field(1.04, ge=0, le=10)
    cusum_h: float = Field(2.26, gt=0, le=50)
    cusum_baseline_days: int = Field(28, ge=7, le=365)
    cusum_warmup_days: int = Field(28, ge=0, le=365)
    # Space-time permutation scan over counties (Kulldorff et al. 2005)
    scan_enabled: bool = True
    scan_study_days: int = Field(56, ge=14, le=365)
    scan_max_days: int = Field(7, ge=1, le=30)
    scan_replicates: int = Field(999, ge=9, le=99_999)
    scan_p_value: float = Field(0.01, gt=0, lt=1)
    scan_min_cases: int = Field(3, ge=2, le=10_000)
    # Signals: no new signal for a disease (or feed metric) and county within this many days
    # of the last closed one (§5.4 [EX]); verification due this many hours after generation.
    suppression_days: int = Field(7, ge=0, le=90)
    verification_hours: int = Field(24, ge=1, le=24 * 7)
    feed_max_rows: int = Field(20_000, ge=1, le=1_000_000)


class ResultsSettings(BaseModel):
    """Shared results (results/): the HL7 v2 MLLP listener (``healthgrid results mllp``) and
    the limits of every ingestion channel."""

    mllp_host: str = "127.0.0.1"  # the interface to listen on; put a TLS tunnel or VPN in front
    mllp_port: int = Field(2575, ge=1, le=65535)
    # The integration account the listener acts as (a facility administrator of the sending
    # hospital, or a division-scoped account for a regional gateway): its results.submit grants
    # decide which MSH-4 organisations it takes.
    mllp_user: str = ""
    mllp_idle_seconds: int = Field(600, ge=5, le=86_400)  # a silent connection is closed after
    mllp_workers: int = Field(2, ge=1, le=32)  # messages ingested at once (threads)
    max_message_bytes: int = Field(4 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # A Python codec read instead of MSH-18, for senders that declare one charset and send another
    hl7_charset: str = ""


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
    security: SecuritySettings = SecuritySettings()
    patients: PatientSettings = PatientSettings()
    notifications: NotificationSettings = NotificationSettings()
    scheduling: SchedulingSettings = SchedulingSettings()
    referrals: ReferralSettings = ReferralSettings()
    surveillance: SurveillanceSettings = SurveillanceSettings()
    results: ResultsSettings = ResultsSettings()

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
    def _no_placeholder_secret_outside_dev(self) -> Settings:
        if self.env == "dev":
            return self
        if self.secret_key in PLACEHOLDER_SECRETS or len(self.secret_key) < 32:
            raise ValueError(f"HEALTHGRID_SECRET_KEY must be a real secret of at least 32 characters"
                             f" when HEALTHGRID_ENV={self.env}")
        sec = self.security
        if not sec.pii_keys or sec.pii_current_key not in sec.pii_keys:
            raise ValueError("HEALTHGRID_SECURITY__PII_KEYS and HEALTHGRID_SECURITY__PII_CURRENT_KEY"
                             f" must be set when HEALTHGRID_ENV={self.env} (healthgrid keys generate)")
        if sec.blind_index_key in PLACEHOLDER_SECRETS or len(sec.blind_index_key) < 32:
            raise ValueError("HEALTHGRID_SECURITY__BLIND_INDEX_KEY must be a real secret of at least"
                             f" 32 characters when HEALTHGRID_ENV={self.env}")
        return self

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'healthgrid.sqlite3').resolve()}"


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides winning."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
