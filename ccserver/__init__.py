"""ccserver: the contact-center brain beside Asterisk."""

__version__ = "0.1.0"
