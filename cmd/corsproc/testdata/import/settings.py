# A Django service's settings, as teams write them.
import os
from pathlib import Path

from corsheaders.defaults import default_headers, default_methods

BASE_DIR = Path(__file__).resolve().parent.parent
DEBUG = os.environ.get("DEBUG") == "1"

FRONTENDS = [
    "https://app.example.com",
    "https://admin.example.com/",  # a trailing slash, as people write it
]

CORS_ALLOWED_ORIGINS = FRONTENDS + [
    "http://localhost:3000",
]
CORS_ALLOWED_ORIGIN_REGEXES = [
    r"^https://[a-z0-9-]+\.preview\.example\.com$",
    r"^https://shop\.example\.com",  # no $: re.match admits what follows
]
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_HEADERS = (
    *default_headers,
    "x-api-key",
)
CORS_ALLOW_METHODS = list(default_methods) + ["HEAD"]
CORS_EXPOSE_HEADERS = ["X-Request-Id", 'X-Total-' 'Count']
CORS_PREFLIGHT_MAX_AGE = 60 * 60
CORS_ALLOW_CREDENTIALS = True
CORS_ALLOW_PRIVATE_NETWORK = False
