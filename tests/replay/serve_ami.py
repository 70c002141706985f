"""Serve an AMI transcript on a TCP port from its own process (for end-to-end tests of `ccserver run`).

    python -m tests.replay.serve_ami TRANSCRIPT --port-file F [--port P] [--speed X] [--skip-action Originate]

Listens on loopback port P (default 0: any free one), writes the bound port to F once listening; exits after
--max-seconds.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("transcript")
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--speed", type=float, default=None)
    parser.add_argument("--skip-action", action="append", default=[])
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--retime", action="store_true", help="Timestamp headers = when each message is sent")
    args = parser.parse_args()

    from twisted.internet import reactor

    from tests.replay.ami_peer import AMIReplayFactory

    factory = AMIReplayFactory(args.transcript, clock=reactor, speed=args.speed, skip_actions=args.skip_action,
                               retime=args.retime)
    port = reactor.listenTCP(args.port, factory, interface="127.0.0.1")
    tmp = Path(args.port_file + ".tmp")
    tmp.write_text(str(port.getHost().port))
    tmp.rename(args.port_file)
    reactor.callLater(args.max_seconds, reactor.stop)
    reactor.run()


if __name__ == "__main__":
    main()
