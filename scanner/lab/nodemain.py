"""Entry point of one lab node process: ``python -m scanner.lab.nodemain SPEC.json``."""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys

from scanner.lab.profiles import PROFILE_BY_KEY
from scanner.lab.runtime.node import NodeSpec, RoleBuilder, run_node


def builder_for(spec: NodeSpec) -> RoleBuilder:
    if spec.role == "gateway":
        from scanner.lab.gateway import build_gateway

        return build_gateway
    if spec.role == "cloud":
        from scanner.lab.clouds import build_clouds

        return build_clouds
    assert spec.profile is not None
    module_name, func = PROFILE_BY_KEY[spec.profile].builder.split(":")
    build: RoleBuilder = getattr(importlib.import_module(module_name), func)
    return build


def main(argv: list[str]) -> None:
    spec = NodeSpec.load(argv[1])
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {spec.name} %(levelname)s %(name)s: %(message)s")
    asyncio.run(run_node(spec, builder_for(spec)))


if __name__ == "__main__":
    main(sys.argv)
