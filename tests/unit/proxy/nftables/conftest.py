"""Fixtures shared by the nftables tests: `netns`, a throwaway network namespace (root only)."""

from tests.unit.proxy.nftables.test_compile import netns  # noqa: F401 — a fixture, found by name
