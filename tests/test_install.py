"""An installed wheel carries its profiles, mappings and schemas (issue 12, point 2).

The wheel is built from this checkout and installed, without its dependencies, into a venv of
its own that borrows the test venv's packages through a ``.pth`` line (the editable install's
hook is not run from there, so ``reko_fhir`` is the wheel's). Every command then runs from ``/``:
nothing may depend on the working directory being the repository. CI does the same with a clean
venv and every dependency installed (``.ci/run``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.golden import FIXTURES, ROOT

INVALID = FIXTURES / "invalid" / "procedure-no-diagnosis.json"
EXPORT = FIXTURES / "mapping" / "a-primary-care" / "input.nordjournal-json.json"


def copy_of_checkout(into: Path) -> Path:
    """What the wheel is built from, fresh: a build in the checkout could reuse its build/."""
    source = into / "source"
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    shutil.copytree(ROOT / "src", source / "src", symlinks=True, ignore=skip)
    for folder in ("profiles", "mappings"):
        shutil.copytree(ROOT / folder, source / folder)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    return source


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin folder of a venv holding the wheel of this checkout."""
    work = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip"]
    source = copy_of_checkout(work)
    built = subprocess.run(
        [*pip, "wheel", "-q", "--no-deps", "-w", str(work), str(source)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    wheel = next(work.glob("reko_fhir-*.whl"))
    target = work / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    python = target / "bin" / "python"
    site = Path(python_says(python, "import sysconfig; print(sysconfig.get_paths()['purelib'])"))
    # The test venv's packages serve as the dependencies.
    (site / "borrowed-dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )
    done = subprocess.run(
        [*pip, "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    where = python_says(python, "import reko_fhir; print(reko_fhir.__file__)")
    assert where.startswith(str(site)), "the wheel's reko_fhir, not the checkout's"
    return target / "bin"


def python_says(python: Path, code: str) -> str:
    return subprocess.check_output([python, "-c", code], cwd="/", text=True).strip()


def run(
    bin_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "reko-fhir"), *args],
        cwd="/",
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env,
    )


def test_an_installed_validator_finds_the_profiles_from_any_folder(installed: Path) -> None:
    done = run(installed, "validate", str(INVALID))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Procedure.reasonCode: max allowed = 0, but found 1" in done.stdout
    assert "1 resource(s): 1 error(s)" in done.stdout


def test_an_installed_mapper_finds_its_mappings_by_name_from_any_folder(installed: Path) -> None:
    listed = run(installed, "map", "--list")
    assert listed.returncode == 0, listed.stderr
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == [
        "nordjournal-json",
        "regionexport-csv",
        "vardsys-xml",
    ]
    mapped = run(installed, "map", "-m", "nordjournal-json", str(EXPORT))
    assert mapped.returncode == 0, mapped.stderr
    assert '"resourceType": "Bundle"' in mapped.stdout


def test_the_installed_package_carries_the_rivta_schemas(installed: Path) -> None:
    check = (
        "from reko_fhir.delivery.rivta.schemas import RESPONDER_XSDS, RivtaSchemas\n"
        "schemas = RivtaSchemas()\n"
        "for ns in RESPONDER_XSDS: schemas.schema_for(ns)\n"
        "print(schemas.root)\n"
    )
    done = subprocess.run(
        [installed / "python", "-c", check], cwd="/", capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "site-packages" in done.stdout


def test_without_its_profiles_no_command_starts(installed: Path, tmp_path: Path) -> None:
    """Validating against nothing would pass everything: refuse, in one line, exit 2."""
    profiles = Path(
        subprocess.check_output(
            [
                installed / "python",
                "-c",
                "from reko_fhir.package_data import PROFILES_DIR as p; print(p)",
            ],
            text=True,
        ).strip()
    )
    moved = tmp_path / "profiles"
    shutil.move(profiles, moved)
    try:
        env = {"PATH": "/usr/bin:/bin", "REKO_DATA_DIR": str(tmp_path / "data")}
        for args in (
            ("validate", str(INVALID)),
            ("serve", "--port", "1"),
            ("pull", "--target", "x"),
        ):
            done = run(installed, *args, env=env)
            assert done.returncode == 2, (args, done.stdout, done.stderr)
            assert done.stderr.count("\n") == 1, done.stderr
            assert "no reko profiles" in done.stderr
            assert "Traceback" not in done.stderr
    finally:
        shutil.move(moved, profiles)
