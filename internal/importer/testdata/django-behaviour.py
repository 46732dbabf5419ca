# The settings the django behaviour table imports.
from corsheaders.defaults import default_headers

CORS_ALLOWED_ORIGINS = ["https://app.example.com", "http://localhost:8000", "null"]
CORS_ALLOWED_ORIGIN_REGEXES = [
    r"^https://\w+\.preview\.example\.com$",
    r"^https://shop\.example\.com",
]
CORS_URLS_REGEX = r"^/api/"
CORS_ALLOW_HEADERS = (*default_headers, "x-api-key")
CORS_EXPOSE_HEADERS = ["x-request-id"]
CORS_PREFLIGHT_MAX_AGE = 600
