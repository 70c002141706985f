"""The [campaigns] settings: validated at start, errors name the key."""

from __future__ import annotations

import pytest

from ccserver.campaigns.settings import CampaignSettings
from ccserver.config import ConfigError, load_config


@pytest.mark.parametrize(("env", "words"), [
    ({"CCSERVER_CAMPAIGNS_WINDOW_START": "21:00"}, "start must be before end"),
    ({"CCSERVER_CAMPAIGNS_WINDOW_END": "25:00"}, "campaigns.window_end"),
    ({"CCSERVER_CAMPAIGNS_HOLIDAYS": "2026-13-01"}, "campaigns.holidays"),
    ({"CCSERVER_CAMPAIGNS_MARKETING_TYPES": "insurance,spam"}, "campaigns.marketing_types"),
    ({"CCSERVER_CAMPAIGNS_DIAL": "PJSIP/trunk"}, "campaigns.dial"),
    ({"CCSERVER_CAMPAIGNS_RETRY_SPACING": '{"reached": 5}'}, "retry_spacing"),
    ({"CCSERVER_CAMPAIGNS_ABANDON_CAP": "0.9"}, "campaigns.abandon_cap"),
    ({"CCSERVER_CAMPAIGNS_MAX_ATTEMPTS": "0"}, "campaigns.max_attempts"),
])
def test_bad_settings_name_the_key(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace(".", r"\.")):
        load_config(environ=env)


def test_settings_from_the_environment() -> None:
    config = load_config(environ={"CCSERVER_CAMPAIGNS_WINDOW_START": "08:30", "CCSERVER_CAMPAIGNS_HOLIDAYS":
                                  "2026-10-01,2026-10-02", "CCSERVER_CAMPAIGNS_AMD": "true",
                                  "CCSERVER_CAMPAIGNS_RETRY_SPACING": '{"busy": 60}',
                                  "CCSERVER_CAMPAIGNS_MARKETING_TYPES": '["insurance"]'})
    s = CampaignSettings.from_config(config)
    assert s.window.start.isoformat() == "08:30:00" and len(s.window.holidays) == 2 and s.amd
    assert dict(s.policy.spacing) == {"busy": 60.0} and s.marketing_types == frozenset({"insurance"})
