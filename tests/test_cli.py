"""The `ccserver` command's own behaviour: progress bar, scores recompute, asterisk lint."""

from __future__ import annotations

import io
from pathlib import Path

from ccserver.cli import ProgressBar, main

ROOT = Path(__file__).resolve().parent.parent


def test_progress_bar_draws_the_end_once():
    out = io.StringIO()
    bar = ProgressBar("x", stream=out)
    bar(0, 10)
    bar(10, 10)
    bar(10, 10)
    assert out.getvalue().count("100.0%") == 1 and out.getvalue().endswith("\n")


def test_asterisk_lint_passes_the_shipped_snippets(capsys):
    files = sorted(str(p) for p in (ROOT / "config" / "asterisk").glob("*.conf"))
    assert len(files) >= 3
    assert main(["asterisk", "lint", *files]) == 0
    assert "0 error(s)" in capsys.readouterr().out


def test_scores_recompute_needs_a_migrated_database(tmp_path, capsys):
    assert main(["scores", "recompute", "--data-dir", str(tmp_path)]) == 2
    assert "ccserver db upgrade" in capsys.readouterr().err


def test_scores_recompute_rescores_demo_customers(tmp_path, capsys):
    data = ["--data-dir", str(tmp_path)]
    assert main(["db", "upgrade", *data]) == 0
    assert main(["demo-data", "--customers", "300", "--seed", "5", "--as-of", "2026-11-23", *data]) == 0
    capsys.readouterr()
    assert main(["scores", "recompute", "--as-of", "2026-11-23", *data]) == 0
    out = capsys.readouterr().out
    assert "rescored 300 customers" in out and "diamond" in out and "prospect" in out


def test_agents_command_lists_and_says_when_asterisk_is_unreachable(tmp_path, capsys, monkeypatch):
    import json
    import socket

    data = ["--data-dir", str(tmp_path)]
    assert main(["db", "upgrade", *data]) == 0
    assert main(["demo-data", "--customers", "50", "--seed", "5", "--as-of", "2026-11-23", *data]) == 0
    capsys.readouterr()
    assert main(["agents", "list", *data]) == 0
    assert json.loads(capsys.readouterr().out) == []
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("CCSERVER_AMI_HOST", "127.0.0.1")
    monkeypatch.setenv("CCSERVER_AMI_PORT", str(port))
    monkeypatch.setattr("ccserver.agents.command.CONNECT_TIMEOUT", 1.0)
    assert main(["agents", "login", "8001", "--queues", "sales", *data]) == 3
    assert "Asterisk default is not connected" in capsys.readouterr().err
    assert main(["agents", "login", "8001", "--queues", "sales,", "--interface", "PJSIP/8001 x", *data]) == 1
    assert "interface must be an Asterisk interface" in capsys.readouterr().err
