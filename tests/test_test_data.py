"""The suite carries its own recorded Asterisk traffic: a clone with nothing beside it runs every test."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.replay.agi_transcripts import REPO_ROOT, agi_transcript_paths
from tests.replay.transcripts import ami_transcripts, transcripts_dir


def test_transcripts_live_in_the_repository() -> None:
    folder = transcripts_dir()
    assert folder.resolve().is_relative_to(REPO_ROOT.resolve())
    assert (folder / "README.md").is_file()
    assert len(ami_transcripts()) >= 10
    assert len(agi_transcript_paths(include_load=False)) == 10
    assert len(agi_transcript_paths()) >= 46
    assert (folder / "lab-config" / "extensions.conf").is_file()


def test_missing_test_data_fails_collection_instead_of_skipping(tmp_path) -> None:
    env = {**os.environ, "TRANSCRIPTS_DIR": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only",
         "tests/test_agi_results.py"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode != 0, run.stdout
    assert "Empty parameter set" in run.stdout + run.stderr
