"""Maps the source folders onto one installed import package, `vigil_ir`.

The folders keep the layout of docs/architecture.md (`bot/`, `migrations/`, `playbooks/`), but an
installed top-level package named `bot` would clash with any other project's, so the wheel installs
them as `vigil_ir`, `vigil_ir.migrations` and `vigil_ir.shipped_playbooks`. Everything else about
the distribution is in pyproject.toml.
"""

from setuptools import find_packages, setup

PACKAGE = "vigil_ir"
MAPPED_FOLDERS = {PACKAGE: "bot", f"{PACKAGE}.migrations": "migrations",
                  f"{PACKAGE}.shipped_playbooks": "playbooks"}


def packages() -> list[str]:
    """Every mapped folder and its sub-packages under their installed names."""
    found = []
    for name, folder in MAPPED_FOLDERS.items():
        found.append(name)
        found += [f"{name}.{sub}" for sub in find_packages(folder)]
    return found


setup(
    packages=packages(),
    package_dir=MAPPED_FOLDERS,
    package_data={
        PACKAGE: ["templates/*", "templates/dashboard/*", "web/dashboard/static/*", "criteria/*.yaml"],
        f"{PACKAGE}.migrations": ["script.py.mako"],
        f"{PACKAGE}.shipped_playbooks": ["*.yaml"],
    },
)
