"""Kernel proxy rules benchmark: how long svcnet takes to compile and load its iptables and nftables rulesets, next
to `iptables-restore` / `nft -f` alone loading the identical text, in one run, inside throwaway network
namespaces.

Figures (goals from issue 7), per mode, for N services x 5 endpoints — svcnet's compile time, its full sync
(compile + load [+ iptables hooks]), and the bare load of the same text into a fresh namespace (the anchor; goal:
full sync <= 1.2 x bare load); then one-endpoint changes synced as partial syncs, end to end: a new snapshot
handed to the proxier -> the rules in the kernel (goal < 50 ms at 10,000 services); nftables mode repeats it
`--changes` times (an endpoint removed, then put back, on different services) and prints the median and the worst,
after checking that the kernel's chain really changed, then the median of as many changes that must delete (all of
a service's endpoints gone, then back: `nft` lists the table for those); the load average is printed at the start
and the end, as other work on the machine moves every figure; nftables full syncs and bare loads are repeated
(`--repeats`, default 3, alternately) and their medians compared. Sizes are per mode, because iptables-nft needs
~8 minutes for 10,000 services here: `--iptables-sizes` (default 1000,5000) and `--nftables-sizes` (default
1000,5000,10000); an empty list skips the mode. Root only; every namespace is deleted on exit, even on failure.
Usage: .venv/bin/python bench/proxy_rules.py [--iptables-sizes 1000,5000] [--nftables-sizes 1000,5000,10000]
       [--changes 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from svcnet.proxy import model
from svcnet.proxy.iptables.compile import NodeInfo, compile_rules
from svcnet.proxy.iptables.proxier import IptablesProxier
from svcnet.proxy.nftables import compile as nft
from svcnet.proxy.nftables.proxier import NftablesProxier

NODE = NodeInfo("n1", addresses=("172.18.0.11",), cluster_cidr="10.244.0.0/16")


def snapshot(services: int, endpoints: int = 5) -> model.Snapshot:
    infos, eps = {}, {}
    for i in range(services):
        name = model.ServicePortName(f"ns{i % 100}", f"svc-{i}", "http", "TCP")
        infos[name] = model.ServicePortInfo(name, (f"10.{96 + i // 65536}.{i // 256 % 256}.{i % 256}",), 80, "TCP")
        eps[name] = tuple(model.EndpointInfo(f"10.244.{(i * endpoints + j) // 256 % 256}.{(i * endpoints + j) % 256}",
                                             8080, f"n{j % 3}") for j in range(endpoints))
    return model.Snapshot(infos, eps)


@contextmanager
def netns() -> Iterator[str]:
    """A throwaway network namespace, deleted however the block ends."""
    name = f"svcnet-bench-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def load_into(ns: str, command: list[str], text: str) -> float:
    start = time.perf_counter()
    subprocess.run(["ip", "netns", "exec", ns, *command], input=text.encode(), check=True)
    return time.perf_counter() - start


def bare_load(command: list[str], text: str) -> float:
    with netns() as ns:
        return load_into(ns, command, text)


def one_endpoint_less(snap: model.Snapshot, index: int) -> model.Snapshot:
    """`snap` with the first endpoint of the index-th service port gone (everything else the same objects)."""
    name = list(snap.services)[index]
    return dataclasses.replace(snap, endpoints={**snap.endpoints, name: snap.endpoints[name][1:]})


async def measure_iptables(size: int) -> dict[str, float]:
    snap = snapshot(size)
    start = time.perf_counter()
    compiled = compile_rules(snap, NODE)
    compile_s = time.perf_counter() - start
    with netns() as ns:
        proxier = IptablesProxier(NODE.name, NODE.addresses, NODE.cluster_cidr, ns)
        start = time.perf_counter()
        await proxier.sync(snap, full=True)
        full_s = time.perf_counter() - start
        start = time.perf_counter()
        await proxier.sync(one_endpoint_less(snap, 0), full=False)
        partial_s = time.perf_counter() - start
        await proxier.close()
    bare = bare_load(["iptables-restore", "-w", "--noflush"], compiled.text)
    return {"compile": compile_s, "full": full_s, "bare": bare, "partial": partial_s, "worst": partial_s,
            "bytes": len(compiled.text)}


def service_chain(ns: str, snap: model.Snapshot, index: int) -> str:
    name = list(snap.services)[index]
    chain = nft.SERVICE + nft.service_name_base(name)
    return subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "chain", nft.FAMILY, nft.TABLE, chain],
                          capture_output=True, text=True, check=True).stdout


async def partial_syncs(proxier: NftablesProxier, ns: str, snap: model.Snapshot, changes: int) -> list[float]:
    """`changes` one-endpoint partial syncs (odd ones remove an endpoint, even ones put it back), each timed
    from handing the snapshot to the proxier until `nft` returned, then checked in the kernel."""
    times = []
    for i in range(changes):
        index = (i // 2 * 7919) % len(snap.services)
        target = one_endpoint_less(snap, index) if i % 2 == 0 else snap
        start = time.perf_counter()
        await proxier.sync(target, full=False)
        times.append(time.perf_counter() - start)
        want = len(target.endpoints[list(snap.services)[index]])
        if (got := service_chain(ns, snap, index).count(" dnat to ")) != want:
            raise RuntimeError(f"partial sync {i}: the kernel's chain DNATs to {got} endpoints, not {want}")
    return times


async def deleting_syncs(proxier: NftablesProxier, snap: model.Snapshot, changes: int) -> list[float]:
    """`changes` partial syncs that must delete map elements (so `nft` lists the table first): a service port's
    endpoints all gone (its ClusterIP now rejects), then back, on different services; each timed as above."""
    times = []
    for i in range(changes):
        name = list(snap.services)[(i // 2 * 4993 + 1) % len(snap.services)]
        target = dataclasses.replace(snap, endpoints={**snap.endpoints, name: ()}) if i % 2 == 0 else snap
        start = time.perf_counter()
        await proxier.sync(target, full=False)
        times.append(time.perf_counter() - start)
    return times


async def measure_nftables(size: int, changes: int, repeats: int) -> dict[str, float]:
    """Full sync and bare load `repeats` times each, alternately (medians: a load here varies by +-20 % from one
    run to the next), each into a fresh namespace, all deleted at the end (the kernel goes on freeing a deleted
    namespace's table for a while, on a core the next measurement wants); the partial syncs follow the first
    full sync."""
    snap = snapshot(size)
    start = time.perf_counter()
    text = nft.render(nft.build_table(snap, NODE))
    compile_s = time.perf_counter() - start
    fulls, bares, times, deleting = [], [], [], []
    with ExitStack() as kept:
        proxiers = []
        for attempt in range(repeats):
            ns = kept.enter_context(netns())
            proxiers.append(proxier := NftablesProxier(NODE.name, NODE.addresses, NODE.cluster_cidr, ns))
            start = time.perf_counter()
            await proxier.sync(snap, full=True)
            fulls.append(time.perf_counter() - start)
            if attempt == 0:
                times = await partial_syncs(proxier, ns, snap, changes)
                deleting = await deleting_syncs(proxier, snap, changes)
            bares.append(load_into(kept.enter_context(netns()), ["nft", "-f", "-"], text))
        for proxier in proxiers:
            await proxier.close()
    return {"compile": compile_s, "full": statistics.median(fulls), "bare": statistics.median(bares),
            "partial": statistics.median(times), "worst": max(times), "bytes": len(text),
            "deleting": statistics.median(deleting)}


def sizes(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise SystemExit(f"bench/proxy_rules.py: sizes are comma-separated numbers, not {text!r}") from None


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iptables-sizes", default="1000,5000",
                        help="10000 works but iptables-nft takes ~8 min to load it; '' skips the mode")
    parser.add_argument("--nftables-sizes", default="1000,5000,10000", help="'' skips the mode")
    parser.add_argument("--sizes", default=None, help="both modes' sizes at once (overrides the two above)")
    parser.add_argument("--changes", type=int, default=20, help="nftables: one-endpoint partial syncs timed")
    parser.add_argument("--repeats", type=int, default=3, help="nftables: full syncs and bare loads (medians)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/proxy_rules.py needs root (it loads rules inside network namespaces)", file=sys.stderr)
        return 2
    runs = [("iptables", sizes(args.sizes or args.iptables_sizes)),
            ("nftables", sizes(args.sizes or args.nftables_sizes))]
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"{'mode':>8} {'services':>8} {'rules MB':>9} {'compile s':>10} {'full sync s':>12} {'bare load s':>12} "
          f"{'ratio':>6} {'partial ms':>11} {'worst ms':>9} {'deleting ms':>12}")
    for mode, counts in runs:
        for size in counts:
            r = await (measure_iptables(size) if mode == "iptables"
                       else measure_nftables(size, args.changes, args.repeats))
            print(f"{mode:>8} {size:8d} {r['bytes'] / 1e6:9.1f} {r['compile']:10.3f} {r['full']:12.3f} "
                  f"{r['bare']:12.3f} {r['full'] / r['bare']:6.2f} {r['partial'] * 1000:11.1f} "
                  f"{r['worst'] * 1000:9.1f} {r.get('deleting', float('nan')) * 1000:12.1f}", flush=True)
    print("bare load: iptables-restore --noflush / nft -f of the identical text into a fresh namespace (nftables: "
          "full sync and bare load the medians of --repeats); partial: iptables one change, nftables the median "
          "of --changes; deleting (nftables): the median of --changes syncs of a service's endpoints all going / "
          "coming back")
    print("goals: full sync <= 1.2 x bare load; partial sync of one endpoint < 50 ms at 10,000 services")
    print("load average at end: {:.2f} {:.2f} {:.2f} (2 cores are shared with other work)".format(*os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
