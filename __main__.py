"""Pulumi entry point: read the stack's settings, build its resources, export."""

import pulumi

from infra.program import build_stack
from infra.settings import load_settings

for output_name, value in build_stack(load_settings()).items():
    pulumi.export(output_name, value)
