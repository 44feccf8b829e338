"""Each TLS test gets its own CA (trustme) and files in its tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from tls_helpers import Pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)
