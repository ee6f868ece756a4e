"""The web edge: litestar controllers for /api, error rendering, authentication, logging."""
