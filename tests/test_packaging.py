"""Packaging: the install is free of setuptools warnings and the wheel carries every file the server reads."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOP_LEVEL = ("ccserver", "routing", "ivr", "screenpop", "agents_ui")


def declared_packages(monkeypatch: pytest.MonkeyPatch) -> tuple[set[str], dict[str, list[str]]]:
    from setuptools.config.setupcfg import read_configuration

    monkeypatch.chdir(ROOT)  # `find_namespace:` looks relative to the project folder
    options = read_configuration(ROOT / "setup.cfg")["options"]
    return set(options["packages"]), options.get("package_data", {})


def _shipped_folders() -> list[Path]:
    return [d for top in TOP_LEVEL for d in [ROOT / top, *(ROOT / top).rglob("*")]
            if d.is_dir() and "__pycache__" not in d.parts and any(f.is_file() for f in d.iterdir())]


def test_every_folder_with_files_is_a_declared_package(monkeypatch):
    # setuptools warns "Package 'agents_ui.static' is absent from the `packages` configuration" at every
    # `pip install` for a folder that holds files but is not a declared package (data-only folders included).
    packages, _ = declared_packages(monkeypatch)
    missing = [".".join(d.relative_to(ROOT).parts) for d in _shipped_folders()]
    assert [name for name in missing if name not in packages] == []
    assert not any("__pycache__" in name for name in packages)


@pytest.mark.parametrize("package, example", [
    ("ccserver", "defaults.toml"), ("ccserver.migrations", "script.py.mako"),
    ("agents_ui.templates", "login.html"), ("agents_ui.static", "app.css"),
])
def test_data_files_the_server_reads_are_declared(monkeypatch, package, example):
    from fnmatch import fnmatch

    _, package_data = declared_packages(monkeypatch)
    assert any(fnmatch(example, pattern) for pattern in package_data.get(package, [])), package_data
    assert (ROOT / package.replace(".", "/") / example).is_file()


@pytest.mark.slow
@pytest.mark.parametrize("editable", [True, False], ids=["pip install -e", "pip wheel"])
def test_pip_install_prints_no_setuptools_warning(tmp_path, editable):
    """What a user runs, through the build backend pyproject.toml names (and the suite's own pip, which shows the
    backend's warnings), says nothing alarming. Installed into a scratch prefix; the suite's venv is untouched."""
    import subprocess
    import sys

    pip = [sys.executable, "-m", "pip", "--no-cache-dir"]
    if editable:
        # --ignore-installed: pip would otherwise uninstall the suite's own editable install (and its
        # `ccserver` command) before installing into the scratch prefix.
        command = [*pip, "install", "--no-deps", "--ignore-installed", "--prefix", str(tmp_path / "prefix"), "-e",
                   str(ROOT)]
    else:
        command = [*pip, "wheel", "--no-deps", "-w", str(tmp_path), str(ROOT)]
    done = subprocess.run(command,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "Warning" not in output.replace("WARNING: Location", ""), output
    assert "uninstall" not in output.lower()  # the suite's own install (and its `ccserver` command) is left alone
    assert (Path(sys.executable).parent / "ccserver").exists()
