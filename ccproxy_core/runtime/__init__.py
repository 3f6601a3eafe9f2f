"""The CLI and the running server: settings, the app factory, uvicorn, ccproxy's own logging."""
