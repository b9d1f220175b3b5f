# The smallest Django project that runs DRF's own TokenAuthentication, for
# row 4 of tools/bench (nginx auth_request -> gunicorn -> this).
# The sqlite file is made at bench time (seed.py); its path comes from
# BENCH_DRF_DB.
import os

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "rest_framework.authtoken",
]
# No middleware: DRF's authentication needs none, and every middleware would
# only add cost to the competitor.
MIDDLEWARE = []
ROOT_URLCONF = "benchdrf.urls"
WSGI_APPLICATION = "benchdrf.wsgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_DRF_DB", "/nonexistent/bench.sqlite3"),
        # one connection per worker for its whole life, as in production
        "CONN_MAX_AGE": None,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}
LOGGING_CONFIG = None
