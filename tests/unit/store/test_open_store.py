"""`open_store` picks the backend from the URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from svcnet.store import StoreError, open_store
from svcnet.store.sqlite import SQLiteStore


@pytest.mark.parametrize("form", [
    pytest.param("sqlite://{path}", id="sqlite-url"),
    pytest.param("{path}", id="plain-path"),
])
async def test_sqlite_urls(tmp_path: Path, form: str) -> None:
    path = tmp_path / "sub" / "state.db"
    store = await open_store(form.format(path=path))
    try:
        assert isinstance(store, SQLiteStore)
        await store.create("/a", b"1")
    finally:
        await store.close()
    assert path.exists()


@pytest.mark.parametrize("url", ["mysql://host/db", "etcd+https://host:2379"])
async def test_unknown_schemes_are_refused(url: str) -> None:
    with pytest.raises(StoreError, match="unsupported store"):
        await open_store(url)
