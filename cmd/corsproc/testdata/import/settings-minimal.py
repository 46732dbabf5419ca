CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
