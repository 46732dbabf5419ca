import os
import environ

env = environ.Env()

CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_ALLOWED_ORIGIN_REGEXES = [r"^https://(?!internal)[a-z]+\.example\.com$"]
CORS_ALLOW_HEADERS = [h for h in ("a", "b")]
if os.environ.get("STAGING"):
    CORS_ALLOW_CREDENTIALS = True
CORS_EXPOSE_HEADERS = []
CORS_EXPOSE_HEADERS.append("x-request-id")
CORS_PREFLIGHT_MAX_AGE = int(os.environ["MAX_AGE"])
CORS_URLS_REGEX = r"^/(api|v2)/"
