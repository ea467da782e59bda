"""Generates the Python protobuf/gRPC stubs of Keyplan's API from proto/ at run time.

Nothing generated is committed: `load()` runs grpcio-tools' protoc over every file of
proto/keyplan/v1 into a temporary directory (removed at exit), puts it on sys.path and
returns the generated modules. Shared by the gRPC client (client.py) and the NATS
consumer (../nats/consumer.py).
"""

import atexit
import glob
import importlib
import os
import shutil
import sys
import tempfile
import types

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PROTO_ROOT = os.path.join(REPO_ROOT, "proto")


def _generate(out_dir):
    from grpc_tools import protoc

    try:
        from importlib.resources import files

        well_known = str(files("grpc_tools") / "_proto")
    except Exception:  # pragma: no cover - older Pythons
        import pkg_resources

        well_known = pkg_resources.resource_filename("grpc_tools", "_proto")
    sources = sorted(glob.glob(os.path.join(PROTO_ROOT, "keyplan", "v1", "*.proto")))
    if not sources:
        raise RuntimeError(f"no .proto files under {PROTO_ROOT}/keyplan/v1")
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
    ] + [os.path.relpath(s, PROTO_ROOT) for s in sources]
    code = protoc.main(args)
    if code != 0:
        raise RuntimeError(f"protoc failed with status {code}")


def load():
    """Generates the stubs and returns a namespace with the keyplan.v1 modules."""
    out_dir = tempfile.mkdtemp(prefix="keyplan-pystubs-")
    atexit.register(shutil.rmtree, out_dir, ignore_errors=True)
    _generate(out_dir)
    sys.path.insert(0, out_dir)
    ns = types.SimpleNamespace()
    for name in (
        "types",
        "events",
        "commands",
        "event_store",
        "compliance",
        "accounts",
    ):
        setattr(ns, f"{name}_pb2", importlib.import_module(f"keyplan.v1.{name}_pb2"))
        grpc_module = f"keyplan.v1.{name}_pb2_grpc"
        setattr(ns, f"{name}_pb2_grpc", importlib.import_module(grpc_module))
    return ns
