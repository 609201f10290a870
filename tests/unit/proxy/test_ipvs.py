"""The ipvs mode's fallback decision."""

from __future__ import annotations

import pytest

from svcnet.proxy import ipvs


def test_no_ipvs_falls_back_to_iptables_and_says_so() -> None:
    mode, message = ipvs.resolve_mode(strict=False, has_ipvs=False)
    assert mode == "iptables" and "falling back to iptables" in message and "--ipvs-strict" in message


def test_strict_refuses_to_fall_back() -> None:
    with pytest.raises(ValueError, match="--ipvs-strict"):
        ipvs.resolve_mode(strict=True, has_ipvs=False)


def test_with_ipvs_it_still_says_what_runs() -> None:
    mode, message = ipvs.resolve_mode(strict=False, has_ipvs=True)
    assert mode == "iptables" and "does not program IPVS" in message
