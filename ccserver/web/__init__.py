"""HTTP API and pages, served by twisted.web on the one event loop."""
