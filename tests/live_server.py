"""A real `ccserver run` process for tests that need one (browser tests, several nodes): its own data folder with
demo data, ephemeral ports, an optional AMI replay peer playing a recorded transcript as Asterisk."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent



def free_port() -> int:
    """A TCP port nobody listens on now (for a peer the server will retry until it starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(data_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCSERVER_")}
    env.update({"CCSERVER_SERVER_DATA_DIR": str(data_dir), "CCSERVER_HTTP_LISTEN": "127.0.0.1:0",
                "CCSERVER_AGI_LISTEN": "127.0.0.1:0", "CCSERVER_WS_LISTEN": "127.0.0.1:0", "PYTHONUNBUFFERED": "1"})
    env.update(extra or {})
    return env


def ccserver(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ccserver", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)


@dataclass
class LiveServer:
    data_dir: Path
    customers: int = 100
    transcript: str | None = None  # an AMI transcript the replay peer plays as Asterisk
    speed: float | None = None  # the peer's pace (None: as fast as ccserver reads; 0.05: 20 times slower than recorded)
    retime: bool = False  # the peer stamps events with the time it sends them (waits measured on today's clock)
    extra_env: dict[str, str] = field(default_factory=dict)
    demo_args: list[str] = field(default_factory=list)  # more `ccserver demo-data` options ("--kpi-days", "3")
    url: str = ""
    agi_port: int = 0
    demo_password: str = ""
    process: subprocess.Popen[str] | None = None
    peer: subprocess.Popen[bytes] | None = None
    log: list[str] = field(default_factory=list)

    def start(self, timeout: float = 60.0) -> LiveServer:
        env = _env(self.data_dir, self.extra_env)
        for args in (["db", "upgrade"], ["demo-data", "--customers", str(self.customers), "--seed", "3",
                                         "--as-of", "2026-11-23", "--agent-interface", "Local/{ext}@agent-phones/n",
                                         *self.demo_args]):
            done = ccserver(args, env)
            if done.returncode != 0:
                raise RuntimeError(f"ccserver {' '.join(args)} failed: {done.stderr}")
        logins = (self.data_dir / "demo-logins.txt").read_text(encoding="utf-8")
        match = re.search(r"demo password:\s+(\S+)", logins)
        assert match, logins
        self.demo_password = match.group(1)
        if self.transcript:
            port_file = self.data_dir / "ami.port"
            self.peer = subprocess.Popen([sys.executable, "-m", "tests.replay.serve_ami", self.transcript,
                                          "--port-file", str(port_file), "--skip-action", "Originate",
                                          "--max-seconds", "600",
                                          *(["--speed", str(self.speed)] if self.speed else []),
                                          *(["--retime"] if self.retime else [])], cwd=ROOT)
            deadline = time.monotonic() + 20
            while not port_file.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            env.update({"CCSERVER_AMI_HOST": "127.0.0.1", "CCSERVER_AMI_PORT": port_file.read_text(),
                        "CCSERVER_AMI_USERNAME": "ccserver", "CCSERVER_AMI_SECRET": "ccserver-secret"})
        self.process = subprocess.Popen([sys.executable, "-m", "ccserver", "run"], cwd=ROOT, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not (self.url and self.agi_port):
            line = self.process.stdout.readline() if self.process.stdout else ""
            if not line:
                if self.process.poll() is not None:
                    raise RuntimeError("ccserver run exited:\n" + "".join(self.log))
                continue
            self.log.append(line)
            if m := re.search(r"web:\s+(http://\S+?)/ ", line):
                self.url = m.group(1)
            if m := re.search(r"FastAGI: agi://[\d.]+:(\d+)/", line):
                self.agi_port = int(m.group(1))
        if not self.url:
            self.stop()
            raise RuntimeError("ccserver run did not come up:\n" + "".join(self.log))
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                out, _ = self.process.communicate(timeout=20)
                self.log.append(out or "")
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.peer is not None:
            self.peer.kill()
            self.peer.wait()
