"""Pod addresses from the node's podCIDR — pure.

The network address, the first host address (the bridge's gateway in netns mode) and the broadcast address are
never handed out; a preferred address (the one a pod had before an agent restart) is kept when it is free.
"""

from __future__ import annotations

import ipaddress


class PodIPs:
    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr, strict=False)
        self.used: set[str] = set()
        self._next = 2

    def gateway(self) -> str:
        return str(self.network.network_address + 1)

    def _usable(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        offset = int(ip) - int(self.network.network_address)
        return ip in self.network and 2 <= offset < self.network.num_addresses - 1

    def allocate(self, preferred: str = "") -> str:
        if preferred and self._usable(preferred) and preferred not in self.used:
            self.used.add(preferred)
            return preferred
        size = self.network.num_addresses
        for step in range(size):
            offset = (self._next - 2 + step) % max(size - 3, 1) + 2
            candidate = str(self.network.network_address + offset)
            if candidate not in self.used and self._usable(candidate):
                self._next = offset + 1
                self.used.add(candidate)
                return candidate
        raise OSError(f"no free pod address left in {self.network}")

    def release(self, address: str) -> None:
        self.used.discard(address)
