"""Configuration: defaults -> file -> env -> flags, validation errors naming the key, secrets hidden."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ccserver.cli import main
from ccserver.config import ConfigError, load_config
from ccserver.redact import mask_url


def write(tmp_path, text: str):
    path = tmp_path / "ccserver.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_defaults():
    config = load_config(environ={})
    assert str(config.agi.listen) == "127.0.0.1:4573"
    assert str(config.http.listen) == "127.0.0.1:8080"
    assert str(config.ws.listen) == "127.0.0.1:8081"
    assert config.redis.url == ""
    assert config.phone.default_region == "CN"
    assert config.database_url.startswith("sqlite:///") and config.database_url.endswith("ccserver.sqlite3")
    assert config.auth.token_lifetime_hours == 12.0


def test_precedence_file_env_flag(tmp_path):
    path = write(tmp_path, '[http]\nlisten = "127.0.0.1:9001"\n[ami]\nhost = "pbx1"\nport = 5039\n')
    config = load_config(path, environ={})
    assert (str(config.http.listen), config.ami.host, config.ami.port) == ("127.0.0.1:9001", "pbx1", 5039)
    assert config.sources[("http", "listen")] == "file"

    config = load_config(path, environ={"CCSERVER_HTTP_LISTEN": "127.0.0.1:9002", "CCSERVER_AMI_PORT": "5040"})
    assert (str(config.http.listen), config.ami.port) == ("127.0.0.1:9002", 5040)
    assert config.sources[("ami", "port")] == "env"
    assert config.ami.host == "pbx1"

    config = load_config(path, environ={"CCSERVER_HTTP_LISTEN": "127.0.0.1:9002"},
                         overrides={("http", "listen"): "127.0.0.1:9003", ("ami", "host"): None})
    assert str(config.http.listen) == "127.0.0.1:9003" and config.sources[("http", "listen")] == "flag"
    assert config.ami.host == "pbx1"  # a flag left unset does not override


def test_env_names_from_the_issue():
    env = {
        "CCSERVER_DATABASE_URL": "postgresql+psycopg://u@h/db",
        "CCSERVER_REDIS_URL": "redis://127.0.0.1:6379/0",
        "CCSERVER_AMI_HOST": "10.0.0.5",
        "CCSERVER_AMI_PORT": "5038",
        "CCSERVER_AMI_USERNAME": "ccserver",
        "CCSERVER_AMI_SECRET": "s3cret",
        "CCSERVER_AGI_LISTEN": "0.0.0.0:4573",
        "CCSERVER_HTTP_LISTEN": "0.0.0.0:8080",
        "CCSERVER_WS_LISTEN": "0.0.0.0:8081",
        "CCSERVER_PHONE_DEFAULT_REGION": "hk",
        "CCSERVER_SERVER_TIME_ZONE": "Asia/Hong_Kong",
        "CCSERVER_SERVER_SECRET_KEY": "k" * 32,
    }
    config = load_config(environ=env)
    assert config.database_url == "postgresql+psycopg://u@h/db"
    assert config.ami.secret == "s3cret" and config.phone.default_region == "HK"
    assert config.secret_key() == b"k" * 32


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"CCSERVER_AMI_PORT": "99999"}, "ami.port (CCSERVER_AMI_PORT, from env) = '99999': port must be 1-65535"),
        ({"CCSERVER_AMI_PORT": "abc"}, "ami.port"),
        ({"CCSERVER_AGI_LISTEN": "4573"}, "agi.listen (CCSERVER_AGI_LISTEN, from env) = '4573': expected host:port"),
        ({"CCSERVER_PHONE_DEFAULT_REGION": "XX"}, "phone.default_region"),
        ({"CCSERVER_SERVER_TIME_ZONE": "Mars/Base"}, "not an IANA time zone"),
        ({"CCSERVER_DATABASE_URL": "just-a-path"}, "expected a SQLAlchemy URL"),
        ({"CCSERVER_REDIS_URL": "http://x"}, "expected redis://"),
        ({"CCSERVER_SERVER_LOG_JSON": "maybe"}, "expected true or false"),
        ({"CCSERVER_AUTH_TOKEN_LIFETIME_HOURS": "-1"}, "must be greater than 0"),
        ({"CCSERVER_AMI_USERNAME": "cc\r\nAction: Originate"}, "must not contain CR, LF or NUL"),
        ({"CCSERVER_AMI_HOSTNAME": "x"}, "CCSERVER_AMI_HOSTNAME: unknown setting"),
        ({"CCSERVER_NOPE": "x"}, "CCSERVER_NOPE: unknown setting"),
    ],
)
def test_invalid_values_name_the_key(env, expected):
    with pytest.raises(ConfigError) as info:
        load_config(environ=env)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_keys_and_sections_in_file(tmp_path):
    with pytest.raises(ConfigError, match=r"\[http\] listn: unknown key"):
        load_config(write(tmp_path, '[http]\nlistn = "x"\n'), environ={})
    with pytest.raises(ConfigError, match=r"unknown section \[htp\]"):
        load_config(write(tmp_path, '[htp]\nlisten = "x"\n'), environ={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[http\n"), environ={})
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml", environ={})


def test_secrets_are_never_shown():
    config = load_config(environ={"CCSERVER_AMI_SECRET": "topsecret", "CCSERVER_SERVER_SECRET_KEY": "x" * 32})
    text = repr(config.redacted())
    assert "topsecret" not in text and "x" * 32 not in text
    with pytest.raises(ConfigError) as info:
        load_config(environ={"CCSERVER_AMI_SECRET": "bad\nsecret"})
    assert "bad" not in str(info.value) and "(hidden)" in str(info.value)


def test_generated_secret_key_is_kept_private(tmp_path):
    config = load_config(environ={"CCSERVER_SERVER_DATA_DIR": str(tmp_path)})
    first = config.secret_key()
    assert len(first) == 64 and config.secret_key() == first
    mode = stat.S_IMODE(os.stat(tmp_path / "secret_key").st_mode)
    assert mode == 0o600


def test_cli_reports_bad_config_in_one_line(capsys, monkeypatch):
    monkeypatch.setenv("CCSERVER_HTTP_LISTEN", "nowhere")
    assert main(["config", "show"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "http.listen" in err[0]


def test_cli_config_show_masks_secret(capsys, monkeypatch):
    monkeypatch.setenv("CCSERVER_AMI_SECRET", "hunter2")
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and '"from": "env"' in out


def test_several_ami_servers_from_file_and_env(tmp_path):
    path = write(tmp_path, """
[ami]
host = "10.0.0.1"
username = "cc"
secret = "one"

[[ami.servers]]
name = "store-bj"
host = "10.1.0.5"
username = "cc"
secret = "two"
""")
    servers = load_config(path, environ={}).ami_servers()
    assert [(s.name, s.host, s.port) for s in servers] == [
        ("default", "10.0.0.1", 5038),
        ("store-bj", "10.1.0.5", 5038),
    ]
    assert "two" not in repr(servers)
    env = {"CCSERVER_AMI_SERVERS": '[{"name": "sh", "host": "10.2.0.5", "port": 5039, "username": "u", "secret": "s"}]'}
    servers = load_config(environ=env).ami_servers()
    assert [(s.name, s.port, s.secret) for s in servers] == [("sh", 5039, "s")]
    assert "\"s\"" not in repr(load_config(environ=env).redacted())


@pytest.mark.parametrize(
    "value, message",
    [
        ('[{"name": "a"}]', "host is required"),
        ('[{"name": "a b", "host": "h"}]', "name must be"),
        ('[{"name": "a", "host": "h"}, {"name": "a", "host": "h2"}]', "duplicate name"),
        ('[{"name": "a", "host": "h", "sekret": "x"}]', "unknown key(s) sekret"),
        ('[{"name": "a", "host": "h", "port": 0}]', "port must be"),
        ('{"name": "a"}', "expected a list"),
        ("[", "expected a JSON list"),
    ],
)
def test_bad_ami_servers(value, message):
    with pytest.raises(ConfigError) as info:
        load_config(environ={"CCSERVER_AMI_SERVERS": value})
    assert message in str(info.value) and "ami.servers" in str(info.value)


def test_agi_default_variables():
    assert load_config(environ={}).agi.default_variables == {"CC_QUEUE": "default", "CC_PRIORITY": "1"}
    env = {"CCSERVER_AGI_DEFAULT_VARIABLES": '{"CC_QUEUE": "hotline"}'}
    assert load_config(environ=env).agi.default_variables == {"CC_QUEUE": "hotline"}
    for bad in ('{"CC QUEUE": "x"}', '{"CC_QUEUE": "a,b"}', '{"CC_QUEUE": "x\\r\\nHANGUP"}', "[1]"):
        with pytest.raises(ConfigError, match="agi.default_variables"):
            load_config(environ={"CCSERVER_AGI_DEFAULT_VARIABLES": bad})


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"CCSERVER_ROUTING_PRIORITY": '{"gold": "high"}'}, "[routing]: routing.priority.gold: expected an integer"),
        ({"CCSERVER_ROUTING_VIP_TIERS": '["platinum"]'}, "unknown tier 'platinum'"),
        ({"CCSERVER_ROUTING_QUEUES": '{"sales": {"gold": "vip queue"}}'}, "routing.queues.sales"),
        ({"CCSERVER_CALLROUTING_DEADLINE_SECONDS": "30"}, "callrouting.deadline_seconds"),
        ({"CCSERVER_CALLROUTING_MARGIN_SECONDS": "2"}, "margin_seconds must be below"),
        ({"CCSERVER_CALLROUTING_UNKNOWN_DID_QUEUE": "hot line"}, "callrouting.unknown_did_queue"),
        ({"CCSERVER_SCORES_NIGHTLY_AT": "25:00"}, "scores.nightly_at"),
        ({"CCSERVER_SCORES_TIER_SHARES": '{"diamond": 0.9, "gold": 0.5}'}, "exceed 1"),
        ({"CCSERVER_SCORES_WEIGHTS": '{"bogus": 1}'}, "unknown weight(s) bogus"),
    ],
)
def test_routing_and_scores_settings_are_validated(env, expected):
    with pytest.raises(ConfigError) as info:
        load_config(environ=env)
    assert expected in str(info.value)


def test_routing_rules_from_env_reach_the_routing_service():
    from ccserver.callrouting.settings import RoutingSettings

    config = load_config(environ={"CCSERVER_ROUTING_MAX_PRIORITY": "15", "CCSERVER_ROUTING_PRIORITY": '{"gold": 9}',
                                  "CCSERVER_CALLROUTING_DEADLINE_SECONDS": "1.2"})
    settings = RoutingSettings.from_config(config)
    rules = settings.routing_rules()
    assert (rules.max_priority, rules.priority["gold"], rules.priority["diamond"]) == (15, 9, 10)
    assert settings.deadline_seconds == 1.2 and settings.default_region == "CN"



@pytest.mark.parametrize("raw", ['["127.0.0.1", "10.1.0.0/24"]', "127.0.0.1, 10.1.0.0/24", " 127.0.0.1,10.1.0.0/24 ,"])
def test_list_settings_from_the_environment_as_json_or_comma_separated(raw):
    config = load_config(environ={"CCSERVER_AGI_ALLOW": raw, "CCSERVER_HTTP_TRUSTED_PROXIES": raw})
    assert config.agi.allow == ["127.0.0.1/32", "10.1.0.0/24"]
    assert config.http.trusted_proxies == ["127.0.0.1/32", "10.1.0.0/24"]


def test_list_settings_defaults_and_errors():
    config = load_config(environ={})
    assert config.agi.allow == ["127.0.0.0/8", "::1/128"]
    assert config.http.trusted_proxies == [] and config.ws.allowed_origins == []
    with pytest.raises(ConfigError, match=r"agi.allow .*'bogus' is not an IP address"):
        load_config(environ={"CCSERVER_AGI_ALLOW": "127.0.0.1,bogus"})
    with pytest.raises(ConfigError, match="expected a JSON array"):
        load_config(environ={"CCSERVER_AGI_ALLOW": "[1,"})
    with pytest.raises(ConfigError, match="expected a list of strings"):
        load_config(environ={"CCSERVER_AGI_ALLOW": "[1, 2]"})
    origins = load_config(environ={"CCSERVER_WS_ALLOWED_ORIGINS": "https://CC.example.com/,http://127.0.0.1:8080"})
    assert origins.ws.allowed_origins == ["https://cc.example.com", "http://127.0.0.1:8080"]
    with pytest.raises(ConfigError, match="is not an origin"):
        load_config(environ={"CCSERVER_WS_ALLOWED_ORIGINS": "https://cc.example.com/path"})


SECRET_URLS = {
    "CCSERVER_DATABASE_URL": "postgresql+psycopg://cc:hunter2@db.example:5432/cc?sslmode=require",
    "CCSERVER_REDIS_URL": "redis://:s3cr3t-redis@redis.example:6379/0",
}


def test_config_show_masks_url_passwords_and_shows_the_database_in_use(capsys, monkeypatch, tmp_path):
    for name, value in SECRET_URLS.items():
        monkeypatch.setenv(name, value)
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "s3cr3t-redis" not in out
    shown = json.loads(out)
    assert shown["database"]["url"]["value"] == "postgresql+psycopg://cc:***@db.example:5432/cc?sslmode=require"
    assert shown["redis"]["url"]["value"] == "redis://:***@redis.example:6379/0"
    monkeypatch.delenv("CCSERVER_DATABASE_URL")
    monkeypatch.setenv("CCSERVER_SERVER_DATA_DIR", str(tmp_path))
    assert main(["config", "show"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["database"]["url"] == {"value": f"sqlite:///{tmp_path.resolve() / 'ccserver.sqlite3'}",
                                        "from": "default"}


@pytest.mark.parametrize("name, value, secret", [
    ("CCSERVER_DATABASE_URL", "postgresql+psycopg://cc:hunter2@db:notaport/cc", "hunter2"),
    ("CCSERVER_DATABASE_URL", "postgresql://db:port/cc?password=hunter2", "hunter2"),
    ("CCSERVER_REDIS_URL", "http://user:s3cr3t-redis@redis:6379/0", "s3cr3t-redis"),
])
def test_config_errors_mask_url_passwords(name, value, secret):
    with pytest.raises(ConfigError) as info:
        load_config(environ={name: value})
    assert secret not in str(info.value) and "***" in str(info.value)


@pytest.mark.parametrize("url, masked", [
    ("postgresql+psycopg://cc:hunter2@db/cc", "postgresql+psycopg://cc:***@db/cc"),
    ("postgresql://cc:pa:ss@w/rd@db:5432/cc", "postgresql://cc:***@db:5432/cc"),  # ':', '/', '@' in the password
    ("redis://:pw@127.0.0.1:6379/2", "redis://:***@127.0.0.1:6379/2"),
    ("rediss://default:pw@redis/0", "rediss://default:***@redis/0"),
    ("unix:///run/redis.sock?db=1&password=pw", "unix:///run/redis.sock?db=1&password=***"),
    ("postgresql://db/cc?user=u&PASSWORD=pw&sslmode=require", "postgresql://db/cc?user=u&PASSWORD=***&sslmode=require"),
    ("postgresql+psycopg://cc@db:5432/cc", "postgresql+psycopg://cc@db:5432/cc"),
    ("sqlite:////var/lib/ccserver/ccserver.sqlite3", "sqlite:////var/lib/ccserver/ccserver.sqlite3"),
    ("", ""),
])
def test_mask_url(url, masked):
    assert mask_url(url) == masked


def test_config_show_reports_the_generated_secret_key_masked(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("CCSERVER_SERVER_DATA_DIR", str(tmp_path))
    assert main(["config", "show"]) == 0
    shown = json.loads(capsys.readouterr().out)["server"]["secret_key"]
    assert shown == {"value": "", "from": f"not set: generated into {tmp_path / 'secret_key'} at the first start"}
    key = load_config(environ={"CCSERVER_SERVER_DATA_DIR": str(tmp_path)}).secret_key().decode()
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert key not in out
    assert json.loads(out)["server"]["secret_key"] == {"value": "********",
                                                       "from": f"generated file {tmp_path / 'secret_key'}"}
    monkeypatch.setenv("CCSERVER_SERVER_SECRET_KEY", "configured-secret")  # a configured key wins: env, masked
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "configured-secret" not in out
    assert json.loads(out)["server"]["secret_key"] == {"value": "********", "from": "env"}
