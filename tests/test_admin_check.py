"""`ccserver check` against the AMI replay peer: a manager user with too much privilege is reported.

The login exchange is the recorded ``ami-login-challenge`` session (banner, MD5 challenge, login, logoff). No
recording of ``ListCommands`` exists, so its answer is composed here in manager.c's own format
(``action_listcommands``: ``"%s: %s (Priv: %s)\\r\\n"`` per action the user's write classes reach, ``<none>`` for
actions anyone may run) for two users: the lab's ``ccserver`` user (``write = call,agent,user,originate,reporting,
system``, tests/data/asterisk/lab-config/manager.conf) and one with only what ccserver needs.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ccserver.admin.check import dangerous_actions
from ccserver.cli import main
from tests.conftest import TEST_REDIS_URL

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT / "tests" / "data" / "asterisk" / "ami-login-challenge.jsonl"

NEEDED = [
    "Ping: Keepalive command. (Priv: <none>)",
    "Originate: Originate a call. (Priv: originate,all)",
    "QueueAdd: Add interface to queue. (Priv: agent,all)",
    "QueuePause: Makes a queue member temporarily unavailable. (Priv: agent,all)",
    "QueueStatus: Show queue status. (Priv: <none>)",
    "CoreShowChannels: List currently active channels. (Priv: system,reporting,all)",
    "Setvar: Sets a channel variable or function value. (Priv: call,all)",
]
SYSTEM = [
    "Reload: Send a reload event. (Priv: system,config,all)",
    "ModuleLoad: Module management. (Priv: system,all)",
    "CoreSettings: Show PBX core settings (version etc). (Priv: system,reporting,all)",
]


def transcript(path: Path, listed: list[str]) -> Path:
    """The recorded session with a ListCommands exchange inserted before the Logoff."""
    entries = [json.loads(line) for line in RECORDED.read_text(encoding="utf-8").splitlines()]
    keep = [e for e in entries if "Ping" not in e["data"] and "NoSuchAction" not in e["data"]]
    logoff = next(i for i, e in enumerate(keep) if e["dir"] == "send" and "Action: Logoff" in e["data"])
    t = keep[logoff]["t"]
    exchange = [
        {"t": t, "dir": "send", "data": "Action: ListCommands\r\nActionID: rec-0-1\r\n\r\n"},
        {"t": t, "dir": "recv",
         "data": "Response: Success\r\nActionID: rec-0-1\r\n" + "".join(f"{line}\r\n" for line in listed) + "\r\n"},
    ]
    path.write_text("".join(json.dumps(e) + "\n" for e in keep[:logoff] + exchange + keep[logoff:]),
                    encoding="utf-8")
    return path


def serve(path: Path, tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    port_file = tmp / f"{path.stem}.port"
    peer = subprocess.Popen([sys.executable, "-m", "tests.replay.serve_ami", str(path), "--port-file",
                             str(port_file), "--max-seconds", "60"], cwd=ROOT)
    deadline = time.monotonic() + 20
    while not port_file.exists() and time.monotonic() < deadline:
        time.sleep(0.02)  # waiting for another process to start, not standing in for a clock
    return peer, int(port_file.read_text())


def test_dangerous_actions_reads_manager_c_lines():
    assert dangerous_actions(NEEDED) == []
    assert dangerous_actions(NEEDED + SYSTEM) == ["Reload (config,system)", "ModuleLoad (system)"]
    assert dangerous_actions(["Command: Execute Asterisk CLI Command. (Priv: command,all)"]) == ["Command (command)"]


@pytest.mark.parametrize(("listed", "verdict"), [(NEEDED + SYSTEM, "FAIL"), (NEEDED, "ok  ")])
def test_check_reports_a_manager_user_with_too_much_privilege(tmp_path, capsys, monkeypatch, listed, verdict):
    data = ["--data-dir", str(tmp_path), "--redis-url", TEST_REDIS_URL]
    assert main(["db", "upgrade", *data]) == 0
    capsys.readouterr()
    peer, port = serve(transcript(tmp_path / "ami-check.jsonl", listed), tmp_path)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    (tmp_path / "sounds").mkdir()
    try:
        monkeypatch.setenv("CCSERVER_AMI_HOST", "127.0.0.1")
        monkeypatch.setenv("CCSERVER_AMI_PORT", str(port))
        monkeypatch.setenv("CCSERVER_AMI_USERNAME", "ccserver")
        monkeypatch.setenv("CCSERVER_AMI_SECRET", "ccserver-secret")
        monkeypatch.setenv("CCSERVER_AGI_LISTEN", f"127.0.0.1:{listener.getsockname()[1]}")
        monkeypatch.setenv("CCSERVER_PROMPTS_SOUND_DIR", str(tmp_path / "sounds"))
        assert main(["check", *data]) == 1  # the prompts are missing in both cases
    finally:
        listener.close()
        peer.kill()
        peer.wait()
    out = capsys.readouterr().out
    lines = {line.split(":", 1)[0][5:]: line for line in out.splitlines() if line[:4] in ("ok  ", "FAIL", "skip")}
    assert lines["database"].startswith("ok   database: reachable, at revision")
    assert lines["redis"].startswith("ok  ")
    ami = next(line for name, line in lines.items() if name.startswith("ami default"))
    assert ami.startswith(verdict), ami
    if verdict == "FAIL":
        assert "too much privilege" in ami and "Reload" in ami and "ModuleLoad" in ami
    assert lines["fastagi"].startswith("ok  ")
    assert lines["prompts"].startswith("FAIL") and "zh/" in lines["prompts"]
    assert "ccserver-secret" not in out


def test_check_says_what_is_unreachable(tmp_path, capsys, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    monkeypatch.setenv("CCSERVER_AMI_HOST", "127.0.0.1")
    monkeypatch.setenv("CCSERVER_AMI_PORT", str(free))
    monkeypatch.setenv("CCSERVER_AGI_LISTEN", f"127.0.0.1:{free}")
    assert main(["check", "--data-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL database: " in out and "ccserver db upgrade" in out
    assert "skip redis" in out and "unreachable" in out and "is `ccserver run` running?" in out
