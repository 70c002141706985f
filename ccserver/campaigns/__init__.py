"""Outbound campaigns (issue #14): calling windows, the compliance gate, target selection, the service."""
