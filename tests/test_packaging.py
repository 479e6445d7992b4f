"""A plain (non-editable) install ships every package and the presets."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import numpy as np

from conftest import REPO
from videostyle.images import save_image


def test_every_package_folder_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for top in ("videostyle", "flow")
             for p in (REPO / top).rglob("__init__.py")}
    assert found | {"videostyle.presets"} == listed


def _build_wheel(tmp_path: Path) -> Path:
    # Built from a copy so the source tree gets no build/ folder.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for folder in ("videostyle", "flow", "configs"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist"), str(source)], check=True, capture_output=True)
    return next((tmp_path / "dist").glob("videostyle-*.whl"))


def test_wheel_ships_the_presets_and_runs_a_preset_outside_the_source(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"videostyle/presets/{p.name}" for p in (REPO / "configs").glob("*.toml")} <= names
    picture = tmp_path / "pic.png"
    save_image(picture, np.random.default_rng(0).integers(0, 255, (16, 16, 3)))
    # The wheel first on the path (a zip is importable), run from a folder with no configs/ near it.
    env = {**os.environ, "PYTHONPATH": str(wheel), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", "import videostyle, sys; from videostyle.cli import main; "
                           "assert videostyle.__file__.startswith(sys.argv[1]); "
                           "main(sys.argv[2:])", str(wheel), "image", str(picture), "--style", str(picture),
                           "-o", str(tmp_path / "out.png"), "--size", "16", "--iterations", "1",
                           "--preset", "preview", "-q"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out.png").is_file()
