"""The Pulumi program: load the spec for this stack, build the platform."""

from pathlib import Path

import pulumi

from infra.platform import build_platform
from infra.pulumi_config import stack_config_from_pulumi
from infra.spec import load_spec

spec = load_spec(pulumi.get_stack(), root=Path(__file__).resolve().parent, config=stack_config_from_pulumi())
build_platform(spec)
