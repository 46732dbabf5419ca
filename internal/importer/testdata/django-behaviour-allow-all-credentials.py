# Every origin, with credentials: the pair corsproc refuses.
CORS_ALLOW_ALL_ORIGINS = True
CORS_ALLOW_CREDENTIALS = True
