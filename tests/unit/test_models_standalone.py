"""Every models module can be used on its own: a command that imports only the metering models
must still be able to flush rows whose foreign keys point at housing tables."""

from __future__ import annotations

import subprocess
import sys

import pytest

MODELS_MODULES = [
    "zhkh.housing.models",
    "zhkh.identity.models",
    "zhkh.alarms.models",
    "zhkh.metering.models",
    "zhkh.notify.models",
    "zhkh.core.outbox",
]

# Resolving every foreign key's target column is what a flush does; it fails with
# NoReferencedTableError when the referenced table's module was never imported.
CHECK = """
import importlib, sys
importlib.import_module(sys.argv[1])
from zhkh.core.db import Base
for table in Base.metadata.sorted_tables:
    for key in table.foreign_keys:
        key.column
print(len(Base.metadata.tables))
"""


@pytest.mark.parametrize("module", MODELS_MODULES)
def test_a_models_module_imports_the_tables_its_foreign_keys_reference(module: str) -> None:
    done = subprocess.run([sys.executable, "-c", CHECK, module], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 0
