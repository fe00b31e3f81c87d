"""What every part of the web service shares: settings, the database, authentication and
sessions, the request middlewares, and small text and JSON helpers."""
