"""The documented example config stays loadable and names every built-in key."""

from __future__ import annotations

import tomllib
from pathlib import Path

from ccserver.config import SCHEMA, load_config

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "ccserver.example.toml"


def test_example_config_loads_and_covers_every_key():
    config = load_config(EXAMPLE, environ={})
    assert str(config.http.listen) == "127.0.0.1:8080"
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    for section, keys in SCHEMA.items():
        for key in keys:
            assert key in data.get(section, {}), f"{section}.{key} missing from the example config"


def test_example_routing_rules_are_the_built_in_defaults():
    from routing.rules import RoutingRules

    config = load_config(EXAMPLE, environ={})
    assert RoutingRules.from_dict(config.section("routing")) == RoutingRules()


def test_example_ticket_settings_are_the_built_in_defaults():
    from ccserver.tickets.settings import TicketSettings

    config = load_config(EXAMPLE, environ={})
    assert TicketSettings.from_config(config) == TicketSettings.from_dict({}, config.server.time_zone)


def test_example_ivr_is_the_built_in_menu():
    from ivr.settings import IVRSettings

    config = load_config(EXAMPLE, environ={})
    assert IVRSettings.from_dict(config.section("ivr")) == IVRSettings.from_dict()
    assert config.section("ivr")["menus"]["main"]["options"]["1"] == "line:sales"


def test_example_campaign_settings_are_the_built_in_defaults():
    from ccserver.campaigns.settings import CampaignSettings

    config = load_config(EXAMPLE, environ={})
    assert CampaignSettings.from_config(config) == CampaignSettings()
    assert CampaignSettings.from_config(load_config(environ={})) == CampaignSettings()
