"""Administration: users, CRM import/export and erasure (the CLI and the admin API call the same functions)."""
