"""Generate the Python code for every contract in protos/ (the one script that does it).

`python tools/gen_protos.py` writes into libs/llmops/api/ (the contract `llmops.registry.v1` is
the module `llmops.api.registry.v1`, beside the hand-written `llmops.client.registry` and the
service `services.registry`); `--check` regenerates into a temporary folder and exits non-zero
when the committed code differs (the staleness test calls the same function).
"""

from __future__ import annotations

import argparse
import filecmp
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT_ROOT = ROOT / "libs"
# google.api annotations (field behaviour, resources), the files of the pinned
# googleapis-common-protos, whose generated Python the contracts' code imports.
GOOGLEAPIS = ROOT / "third_party" / "googleapis"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
API = "api"  # generated code lives in llmops.api.<package>.v1
# protoc names modules after the proto path (llmops/registry/v1 -> llmops.registry.v1); these
# rewrite the imports between generated modules and the module names they register, and
# nothing else (the serialized descriptors keep the proto package names).
_MODULE = re.compile(r"^(from |import )llmops\.(\w+)\.v1\b", re.M)
_BUILDER = re.compile(r"'llmops\.(\w+)\.v1\.(\w+_pb2)'")


def proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.rglob("*.proto"))


def includes() -> list[str]:
    """protoc's include flags: the contracts, google.api, the well-known types."""
    import grpc_tools  # imported here: only generation needs grpcio-tools

    return [f"-I{PROTO_ROOT}", f"-I{GOOGLEAPIS}", f"-I{Path(grpc_tools.__file__).parent / '_proto'}"]


def generate(out_root: Path) -> None:
    from grpc_tools import protoc

    files = [str(p.relative_to(PROTO_ROOT)) for p in proto_files()]
    with tempfile.TemporaryDirectory() as tmp:
        args = ["protoc", *includes(), f"--python_out={tmp}", f"--pyi_out={tmp}", f"--grpc_python_out={tmp}", *files]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        for src in Path(tmp).rglob("*"):
            if src.is_file():
                dest = out_root / "llmops" / API / src.relative_to(Path(tmp) / "llmops")
                dest.parent.mkdir(parents=True, exist_ok=True)
                text = _MODULE.sub(rf"\1llmops.{API}.\2.v1", src.read_text())
                dest.write_text(_BUILDER.sub(rf"'llmops.{API}.\1.v1.\2'", text))


def generated_files(root: Path) -> dict[str, Path]:
    base = root / "llmops" / API
    return {
        str(p.relative_to(root)): p
        for p in base.rglob("*")
        if p.is_file() and p.name.endswith(GENERATED_SUFFIXES)
    } if base.exists() else {}


def stale_files() -> list[str]:
    """Paths whose committed generated code differs from what the protos produce now."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = generated_files(Path(tmp))
        current = generated_files(OUT_ROOT)
        names = sorted(set(fresh) | set(current))
        return [
            n
            for n in names
            if n not in fresh or n not in current or not filecmp.cmp(fresh[n], current[n], shallow=False)
        ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when generated code is stale")
    args = parser.parse_args()
    if args.check:
        stale = stale_files()
        if stale:
            print("generated code is stale; run `make protos`:\n  " + "\n  ".join(stale))
            return 1
        print("generated code is up to date")
        return 0
    for old in generated_files(OUT_ROOT).values():
        old.unlink()
    generate(OUT_ROOT)
    print(f"generated {len(generated_files(OUT_ROOT))} files from {len(proto_files())} protos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
