"""Generate svcnet/api/protobuf_schema.json from Kubernetes' generated.proto files (dev-time only).

Usage: `python scripts/gen_protobuf.py API_GIT_DIR APIMACHINERY_GIT_DIR` with git checkouts (or bare mirrors) of
kubernetes/api and kubernetes/apimachinery. Output: {fully.qualified.Message: {field number: [json name, type,
label]}} where label is "optional", "repeated" or "map", and type is a scalar name or a qualified message name
(for maps: "keytype,valuetype"). The runtime decoder (svcnet/api/protobuf.py) reads only this table.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

API_FILES = ["core/v1", "apps/v1", "discovery/v1", "networking/v1", "coordination/v1", "autoscaling/v1"]
MACHINERY_FILES = ["pkg/apis/meta/v1", "pkg/runtime", "pkg/util/intstr", "pkg/api/resource"]
SCALARS = {"string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "double", "float", "sint32", "sint64",
           "fixed32", "fixed64", "sfixed32", "sfixed64"}
_FIELD = re.compile(r"^\s*(optional|repeated)?\s*(map<\s*([\w.]+)\s*,\s*([\w.]+)\s*>|[\w.]+)\s+(\w+)\s*=\s*(\d+)")


def _show(git_dir: str, path: str) -> str:
    return subprocess.run(["git", "--git-dir", git_dir, "show", f"HEAD:{path}"], check=True, capture_output=True,
                          text=True).stdout


def _qualify(name: str, package: str) -> str:
    if name in SCALARS:
        return name
    return name[1:] if name.startswith(".") else f"{package}.{name}"


def parse(text: str, out: dict[str, dict[str, list[str]]]) -> None:
    package = re.search(r"^package ([\w.]+);", text, re.M).group(1)  # type: ignore[union-attr]
    for match in re.finditer(r"^message (\w+) \{(.*?)^\}", text, re.M | re.S):
        fields: dict[str, list[str]] = {}
        for line in match.group(2).splitlines():
            if line.strip().startswith("//"):
                continue
            field = _FIELD.match(line)
            if not field:
                continue
            label, kind, key, value, name, number = field.groups()
            if key:
                fields[number] = [name, f"{_qualify(key, package)},{_qualify(value, package)}", "map"]
            else:
                fields[number] = [name, _qualify(kind, package), label or "optional"]
        out[f"{package}.{match.group(1)}"] = fields


def main(api_dir: str, machinery_dir: str) -> None:
    table: dict[str, dict[str, list[str]]] = {}
    for path in API_FILES:
        parse(_show(api_dir, f"{path}/generated.proto"), table)
    for path in MACHINERY_FILES:
        parse(_show(machinery_dir, f"{path}/generated.proto"), table)
    out = Path(__file__).resolve().parents[1] / "svcnet" / "api" / "protobuf_schema.json"
    out.write_text(json.dumps(table, sort_keys=True, separators=(",", ":")))
    print(f"wrote {len(table)} messages to {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
