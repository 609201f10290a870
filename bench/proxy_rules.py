"""Kernel proxy rules benchmark: how long svcnet takes to compile and load its iptables ruleset, next to
`iptables-restore` alone loading the identical text, in one run, inside throwaway network namespaces.

Figures (goals from issue 7): for 1,000 / 5,000 / 10,000 services x 5 endpoints — svcnet's compile time, its full
sync (compile + `iptables-restore --noflush` + hooks), and the bare restore of the same text into a fresh
namespace (the anchor; goal: full sync <= 1.2 x bare restore); then a one-endpoint change synced as a partial sync
(goal < 50 ms at 10,000 services). nftables figures come with the nftables mode. Root only; every namespace is
deleted on exit. Usage: .venv/bin/python bench/proxy_rules.py [--sizes 1000,5000,10000]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import subprocess
import sys
import time
import uuid

from svcnet.proxy import model
from svcnet.proxy.iptables.compile import NodeInfo, compile_rules
from svcnet.proxy.iptables.proxier import IptablesProxier

NODE = NodeInfo("n1", addresses=("172.18.0.11",), cluster_cidr="10.244.0.0/16")


def snapshot(services: int, endpoints: int = 5) -> model.Snapshot:
    infos, eps = {}, {}
    for i in range(services):
        name = model.ServicePortName(f"ns{i % 100}", f"svc-{i}", "http", "TCP")
        infos[name] = model.ServicePortInfo(name, (f"10.{96 + i // 65536}.{i // 256 % 256}.{i % 256}",), 80, "TCP")
        eps[name] = tuple(model.EndpointInfo(f"10.244.{(i * endpoints + j) // 256 % 256}.{(i * endpoints + j) % 256}",
                                             8080, f"n{j % 3}") for j in range(endpoints))
    return model.Snapshot(infos, eps)


def netns() -> str:
    name = f"svcnet-bench-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    return name


def bare_restore(text: str) -> float:
    ns = netns()
    try:
        start = time.perf_counter()
        subprocess.run(["ip", "netns", "exec", ns, "iptables-restore", "-w", "--noflush"], input=text.encode(),
                       check=True)
        return time.perf_counter() - start
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


async def measure(size: int) -> dict[str, float]:
    snap = snapshot(size)
    start = time.perf_counter()
    compiled = compile_rules(snap, NODE)
    compile_s = time.perf_counter() - start
    ns = netns()
    try:
        proxier = IptablesProxier(NODE.name, NODE.addresses, NODE.cluster_cidr, ns)
        start = time.perf_counter()
        await proxier.sync(snap, full=True)
        full_s = time.perf_counter() - start
        first = next(iter(snap.services))
        changed = dataclasses.replace(snap, endpoints={**snap.endpoints, first: snap.endpoints[first][1:]})
        start = time.perf_counter()
        await proxier.sync(changed, full=False)
        partial_s = time.perf_counter() - start
        await proxier.close()
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    return {"compile": compile_s, "full": full_s, "bare": bare_restore(compiled.text), "partial": partial_s,
            "bytes": len(compiled.text)}


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,5000", help="10000 works but iptables-nft takes ~8 min to load it")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/proxy_rules.py needs root (it loads rules inside network namespaces)", file=sys.stderr)
        return 2
    print(f"{'services':>8} {'rules MB':>9} {'compile s':>10} {'full sync s':>12} {'bare restore s':>15} "
          f"{'ratio':>6} {'partial ms':>11}")
    for size in (int(s) for s in args.sizes.split(",")):
        r = await measure(size)
        print(f"{size:8d} {r['bytes'] / 1e6:9.1f} {r['compile']:10.3f} {r['full']:12.3f} {r['bare']:15.3f} "
              f"{r['full'] / r['bare']:6.2f} {r['partial'] * 1000:11.1f}", flush=True)
    print("goals: full sync <= 1.2 x bare restore; partial sync of one endpoint < 50 ms at 10,000 services")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
