"""Test-only helpers that replay recorded Asterisk traffic (transcripts) against our protocol code."""
