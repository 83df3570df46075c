"""Admin: periods and statements, and the admin index figures."""
