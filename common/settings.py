"""Configuration from the environment (pydantic-settings). Built on demand, never at import."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from common.payload_codec import PayloadKeys

ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET = "dev-only-secret-change-me-0123456789abcdef"
DEV_SIGNING_SECRET = "dev-only-signing-secret-change-me-0123456789"
DEV_PAYLOAD_KEYS = "dev:p0wbdV3sofXOHQVvsz09jNmQ4SndkP88Joo6hMvk9zo="
"""The payload key of development and the tests (not secret: it is in the repository),
so that the encrypted path is the one every run exercises (docs/encryption.md)."""
ADDRESS = r"^$|^\S+:\d{1,5}$"
ASYMMETRIC_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
"""``host:port`` of a listening socket, or empty for none."""


class Settings(BaseSettings):
    # hide_input_in_errors: a refused setting's error never repeats the values (secrets).
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", hide_input_in_errors=True)

    environment: str = Field(default="development", alias="APPROVALS_ENV")
    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    temporal_address: str = Field(default="localhost:7233", alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field(default="default", alias="TEMPORAL_NAMESPACE")
    task_queue: str = Field(default="approvals", alias="APPROVALS_TASK_QUEUE")
    delivery_task_queue: str = Field(
        default="approvals-deliveries", min_length=1, alias="APPROVALS_DELIVERY_TASK_QUEUE"
    )
    """Where the delivery passes run (``approvals worker --only deliveries``), so that a
    burst of notices never takes workflow tasks or activity slots from the approvals."""
    policy_dir: Path = Field(default=ROOT / "policies", alias="APPROVALS_POLICY_DIR")
    org_file: Path = Field(default=ROOT / "org" / "demo.yaml", alias="APPROVALS_ORG_FILE")
    data_dir: Path = Field(default=ROOT / ".data", alias="APPROVALS_DATA_DIR")
    api_host: str = Field(default="127.0.0.1", alias="APPROVALS_API_HOST")
    api_port: int = Field(default=8000, alias="APPROVALS_API_PORT")
    token_secret: str = Field(default=DEV_SECRET, alias="APPROVALS_TOKEN_SECRET")
    signing_secret: str = Field(default=DEV_SIGNING_SECRET, alias="APPROVALS_SIGNING_SECRET")
    token_ttl_hours: int = Field(default=24 * 30, alias="APPROVALS_TOKEN_TTL_HOURS")
    temporal_ui_port: int = Field(default=8233, alias="APPROVALS_TEMPORAL_UI_PORT")
    rpc_timeout_seconds: float = Field(default=10.0, alias="APPROVALS_RPC_TIMEOUT_SECONDS")
    worker_max_cached_workflows: int = Field(
        default=1000, ge=0, alias="APPROVALS_WORKER_MAX_CACHED_WORKFLOWS"
    )
    workflow_sandbox: bool = Field(default=False, alias="APPROVALS_WORKFLOW_SANDBOX")
    """Run workflow code in the SDK's sandbox. Off in the worker: the tests run every
    workflow and replay every stored history inside it, which is where it catches a
    non-deterministic call; in production it costs about a quarter of the worker's CPU
    (README "Changing workflow code")."""
    worker_max_concurrent_workflow_tasks: int = Field(
        default=100, ge=2, alias="APPROVALS_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS"
    )
    worker_max_concurrent_activities: int = Field(
        default=100, ge=1, alias="APPROVALS_WORKER_MAX_CONCURRENT_ACTIVITIES"
    )
    operator_language: Literal["zh-CN", "en"] = Field(
        default="en", alias="APPROVALS_OPERATOR_LANGUAGE"
    )
    """The language of what the Temporal UI shows of a request (its summary, route and
    current details), read by operators. English by default, as the logs, the error
    messages and the runbooks they are read with are; ``zh-CN`` for a team that reads
    Chinese. A request keeps the language it was submitted with (it is in its input)."""
    # The API's database pool. A request holds at most one connection, and never
    # while it waits on Temporal, so this bounds concurrent database work only.
    db_pool_size: int = Field(default=10, ge=1, alias="APPROVALS_DB_POOL_SIZE")
    db_max_overflow: int = Field(default=10, ge=0, alias="APPROVALS_DB_MAX_OVERFLOW")
    db_pool_timeout_seconds: float = Field(
        default=10.0, gt=0, alias="APPROVALS_DB_POOL_TIMEOUT_SECONDS"
    )
    # /readyz wants a worker to have polled the task queue within this many seconds.
    worker_poll_max_age_seconds: float = Field(
        default=60.0, gt=0, alias="APPROVALS_WORKER_POLL_MAX_AGE_SECONDS"
    )
    # The business calendar of working-time deadlines (README, "Working time").
    calendar_time_zone: str = Field(default="Asia/Shanghai", alias="APPROVALS_CALENDAR_TZ")
    working_hours: str = Field(default="09:00-12:00,13:30-18:00", alias="APPROVALS_WORKING_HOURS")
    calendar_overrides: Path | None = Field(default=None, alias="APPROVALS_CALENDAR_OVERRIDES")
    # Action links in messages (domain/action_links.py): where they point, how long
    # they last, and their key (unset: derived from APPROVALS_SIGNING_SECRET).
    public_base_url: str = Field(
        default="",
        pattern=r"^$|^https?://[^\s/?#]+(/[^\s?#]*)?$",
        alias="APPROVALS_PUBLIC_BASE_URL",
    )
    """Unset: in development, where the API listens (``http://APPROVALS_API_HOST:PORT``);
    outside development it must be set (the settings refuse to load without it)."""
    action_link_ttl_hours: float = Field(
        default=72.0, gt=0, le=24 * 90, alias="APPROVALS_ACTION_LINK_TTL_HOURS"
    )
    action_link_secret: str | None = Field(default=None, alias="APPROVALS_ACTION_LINK_SECRET")
    reconcile_every_seconds: float = Field(
        default=600.0, ge=60, le=86400, alias="APPROVALS_RECONCILE_EVERY_SECONDS"
    )
    """How often the reconciliation schedule runs (worker/schedules.py): it records
    requests whose workflow an operator ended outside the process; minutes late is fine."""

    # --- notices to the outside (notify/, workflows/delivery.py); README "Notifications"
    default_locale: Literal["zh-CN", "en"] = Field(
        default="zh-CN", alias="APPROVALS_DEFAULT_LOCALE"
    )
    default_time_zone: str = Field(default="Asia/Shanghai", alias="APPROVALS_DEFAULT_TIME_ZONE")
    smtp_host: str = Field(default="127.0.0.1", alias="APPROVALS_SMTP_HOST")
    smtp_port: int = Field(default=1025, ge=1, le=65535, alias="APPROVALS_SMTP_PORT")
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        default="none", alias="APPROVALS_SMTP_SECURITY"
    )
    smtp_username: str | None = Field(default=None, alias="APPROVALS_SMTP_USERNAME")
    smtp_password: str | None = Field(default=None, alias="APPROVALS_SMTP_PASSWORD")
    mail_from: str = Field(default="approvals@localhost", alias="APPROVALS_MAIL_FROM")
    smtp_timeout_seconds: float = Field(default=15.0, gt=0, alias="APPROVALS_SMTP_TIMEOUT_SECONDS")
    webhooks_file: Path | None = Field(default=None, alias="APPROVALS_WEBHOOKS_FILE")
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, alias="APPROVALS_WEBHOOK_TIMEOUT_SECONDS"
    )
    dingtalk_url: str | None = Field(default=None, alias="APPROVALS_DINGTALK_URL")
    dingtalk_secret: str | None = Field(default=None, alias="APPROVALS_DINGTALK_SECRET")
    wecom_url: str | None = Field(default=None, alias="APPROVALS_WECOM_URL")
    feishu_url: str | None = Field(default=None, alias="APPROVALS_FEISHU_URL")
    feishu_secret: str | None = Field(default=None, alias="APPROVALS_FEISHU_SECRET")
    robot_timeout_seconds: float = Field(
        default=10.0, gt=0, alias="APPROVALS_ROBOT_TIMEOUT_SECONDS"
    )
    delivery_every_seconds: float = Field(
        default=5.0, gt=0, alias="APPROVALS_DELIVERY_EVERY_SECONDS"
    )
    """Unused since the deliverer is woken by PostgreSQL (``approvals deliverer``); kept so
    that an environment which still sets it loads."""
    delivery_max_attempts: int = Field(default=6, ge=1, alias="APPROVALS_DELIVERY_MAX_ATTEMPTS")
    delivery_max_age_hours: float = Field(
        default=72.0, gt=0, alias="APPROVALS_DELIVERY_MAX_AGE_HOURS"
    )
    delivery_retention_days: float = Field(
        default=90.0, ge=0, alias="APPROVALS_DELIVERY_RETENTION_DAYS"
    )
    """Sent and skipped deliveries older than this are deleted by the delivery passes
    (0: kept for ever). Failed and pending ones are always kept."""
    delivery_concurrency: int = Field(
        default=8, ge=1, le=100, alias="APPROVALS_DELIVERY_CONCURRENCY"
    )
    """Sends of one channel's batch under way at once."""
    delivery_worker_max_concurrent_activities: int = Field(
        default=20, ge=2, alias="APPROVALS_DELIVERY_WORKER_MAX_CONCURRENT_ACTIVITIES"
    )
    """Activities the deliverer runs at once: a pass takes one per channel, plus its plan."""
    mailcatcher_port: int = Field(default=1025, ge=1, le=65535, alias="APPROVALS_MAILCATCHER_PORT")
    deliverer_idle_check_seconds: float = Field(
        default=60.0, gt=0, le=3600, alias="APPROVALS_DELIVERER_IDLE_CHECK_SECONDS"
    )
    """The longest ``approvals deliverer`` sleeps without looking at the outbox (it is woken
    by ``NOTIFY`` at once, and at each retry's time): what a wake-up lost while its
    ``LISTEN`` connection was down may be late by, at most."""

    # --- metrics and traces (common/metrics.py, common/tracing.py); README "Metrics and traces"
    worker_metrics_address: str = Field(
        default="127.0.0.1:9464", pattern=ADDRESS, alias="APPROVALS_WORKER_METRICS_ADDRESS"
    )
    """Where ``approvals worker`` serves the Temporal SDK's metrics (its runtime's own
    Prometheus exporter); empty: not served."""
    metrics_address: str = Field(
        default="127.0.0.1:9465", pattern=ADDRESS, alias="APPROVALS_METRICS_ADDRESS"
    )
    """Where ``approvals worker`` serves our own metrics (prometheus-client); empty: not
    served. The SDK's exporter serves only the SDK's, hence a second port."""
    api_metrics: bool = Field(default=True, alias="APPROVALS_API_METRICS")
    """Serve ``GET /metrics`` on the API (no authentication: keep it off public routes)."""
    tracing: Literal["off", "otlp", "console"] | None = Field(
        default=None, alias="APPROVALS_TRACING"
    )
    """Unset: ``otlp`` when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, else ``off``."""
    otlp_endpoint: str | None = Field(default=None, alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    attachment_max_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1, le=512 * 1024 * 1024, alias="APPROVALS_ATTACHMENT_MAX_BYTES"
    )
    """The largest file ``POST /v1/attachments`` takes (more is 413)."""
    attachment_max_count: int = Field(
        default=10, ge=0, le=20, alias="APPROVALS_ATTACHMENT_MAX_COUNT"
    )
    """The most files one submission, decision or comment may carry (more is 422)."""

    # --- company sign-in (OpenID Connect; api/oidc.py); docs/configuration.md
    oidc_issuer: str = Field(
        default="", pattern=r"^$|^https?://[^\s?#]+$", alias="APPROVALS_OIDC_ISSUER"
    )
    """The identity provider (its ``/.well-known/openid-configuration`` is read); empty:
    no company sign-in, only the locally minted tokens."""
    oidc_client_id: str = Field(default="", alias="APPROVALS_OIDC_CLIENT_ID")
    oidc_client_secret: str | None = Field(default=None, alias="APPROVALS_OIDC_CLIENT_SECRET")
    oidc_scopes: str = Field(default="openid profile email", alias="APPROVALS_OIDC_SCOPES")
    oidc_audience: str = Field(default="", alias="APPROVALS_OIDC_AUDIENCE")
    """The ``aud`` the provider puts in access tokens for this API (required with an issuer)."""
    oidc_user_claim: str = Field(
        default="preferred_username", min_length=1, alias="APPROVALS_OIDC_USER_CLAIM"
    )
    """The access-token claim whose value is the directory user id."""
    oidc_algorithms: str = Field(default="RS256,ES256,PS256", alias="APPROVALS_OIDC_ALGORITHMS")
    """Signature algorithms accepted, comma-separated; asymmetric ones only."""
    oidc_leeway_seconds: float = Field(
        default=30.0, ge=0, le=300, alias="APPROVALS_OIDC_LEEWAY_SECONDS"
    )
    oidc_jwks_cache_seconds: float = Field(
        default=3600.0, gt=0, alias="APPROVALS_OIDC_JWKS_CACHE_SECONDS"
    )
    oidc_jwks_refetch_seconds: float = Field(
        default=10.0, ge=0, alias="APPROVALS_OIDC_JWKS_REFETCH_SECONDS"
    )
    """A token with an unknown ``kid`` refetches the provider's keys at most this often."""
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30, alias="APPROVALS_SESSION_HOURS")
    """How long a browser's sign-in through the identity provider lasts."""
    allow_local_tokens: bool | None = Field(default=None, alias="APPROVALS_ALLOW_LOCAL_TOKENS")
    """The locally minted HS256 tokens (``approvals token``). Unset: accepted in
    development only."""
    log_format: Literal["text", "json"] = Field(default="text", alias="APPROVALS_LOG_FORMAT")
    """``text`` for a terminal, ``json`` (one object per line) for a log collector."""

    # --- encrypted Temporal payloads (common/payload_codec.py); docs/encryption.md
    payload_keys: str | None = Field(default=None, alias="APPROVALS_PAYLOAD_KEYS")
    """``id:base64key`` items (comma or space separated), 32-byte AES keys: every key that
    may have encrypted a history still within retention. Unset: the development key in
    development; outside it the settings refuse to load unless
    ``APPROVALS_ALLOW_PLAIN_PAYLOADS=true``."""
    payload_key_id: str = Field(default="", alias="APPROVALS_PAYLOAD_KEY_ID")
    """The id of the key that encrypts new payloads (may be empty with one key)."""
    allow_plain_payloads: bool = Field(default=False, alias="APPROVALS_ALLOW_PLAIN_PAYLOADS")
    """With no ``APPROVALS_PAYLOAD_KEYS``: write payloads in plain text (Temporal's
    operators read customers and amounts). Encrypted ones are still refused."""
    codec_cors_origins: str = Field(
        default="http://localhost:8233,http://127.0.0.1:8233",
        alias="APPROVALS_CODEC_CORS_ORIGINS",
    )
    """The Temporal UI's origins (comma-separated) that may call ``/codec/decode``."""

    # --- safe deploys (Worker Versioning; worker/versioning.py); docs/deploy.md
    worker_versioning: bool = Field(default=False, alias="APPROVALS_WORKER_VERSIONING")
    """Poll as one version (deployment name + build id) of a Temporal Worker Deployment:
    a request runs to its end on the build it started on (docs/deploy.md). Off: every
    worker takes every task, and only patches keep old requests safe."""
    deployment_name: str = Field(
        default="approvals", min_length=1, max_length=200, alias="APPROVALS_DEPLOYMENT_NAME"
    )
    build_id: str = Field(
        default="", pattern=r"^[A-Za-z0-9._+-]{0,200}$", alias="APPROVALS_BUILD_ID"
    )
    """This code's build: an image tag, a git commit, a package version. Required with
    versioning on; two builds of different workflow code must never share one."""
    deployment_promote: bool = Field(default=False, alias="APPROVALS_DEPLOYMENT_PROMOTE")
    """On start, make this build the deployment's current version (``make dev``, a
    single-host compose). Off: an operator promotes or ramps it (docs/deploy.md)."""

    @field_validator("tracing", "otlp_endpoint", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # docker-compose passes ${VAR:-} through as an empty string.
        return None if value == "" else value

    @model_validator(mode="after")
    def _no_dev_secret_in_production(self) -> Settings:
        if self.environment != "development" and (
            self.token_secret == DEV_SECRET or len(self.token_secret) < 32
        ):
            raise ValueError(
                "APPROVALS_TOKEN_SECRET must be set to a secret of 32+ characters "
                f"outside development (APPROVALS_ENV={self.environment})"
            )
        if self.environment != "development" and (
            self.signing_secret == DEV_SIGNING_SECRET
            or len(self.signing_secret) < 32
            or self.signing_secret == self.token_secret
        ):
            raise ValueError(
                "APPROVALS_SIGNING_SECRET must be set to a secret of 32+ characters, other "
                "than the token secret, outside development "
                f"(APPROVALS_ENV={self.environment}): the API, the worker and operators "
                "sign and check who sent each workflow message with it"
            )
        if self.action_link_secret is not None and len(self.action_link_secret) < 32:
            raise ValueError("APPROVALS_ACTION_LINK_SECRET, when set, must be 32+ characters")
        return self

    @model_validator(mode="after")
    def _links_point_somewhere_real(self) -> Settings:
        if self.public_base_url:
            return self
        if self.environment != "development":
            # A guess (the listening address, a default port) would send every message's
            # links somewhere people cannot reach, or somewhere else entirely.
            raise ValueError(
                "APPROVALS_PUBLIC_BASE_URL must be set outside development "
                f"(APPROVALS_ENV={self.environment}): the links in messages point there, "
                "e.g. https://approvals.example.com"
            )
        self.public_base_url = listen_url(self.api_host, self.api_port)
        return self

    @model_validator(mode="after")
    def _versioned_workers_name_their_build(self) -> Settings:
        if self.worker_versioning and not self.build_id:
            raise ValueError(
                "APPROVALS_BUILD_ID must be set with APPROVALS_WORKER_VERSIONING=true: the "
                "worker polls as that build of deployment "
                f"{self.deployment_name} (an image tag or a git commit)"
            )
        return self

    @model_validator(mode="after")
    def _oidc_is_complete(self) -> Settings:
        if not self.oidc_issuer:
            return self
        if not self.oidc_audience:
            raise ValueError(
                "APPROVALS_OIDC_AUDIENCE must be set with APPROVALS_OIDC_ISSUER: the API "
                "accepts only access tokens issued for it"
            )
        if self.environment != "development" and not self.oidc_issuer.startswith("https://"):
            raise ValueError(
                "APPROVALS_OIDC_ISSUER must be an https:// URL outside development "
                f"(APPROVALS_ENV={self.environment})"
            )
        refused = [a for a in self.oidc_accepted_algorithms if a not in ASYMMETRIC_ALGORITHMS]
        if refused or not self.oidc_accepted_algorithms:
            raise ValueError(
                f"APPROVALS_OIDC_ALGORITHMS may name only {', '.join(ASYMMETRIC_ALGORITHMS)} "
                f"(not {', '.join(refused) or 'nothing'}): a shared-secret or unsigned token "
                "from the provider could be forged with its public key"
            )
        return self

    @model_validator(mode="after")
    def _payload_keys_are_usable(self) -> Settings:
        from common.payload_codec import PayloadKeyError

        if self.payload_keys is None or not self.payload_keys.strip():
            if self.payload_key_id:
                raise ValueError(
                    "APPROVALS_PAYLOAD_KEY_ID is set but APPROVALS_PAYLOAD_KEYS is not"
                )
            if self.environment != "development" and not self.allow_plain_payloads:
                raise ValueError(
                    "APPROVALS_PAYLOAD_KEYS must be set outside development "
                    f"(APPROVALS_ENV={self.environment}): without it every customer, amount "
                    "and comment is stored in plain text on the Temporal server "
                    "(`approvals payload-key` prints a new key; APPROVALS_ALLOW_PLAIN_PAYLOADS"
                    "=true accepts plain text)"
                )
            return self
        try:
            self.payload_keyring  # noqa: B018  (parsing is the check)
        except PayloadKeyError as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def payload_keyring(self) -> PayloadKeys | None:
        """The payload keys (None: payloads are written plain)."""
        from common.payload_codec import parse_payload_keys

        if self.payload_keys and self.payload_keys.strip():
            return parse_payload_keys(self.payload_keys, self.payload_key_id)
        if self.environment == "development" and not self.allow_plain_payloads:
            return parse_payload_keys(DEV_PAYLOAD_KEYS)
        return None

    @property
    def oidc_accepted_algorithms(self) -> list[str]:
        return [a.strip() for a in self.oidc_algorithms.split(",") if a.strip()]

    @property
    def local_tokens_allowed(self) -> bool:
        """Whether the locally minted HS256 tokens are accepted (development, or opted in)."""
        if self.allow_local_tokens is not None:
            return self.allow_local_tokens
        return self.environment == "development"

    @property
    def tracing_mode(self) -> Literal["off", "otlp", "console"]:
        """Where traces go: ``APPROVALS_TRACING``, else OTLP if an endpoint is set."""
        if self.tracing is not None:
            return self.tracing
        return "otlp" if self.otlp_endpoint else "off"

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError(
                "DATABASE_URL is not set. `approvals dev` starts an embedded PostgreSQL "
                "and sets it; otherwise export DATABASE_URL=postgresql+asyncpg://..."
            )
        return self.database_url


def listen_url(host: str, port: int) -> str:
    """``http://host:port`` of a local listener; a wildcard address becomes 127.0.0.1."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
