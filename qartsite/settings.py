"""Django settings for qart: one module, configured from the environment.

Every setting that differs between a laptop, CI and production comes from an
environment variable (each documented in `.env.example`). The defaults are production's:
DEBUG off, which needs a SECRET_KEY of 50 characters or more (the development key is
refused) and serves HTTPS only; `make run` and `make test` set DEBUG=1. The other defaults
suit one machine: SQLite in var/, Redis on localhost, media on the local disk.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

# The one application import: settings load before any application can, and echoes imports only the standard library
# (tests/qartsite/test_imports.py holds both). A bad value is quoted as every other message quotes one; a URL, which
# can carry a password, through echo_url.
from generator.core.codes.echoes import echo, echo_url

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: str) -> bool:
    return os.getenv(name, default).strip().lower() in ("1", "true", "yes", "on")


def envint(name: str, default: str) -> int:
    value = os.getenv(name, default)
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got “{echo(value)}”") from None


def envfloat(name: str, default: str) -> float:
    value = os.getenv(name, default)
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got “{echo(value)}”") from None


def envchoice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of `choices`, whatever the case it was set in, as `choices` writes it."""
    value = os.getenv(name, "").strip() or default  # set but empty (a blank line in .env): the default
    chosen = {choice.lower(): choice for choice in choices}.get(value.lower())
    if chosen is None:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got “{echo(value)}”")
    return chosen


def envdevices(name: str) -> list[str]:
    """Devices from a comma-separated variable ("cuda:0,cuda:1"); empty means "the best one on the worker".

    A device named twice gets two replicas (on the CPU that is how the tests run a split engine).
    """
    devices = [d.strip() for d in os.getenv(name, "").split(",") if d.strip()]
    bad = [d for d in devices if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", d)]
    if bad:
        raise ImproperlyConfigured(f"{name}: unknown device “{echo(bad[0])}”: use cpu, mps, cuda or cuda:N, "
                                   "comma-separated.")
    return devices


def envdays(name: str) -> timedelta | None:
    """A whole number of days from the environment; empty (the default) means no limit."""
    value = os.getenv(name, "").strip()
    if not value:
        return None
    days = envint(name, value)
    if days < 1:
        raise ImproperlyConfigured(f"{name} must be a number of days (1 or more), or empty for none; "
                                   f"got “{echo(value)}”")
    return timedelta(days=days)


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.getenv(name, default).split(",") if item.strip()]


DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"

# Off unless asked for: `make run` and `make test` turn it on; anything else is production.
DEBUG = envbool("DEBUG", "0")
DEFAULT_EXCEPTION_REPORTER_FILTER = "qartsite.logs.SettingsWithoutPasswords"  # a URL's password hidden too
SECRET_KEY = os.getenv("SECRET_KEY", "").strip() or (DEV_SECRET_KEY if DEBUG else "")
if not DEBUG and (not SECRET_KEY or SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50):
    # Sessions, password-reset tokens, CSRF and the scan visitor keys all rest on this key.
    raise ImproperlyConfigured(
        "Set SECRET_KEY in the environment (50 random characters; see .env.example for a command that makes one), "
        "or DEBUG=1 on a development machine: production refuses a missing, short or development key."
    )

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")
CSRF_FAILURE_VIEW = "qartsite.views.csrf_failure"  # the site's page, not Django's (which speaks of DEBUG=True)
# Scheme and host that absolute links (short links, one-time labeling links) start with; empty: the request's
# host (qartsite.site). Checked here so a typo stops the start, not every printed code. No user part: a password
# there went into every short link, page and printed code.
SITE_ROOT = os.getenv("SITE_ROOT", "").strip().rstrip("/")
if SITE_ROOT and not re.fullmatch(r"https?://[^/?#\s@]+", SITE_ROOT):
    raise ImproperlyConfigured(f"SITE_ROOT must be a scheme and host such as https://qart.example, "
                               f"got “{echo_url(SITE_ROOT)}”")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # Before staticfiles: `runserver` (what `make run` serves with) leaves static files to WhiteNoise, as production
    # does. Django's own static handler answered /static/..%2F..%2Fmanage.py with a 500 and its traceback.
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",  # intcomma: "12,345" scans
    "rest_framework",
    "knox",
    "axes",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_rq",
    "csp",
    "qartsite",
    "generator",
    "campaigns",
    # DRF's plaintext tokens: kept only for qartsite's migration 0002, which hashes them into knox's table and
    # empties theirs. Listed after qartsite so that qartsite's drf_create_token (which points to qart_token)
    # shadows DRF's, and its admin is unregistered (qartsite.admin).
    "rest_framework.authtoken",
]

MIDDLEWARE = [
    # First: a body over the upload cap is refused with 413 before anything reads it (qartsite.limits).
    "qartsite.limits.RequestSizeMiddleware",
    # A database that is away answers 503 with a page that says so, not a 500 (qartsite.outage).
    "qartsite.outage.DatabaseUnavailableMiddleware",
    # Absolute links under SITE_ROOT when it is set, the API's included (qartsite.site).
    "qartsite.site.SiteRootMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Django's CommonMiddleware, whose APPEND_SLASH redirect keeps a form's POST (a 308; qartsite.paths).
    "qartsite.paths.AppendSlashMiddleware",
    # The API's query: a parameter of one value sent twice is a 400 under its name, not its last value
    # (qartsite.queries).
    "qartsite.queries.OneValueQueryMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # django-csp's CSPMiddleware, with the usual response's header built once per process (qartsite.content_policy).
    "qartsite.content_policy.ContentPolicyMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
    # A path with a NUL is a 404, a header with one a 400, before any view queries with them (qartsite.paths).
    "qartsite.paths.NulPathMiddleware",
]

# Django's database sessions, refusing keys no session can have (qartsite.sessions).
SESSION_ENGINE = "qartsite.sessions"
ROOT_URLCONF = "qartsite.urls"
WSGI_APPLICATION = "qartsite.wsgi.application"

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


def database_options() -> dict:
    """The default database from DATABASE_URL (SQLite in var/ when unset). A function, so that no setting holds the
    URL: DEBUG's error page lists the settings, and hides DATABASES' PASSWORD but not a password inside a URL."""
    url = os.getenv("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'qart.sqlite3'}")
    conn_max_age = envint("DB_CONN_MAX_AGE", "60")
    try:
        return dj_database_url.parse(url, conn_max_age=conn_max_age)
    except ValueError:  # an unknown scheme, a port that is no number: dj-database-url's traceback, not one line
        raise ImproperlyConfigured(f"DATABASE_URL must be a URL such as postgres://USER:PASSWORD@HOST:5432/NAME or "
                                   f"sqlite:////path/to/file, got “{echo_url(url)}”") from None


DATABASES = {"default": database_options()}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The test database is a file, not memory, so worker processes started by tests can open it too.
    DATABASES["default"]["TEST"] = {"NAME": str(Path(DATABASES["default"]["NAME"]).with_suffix(".test.sqlite3"))}
    # Concurrent writers (web requests, workers) wait for each other instead of failing with "database is locked":
    # IMMEDIATE takes the write lock when a transaction begins, so the timeout applies (a transaction that read
    # first and then wrote failed at once: 33 of 100 API creates at 16 at a time); WAL lets reads go on meanwhile.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=20, transaction_mode="IMMEDIATE",
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    )
    # The rollups' covering index carries INCLUDE columns for PostgreSQL; SQLite builds it without them, and said so
    # in a warning at every migrate of `make run`.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # A database that accepts connections but never answers must not hold a request for long: give up connecting
    # after 2 s (the short link then answers from its copy of the links; campaigns.redirects).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 2)

# django-axes first: it refuses a locked-out sign-in before the password is checked (it checks none itself).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# The house date and date-time formats ("6 Dec 2026", "6 Dec 2026 14:05"): qartsite/formats/en/formats.py.
FORMAT_MODULE_PATH = "qartsite.formats"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.getenv("STATIC_ROOT", str(BASE_DIR / "var" / "static")))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.getenv("MEDIA_ROOT", str(BASE_DIR / "var" / "media")))


def s3_media_options() -> dict:
    """The S3 media storage's options (qartsite.storage.S3MediaStorage) from the MEDIA_S3_* variables.

    Keys left empty fall back on boto3's own search (AWS_* variables, ~/.aws, an instance role).
    """
    endpoint = os.getenv("MEDIA_S3_ENDPOINT_URL", "").strip()
    # No user part: boto signs with MEDIA_S3_ACCESS_KEY_ID and its secret, never a URL's, and its messages (the pages'
    # and commands' "media storage could not ...") quote the endpoint.
    if endpoint and not re.fullmatch(r"https?://[^/?#\s@]+/?", endpoint):
        raise ImproperlyConfigured(f"MEDIA_S3_ENDPOINT_URL must be a scheme and host such as http://10.0.0.5:9000 "
                                   f"(keys in MEDIA_S3_ACCESS_KEY_ID and MEDIA_S3_SECRET_ACCESS_KEY), "
                                   f"got “{echo_url(endpoint)}”")
    style = os.getenv("MEDIA_S3_ADDRESSING_STYLE", "").strip().lower()
    if style not in ("", "auto", "path", "virtual"):
        raise ImproperlyConfigured(f"MEDIA_S3_ADDRESSING_STYLE must be path, virtual or auto, got “{echo(style)}”")
    return {
        "bucket_name": os.getenv("MEDIA_S3_BUCKET", "").strip(),
        "endpoint_url": endpoint or None,
        "region_name": os.getenv("MEDIA_S3_REGION", "").strip() or None,
        "access_key": os.getenv("MEDIA_S3_ACCESS_KEY_ID", "").strip() or None,
        "secret_key": os.getenv("MEDIA_S3_SECRET_ACCESS_KEY", "").strip() or None,
        "addressing_style": style or None,
        # A folder inside the bucket, so that one bucket can hold several installations' media.
        "location": os.getenv("MEDIA_S3_PREFIX", "").strip().strip("/"),
    }


# Media (uploads, candidates, control and labeling images) is stored through STORAGES["default"] only: the filesystem
# under MEDIA_ROOT (one host; `make run`), or with MEDIA_STORAGE=s3 a private S3-compatible bucket that web processes
# and GPU workers on every host share. "filesystem" and "s3" name both for `manage.py qart_media_copy`.
MEDIA_STORAGE = os.getenv("MEDIA_STORAGE", "filesystem").strip().lower()
_MEDIA_STORAGES = {
    "filesystem": {"BACKEND": "qartsite.storage.FileSystemMediaStorage"},
    "s3": {"BACKEND": "qartsite.storage.S3MediaStorage", "OPTIONS": s3_media_options()},
}
if MEDIA_STORAGE not in _MEDIA_STORAGES:
    raise ImproperlyConfigured(f"MEDIA_STORAGE must be filesystem or s3, got “{echo(MEDIA_STORAGE)}”")
if MEDIA_STORAGE == "s3" and not _MEDIA_STORAGES["s3"]["OPTIONS"]["bucket_name"]:
    raise ImproperlyConfigured("MEDIA_STORAGE=s3 needs MEDIA_S3_BUCKET (and MEDIA_S3_ENDPOINT_URL for anything but "
                               "AWS S3); see .env.example")
STORAGES = {
    "default": _MEDIA_STORAGES[MEDIA_STORAGE],
    **_MEDIA_STORAGES,
    # collectstatic also writes a gzipped copy of each file that compresses, which WhiteNoise sends to browsers that
    # take gzip (chart.js: 208 kB, 70 kB gzipped). Not the Manifest variant: pages and tests would need collectstatic.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Media is answered only to the owning team (qartsite.media). Behind nginx, name its `internal` location aliased to
# MEDIA_ROOT (e.g. /protected-media/): Django then checks access and nginx sends the file (X-Accel-Redirect).
QART_MEDIA_ACCEL_PREFIX = os.getenv("QART_MEDIA_ACCEL_PREFIX", "").strip()
if QART_MEDIA_ACCEL_PREFIX and not re.fullmatch(r"/[^\s?#%]*/", QART_MEDIA_ACCEL_PREFIX):
    raise ImproperlyConfigured(f"QART_MEDIA_ACCEL_PREFIX must be a path such as /protected-media/, "
                               f"got “{echo(QART_MEDIA_ACCEL_PREFIX)}”")
if QART_MEDIA_ACCEL_PREFIX and MEDIA_STORAGE != "filesystem":
    raise ImproperlyConfigured("QART_MEDIA_ACCEL_PREFIX hands files in MEDIA_ROOT to nginx; with MEDIA_STORAGE=s3 "
                               "there are none there (Django streams from the bucket): leave it empty")

# Uploads are capped before they reach a view; images are re-encoded by the code that accepts them. The cap covers
# file parts too (Django's own leaves them out): qartsite.limits answers 413 past it, plus room for the fields.
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("QART_MAX_UPLOAD_BYTES", str(10 * 1024 * 1024))
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
# "Generate for every placement" sends one field per placement: Django's 1,000 refused a campaign of one import
# (bulk.MAX_ROWS placements). The size cap above still bounds the request.
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10_000
FILE_UPLOAD_HANDLERS = [
    "qartsite.limits.UploadLimitHandler",  # first: it stops an upload that grows past the cap
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

REDIS_URL = os.getenv("REDIS_URL", "redis://127.0.0.1:6379/0")
if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    # Checked here: otherwise the site started, /healthz said ok, and every short link answered 500.
    raise ImproperlyConfigured(f"REDIS_URL must be a redis://, rediss:// or unix:// URL, "
                               f"got “{echo_url(REDIS_URL)}”")
# A Redis that stops answering (a stalled server, a lost network) must cost a page seconds, not its whole time: without
# a timeout a read waited until gunicorn killed the worker, and two such pages held every short link's process. RQ's
# workers raise the read timeout to their own blocking wait (rq.Worker._set_connection).
REDIS_TIMEOUTS = {"socket_connect_timeout": envint("QART_REDIS_CONNECT_TIMEOUT", "2"),
                  "socket_timeout": envint("QART_REDIS_TIMEOUT", "3")}
# What web processes wait instead, to connect and to read (`qartsite.queues.limit_web_redis`, as gunicorn loads the
# site): two sync workers, and a page that waited 3 s on a stalled Redis held one while the short links queued behind
# it (a fault drill: 2.8 s). Their calls are small; workers keep REDIS_TIMEOUTS for theirs.
WEB_REDIS_TIMEOUT = envfloat("QART_WEB_REDIS_TIMEOUT", "1")
WEB_REDIS_TIMEOUTS = {"socket_connect_timeout": WEB_REDIS_TIMEOUT, "socket_timeout": WEB_REDIS_TIMEOUT}


def with_timeouts(url: str, timeouts: dict | None = None) -> str:
    """`url` with `timeouts` (`REDIS_TIMEOUTS` unless given) as redis-py reads them from a URL's query, unless the
    URL sets them itself. Appended to the URL as written: rebuilding it (urlunsplit) turned unix:///path into
    unix:/path."""
    given = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    missing = {name: value for name, value in (timeouts or REDIS_TIMEOUTS).items() if name not in given}
    if not missing:
        return url
    return url + ("&" if "?" in url else "?") + urllib.parse.urlencode(missing)


# The cache counts API rate limits and keeps the picture of a generation form sent back with an error
# (generator.uploads.keep). Per process by default; with several web processes give them a shared one
# (CACHE_URL=redis://host:6379/1), or each process counts its own share of the limit (and a kept picture is found
# only by the process that kept it: the page then asks for the file again). The short-link redirect does
# not use it, so scans keep working while Redis is down.
CACHE_URL = os.getenv("CACHE_URL", "")
if CACHE_URL and not CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"CACHE_URL must be a redis:// URL or empty, got “{echo_url(CACHE_URL)}”")
CACHES = {
    # Django's Redis cache through the queues' breaker: a stalled Redis is skipped at once after a call waited for it
    "default": {"BACKEND": "qartsite.redis_cache.RedisCache", "LOCATION": CACHE_URL,
                "OPTIONS": REDIS_TIMEOUTS}
    if CACHE_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
REDIS_QUEUE_URL = with_timeouts(REDIS_URL)
WEB_REDIS_QUEUE_URL = with_timeouts(REDIS_URL, WEB_REDIS_TIMEOUTS)  # what web processes use instead (see above)
RQ_QUEUES = {
    "default": {"URL": REDIS_QUEUE_URL, "DEFAULT_TIMEOUT": 600},
    "gpu": {"URL": REDIS_QUEUE_URL, "DEFAULT_TIMEOUT": 1800},
    # Webhook deliveries (campaigns.webhooks): light jobs with their own worker, never behind a generation.
    "webhooks": {"URL": REDIS_QUEUE_URL, "DEFAULT_TIMEOUT": 300},
}
# Workers wait out a Redis that stalls instead of quitting (qartsite.workers.RedisPatience); GPU workers name their own
# class, which has it too.
RQ = {"WORKER_CLASS": "qartsite.workers.PatientWorker"}
# Webhooks may go to private and loopback addresses (and plain http): tests and local receivers only.
QART_WEBHOOKS_ALLOW_PRIVATE = envbool("QART_WEBHOOKS_ALLOW_PRIVATE", "0")

REST_FRAMEWORK = {
    # Token first, so an unauthenticated API call gets 401 with `WWW-Authenticate: Token`. Tokens (knox: stored as
    # hashes) come from `python manage.py qart_token USER`; the browser's session works too (with CSRF on writes).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "qartsite.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "qartsite.filters.PageNumbers",  # `?page=` in ASCII digits only
    "PAGE_SIZE": 50,
    # An unknown `?ordering=` is a 400 naming the fields there are (DRF's own filter ignores it without a word); a
    # refused filter's value is quoted shortened.
    "DEFAULT_FILTER_BACKENDS": [
        "qartsite.filters.FilterBackend",
        "qartsite.filters.StrictOrderingFilter",
    ],
    # drf-spectacular's, with every field of a model's answer required (qartsite.api_schema.AnswerSchema).
    "DEFAULT_SCHEMA_CLASS": "qartsite.api_schema.AnswerSchema",
    # JSON nested too deeply for Python's parser is a 400, not a 500; JSON sent as a form is told so (qartsite.parsers).
    "DEFAULT_PARSER_CLASSES": [
        "qartsite.parsers.JSONParser",
        "qartsite.parsers.FormParser",
        "qartsite.parsers.MultiPartParser",
    ],
    # Generation creates per team (GPU time is money), on the page and through the API alike (generator.throttles).
    # Counted in the cache (CACHE_URL: shared in production).
    "DEFAULT_THROTTLE_RATES": {"generations": os.getenv("QART_GENERATION_RATE", "30/hour")},
    # A 404 says "Not found." whatever the view looked up (DRF passes on Django's "No Campaign matches ...").
    "EXCEPTION_HANDLER": "qartsite.api.exception_handler",
    # An unknown `?format=` or suffix is a 406 naming the formats there are (DRF: a 404 "Not found.").
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "qartsite.negotiation.ContentNegotiation",
}

# API tokens (django-rest-knox): sent as `Authorization: Token <token>`, stored as hashes, shown once by
# `manage.py qart_token`. They never expire unless QART_TOKEN_TTL_DAYS says after how many days a new one does.
REST_KNOX = {
    "TOKEN_TTL": envdays("QART_TOKEN_TTL_DAYS"),
    "AUTH_HEADER_PREFIX": "Token",
    # Knox's default, named because qartsite's migration 0002 hashed the old DRF tokens with it: another
    # algorithm would turn every stored token away.
    "SECURE_HASH_ALGORITHM": "hashlib.sha512",
}
# Knox's own model (its default): knox makes it swappable by this setting, so migrations that refer to it read it here.
KNOX_TOKEN_MODEL = "knox.AuthToken"

SPECTACULAR_SETTINGS = {
    "TITLE": "qart API",
    "DESCRIPTION": "Campaigns, placements with their short links and scan figures, QR-art generations, alerts, "
                   "share links, teams and webhooks. Authenticate with `Authorization: Token <token>` (or "
                   "`Bearer <token>`) or a signed-in session.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Separate request and response components, so read-only fields are not asked for in requests.
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and ReDoc from our own static files (drf-spectacular-sidecar), never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No deep links: Swagger UI draws each one as a link inside the button that opens the operation, a control inside
    # a control that keyboards and screen readers cannot use (axe's nested-interactive, tests/e2e/test_accessibility).
    "SWAGGER_UI_SETTINGS": {"deepLinking": False},
    # drf-spectacular's default hook, blank-or-URL fields a validator can read, the Idempotency-Key's header and
    # answers, then the 4xx answers every operation documents and the JSON body of each (qartsite.api_schema).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums", "qartsite.api_schema.blank_or_formatted_as_any_of",
        "qartsite.idempotency.document_idempotency_key", "qartsite.api_schema.document_error_answers",
    ],
}

if not DEBUG:
    # Production is HTTPS (`manage.py check --deploy` is clean with these defaults; tests/qartsite/test_settings.py).
    SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", "1")
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "1")
    # Load balancers check over plain HTTP. Short links answer either way: a printed code keeps working even behind a
    # TLS proxy that QART_TRUST_PROXY was not set for (there, every other page redirects to itself for ever), and a
    # code printed with http:// saves a hop; the first plain request could be tampered with before any redirect.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^r/"]
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", str(365 * 24 * 3600))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", "1")
    SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", "1")
    if envbool("QART_TRUST_PROXY", "0"):
        # Our own proxy terminates TLS and says so; without one the header could be forged.
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy (django-csp), in every mode so the browser tests see what production enforces: scripts from
# this site only (the API docs' one inline script carries the request's nonce), no plug-ins, no framing, forms posting
# here only. Inline styles stay allowed: progress bars and label sizes are style attributes, and CSS cannot run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:", "blob:"],  # a chosen picture previews from a blob: URL (static/qart/generate.js)
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/campaigns/"
LOGOUT_REDIRECT_URL = "/accounts/login/?signed_out=1"
# Password-reset and invitation e-mails print to the console unless another backend is named here.
EMAIL_BACKEND = os.getenv("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")

# Sign-in lockout (django-axes), on the sign-in page and the admin's: after AXES_FAILURE_LIMIT wrong passwords for one
# user name from one address, that pair is refused for 15 minutes, even with the right password, with the page
# templates/registration/locked_out.html (429). The same name from another address, or another name from this one,
# still signs in. Superusers lift a lockout early by deleting its access attempt in the admin (or `axes_reset`).
AXES_FAILURE_LIMIT = envint("AXES_FAILURE_LIMIT", "5")
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The address the short links see: REMOTE_ADDR, or with QART_TRUST_PROXY the X-Forwarded-For hop our proxy added.
AXES_CLIENT_IP_CALLABLE = "qartsite.site.client_address"
AXES_USERNAME_CALLABLE = "qartsite.site.sign_in_username"  # cut to what axes' records hold
# A sign-in clears that pair's failures, so typos spread over days do not add up to a lockout.
AXES_RESET_ON_SUCCESS = True
# Axes would also keep every successful sign-in with its address: the site keeps addresses only where it needs them.
AXES_DISABLE_ACCESS_LOG = True
# Not a line at every start of every command; lockouts are logged all the same (user name and address masked).
AXES_VERBOSE = False

# qart's own settings. The generator core reads none of these itself: the Django layer passes them in.
QART = {
    # Largest QR version accepted for art (version 6 at level H holds 58 bytes).
    "MAX_VERSION": envint("QART_MAX_VERSION", "6"),
    # The error correction level of the codes qart draws (print files, art), in either case. Checked here: "h" failed
    # every code the site draws, and the home page answered 500.
    "DEFAULT_ECC": envchoice("QART_DEFAULT_ECC", "H", ("L", "M", "Q", "H")),
    # Largest image (in pixels) qart opens (uploads, stored candidates, the verifier's and commands' inputs): a guard
    # against decompression bombs.
    "MAX_IMAGE_PIXELS": envint("QART_MAX_IMAGE_PIXELS", str(40_000_000)),
    # Seconds a short link waits for its database lookup before answering from the copies of the links
    # (campaigns.redirects.looked_up); 0 looks up in the request's own thread, without a bound.
    "LINK_LOOKUP_SECONDS": envfloat("QART_LINK_LOOKUP_SECONDS", "1.5"),
    # Scan probability at or above which a candidate passes.
    "SCAN_THRESHOLD": envfloat("QART_SCAN_THRESHOLD", "0.5"),
    # Optional local QReader detector weights (.pt); QReader is used only when these exist.
    "QREADER_WEIGHTS": os.getenv("QART_QREADER_WEIGHTS", ""),
    "DEMO_USER": os.getenv("QART_DEMO_USER", "admin"),
    # Generation weights: "tiny" (random toy weights, images are noise), a hub id already in the local
    # cache, a local diffusers folder or a .safetensors file. Empty: the real defaults on a GPU, tiny without.
    "MODEL": os.getenv("QART_MODEL", ""),
    "CONTROLNET": os.getenv("QART_CONTROLNET", ""),
    "CONTROLNET_SUBFOLDER": os.getenv("QART_CONTROLNET_SUBFOLDER", "v2"),
    # For a single-file base model: a local diffusers folder holding the SD1.5 component configs.
    "BASE_CONFIG": os.getenv("QART_BASE_CONFIG", ""),
    # LAION aesthetic predictor: CLIP ViT-L/14 (hub id or folder) and the head's weights file.
    "AESTHETIC_CLIP": os.getenv("QART_AESTHETIC_CLIP", "openai/clip-vit-large-patch14"),
    "AESTHETIC_HEAD": os.getenv("QART_AESTHETIC_HEAD", ""),
    # The few-step preset (4-8 steps, no classifier-free guidance): a few-step LoRA for SD1.5 (LCM-LoRA, Hyper-SD,
    # TCD) as a local .safetensors file, a folder holding one, or a hub id already in the cache, and the scheduler it
    # was distilled for. Empty: no few-step preset (the page and the API do not offer it).
    "FEWSTEP_LORA": os.getenv("QART_FEWSTEP_LORA", "").strip(),
    "FEWSTEP_SCHEDULER": envchoice("QART_FEWSTEP_SCHEDULER", "lcm", ("lcm", "tcd")),
    # Where the tiny preset is saved once (laid out like hub repositories).
    "MODEL_DIR": Path(os.getenv("QART_MODEL_DIR", str(BASE_DIR / "var" / "models"))),
    # GPUs one generation worker drives: empty = the best device here (one GPU). Two or more split every job's
    # candidates across them (lower latency per job; run one worker per GPU instead for throughput).
    "DEVICES": envdevices("QART_DEVICES"),
    "CANDIDATES": envint("QART_CANDIDATES", "8"),
    # Shapes (image side x candidates) a CUDA worker compiles at start, e.g. "768x8,512x8": a job of another shape is
    # drawn without the compiled graphs (slower) rather than compiling for minutes mid-job. Each costs start time.
    # Read by `generator.warm_engines.warm_shapes`, which refuses a bad value when the worker starts.
    "WARM_SHAPES": os.getenv("QART_WARM_SHAPES", f"768x{envint('QART_CANDIDATES', '8')}"),
    # A one-GPU CUDA worker compiles its VAE decoder with Inductor's max-autotune: each decode ~14 % faster and 20-46 ms
    # off the 25-step engine, images kept, for ~3.5 minutes more of a worker's first start (Inductor's caches make
    # the next ~30 s). Whole jobs did not end sooner at p95 (bench/GPU.md, twentieth step), so it is off by default.
    "DECODER_AUTOTUNE": envbool("QART_DECODER_AUTOTUNE", "0"),
    "MAX_BATCHES": envint("QART_MAX_BATCHES", "2"),
    # Seconds a generation job may run before RQ stops it.
    "JOB_TIMEOUT": envint("QART_JOB_TIMEOUT", "600"),
    # Seconds a GPU worker waits before storing a job's images once more when the bucket did not answer. The second
    # try asks the bucket whatever the storage remembers of the outage (qartsite.storage.AWAY_SECONDS): any wait
    # that outlasts a restart of the bucket's server keeps the job's work.
    "STORE_AGAIN_AFTER": envint("QART_STORE_AGAIN_AFTER", "20"),
    # Short links: trust X-Forwarded-For only behind your own proxy; a header carrying the country code
    # (e.g. CF-IPCountry) when the proxy sets one.
    "TRUST_PROXY": envbool("QART_TRUST_PROXY", "0"),
    # How many proxies of yours append to X-Forwarded-For: the client is that many hops from the right.
    "TRUSTED_PROXY_COUNT": envint("QART_TRUSTED_PROXY_COUNT", "1"),
    "COUNTRY_HEADER": os.getenv("QART_COUNTRY_HEADER", ""),
    # Where scans wait for `manage.py qart_drain_scans` (campaigns/scan_buffer.py): "spool" appends them to
    # JSON-lines files in SPOOL_DIR (one per web process; the Redis stream only when that fails) and needs a drainer
    # on every web host; "stream" puts them on the Redis stream (the spool only while Redis is away), for web hosts
    # whose disk does not outlive the process (containers).
    "SCAN_BUFFER": envchoice("QART_SCAN_BUFFER", "spool", ("spool", "stream")),
    # Keep this folder on a disk that survives a restart.
    "SPOOL_DIR": Path(os.getenv("QART_SPOOL_DIR", str(BASE_DIR / "var" / "spool"))),
    # Prefix of the short link's Redis keys at REDIS_URL: `<prefix>scans` (the stream of scans) and `<prefix>links`
    # (the shared copy of the links, read only while the database is away).
    "REDIS_PREFIX": os.getenv("QART_REDIS_PREFIX", "qart:"),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    # Checked here: logging's own refusal of an unknown level is a traceback ("Unable to configure root logger"). Every
    # name logging takes is taken, its other spellings too (WARN, FATAL, NOTSET): a site set so started before.
    "root": {"handlers": ["console"],
             "level": envchoice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "WARN", "FATAL",
                                                      "NOTSET"))},
    # Django's own default gives its logger a console handler of its own (under DEBUG) that also passes records to
    # the root's: every "Not Found: ..." line printed twice. Here the root's handler prints them, once.
    "loggers": {"django": {"handlers": [], "propagate": True},
                "django.request": {"filters": ["client_errors_brief"]}},
    "filters": {"client_errors_brief": {"()": "qartsite.logs.ClientErrorsBrief"}},
}
