"""Derive the Go-side facts the protobuf decoder needs from Kubernetes' types.go (dev-time only).

generated.proto says which field numbers exist, but not how the Go struct marshals to JSON. gogo-protobuf writes
every non-pointer field (so zero values arrive on the wire) and pointer fields only when set, while encoding/json
drops zero values of `omitempty` fields. Hence a decoded zero scalar belongs in the JSON only when the Go field is a
pointer or has no `omitempty`; and embedded structs (`json:""`/`json:",inline"`) merge into their parent.

Usage: `python -m tests.unit.api.derive_go_tags API_GIT_DIR APIMACHINERY_GIT_DIR` with bare mirrors of
kubernetes/api and kubernetes/apimachinery; it prints the `_KEEP_ZERO` and `_INLINE` literals used in
svcnet/api/protobuf.py (field numbers per message; only scalar, non-repeated fields for `_KEEP_ZERO`).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

API_DIRS = {"core/v1": "k8s.io.api.core.v1", "apps/v1": "k8s.io.api.apps.v1",
            "discovery/v1": "k8s.io.api.discovery.v1", "networking/v1": "k8s.io.api.networking.v1",
            "coordination/v1": "k8s.io.api.coordination.v1", "autoscaling/v1": "k8s.io.api.autoscaling.v1"}
MACHINERY_DIRS = {"pkg/apis/meta/v1": "k8s.io.apimachinery.pkg.apis.meta.v1",
                  "pkg/runtime": "k8s.io.apimachinery.pkg.runtime"}
SCHEMA = Path(__file__).resolve().parents[3] / "svcnet" / "api" / "protobuf_schema.json"
_STRUCT = re.compile(r"^type (\w+) struct \{\n(.*?)^\}", re.M | re.S)
_NAMED = re.compile(r"^\t(\w+)\s+(\S+)\s+`([^`]*)`", re.M)
_EMBEDDED = re.compile(r"^\t([\w.*]+)\s+`([^`]*)`", re.M)
_TAG = re.compile(r'(\w+):"([^"]*)"')


def _git(git_dir: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", git_dir, *args], check=True, capture_output=True, text=True).stdout


def _go_files(git_dir: str, directory: str) -> list[str]:
    names = _git(git_dir, "ls-tree", "--name-only", "HEAD", f"{directory}/").split()
    return [_git(git_dir, "show", f"HEAD:{n}") for n in names
            if n.endswith(".go") and not n.endswith("_test.go") and "generated" not in n]


def _fields(body: str) -> list[tuple[str, bool, bool, bool]]:
    """(proto field number, pointer?, omitempty?, inline?) for every field with a protobuf tag."""
    out = []
    for match in _NAMED.finditer(body):
        _, go_type, tag = match.groups()
        out.extend(_field(go_type, tag, inline=False))
    for match in _EMBEDDED.finditer(body):
        go_type, tag = match.groups()
        out.extend(_field(go_type, tag, inline=True))
    return out


def _field(go_type: str, tag: str, inline: bool) -> list[tuple[str, bool, bool, bool]]:
    tags = dict(_TAG.findall(tag))
    parts = tags.get("protobuf", "").split(",")
    if len(parts) < 2:
        return []
    number = parts[1]
    json_tag = tags.get("json", "").split(",")
    return [(number, go_type.startswith("*"), "omitempty" in json_tag[1:], inline and json_tag[0] == "")]


def derive(api_dir: str, machinery_dir: str) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    schema = json.loads(SCHEMA.read_text())
    keep: dict[str, list[int]] = {}
    inline: dict[str, list[int]] = {}
    sources = [(api_dir, d, p) for d, p in API_DIRS.items()] + [(machinery_dir, d, p) for d, p in MACHINERY_DIRS.items()]
    for git_dir, directory, package in sources:
        for text in _go_files(git_dir, directory):
            for struct in _STRUCT.finditer(text):
                message = f"{package}.{struct.group(1)}"
                table = schema.get(message)
                if table is None:
                    continue
                for number, pointer, omitempty, embedded in _fields(struct.group(2)):
                    spec = table.get(number)
                    if spec is None:
                        continue
                    if embedded and spec[1] in schema:
                        inline.setdefault(message, []).append(int(number))
                    elif spec[2] == "optional" and spec[1] not in schema and (pointer or not omitempty):
                        keep.setdefault(message, []).append(int(number))
    return keep, inline


def _literal(name: str, table: dict[str, list[int]]) -> str:
    entries = [f'"{m.removeprefix("k8s.io.")}": {tuple(sorted(table[m]))}' for m in sorted(table)]
    lines, line = [], "   "
    for entry in entries:
        if len(line) + len(entry) + 2 > 110:
            lines.append(line.rstrip())
            line = "   "
        line += f" {entry},"
    lines.append(line.rstrip())
    return f"{name}: dict[str, tuple[int, ...]] = {{\n" + "\n".join(lines) + "\n}"


def main() -> None:
    keep, inline = derive(sys.argv[1], sys.argv[2])
    print(_literal("_KEEP_ZERO", keep))
    print(_literal("_INLINE", inline))

if __name__ == "__main__":
    main()
