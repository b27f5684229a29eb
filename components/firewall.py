"""DatabaseFirewall: the security group in front of PostgreSQL.

Ingress is TCP 5432 only, from the named CIDR blocks and security groups; one
rule resource per source so adding or removing a source touches only its rule.
No egress rule: the instance never opens connections out.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

POSTGRES_PORT = 5432


@dataclass(frozen=True)
class DatabaseFirewallArgs:
    vpc_id: pulumi.Input[str]
    allowed_cidrs: Sequence[str] = field(default_factory=tuple)
    allowed_security_group_ids: Sequence[str] = field(default_factory=tuple)
    port: int = POSTGRES_PORT


class DatabaseFirewall(pulumi.ComponentResource):
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: DatabaseFirewallArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("temporaldb:access:DatabaseFirewall", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            description=f"PostgreSQL {args.port} for {name}",
            vpc_id=args.vpc_id,
            tags={"Name": f"{name}-sg"},
            opts=child,
        )
        for cidr in args.allowed_cidrs:
            network = ipaddress.ip_network(cidr)
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-from-{_slug(cidr)}",
                security_group_id=group.id,
                description=f"PostgreSQL from {cidr}",
                ip_protocol="tcp",
                from_port=args.port,
                to_port=args.port,
                cidr_ipv4=cidr if network.version == 4 else None,
                cidr_ipv6=cidr if network.version == 6 else None,
                opts=child,
            )
        for source_group in args.allowed_security_group_ids:
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-from-{source_group}",
                security_group_id=group.id,
                description=f"PostgreSQL from members of {source_group}",
                ip_protocol="tcp",
                from_port=args.port,
                to_port=args.port,
                referenced_security_group_id=source_group,
                opts=child,
            )
        self.security_group_id = group.id
        self.register_outputs({"security_group_id": self.security_group_id})


def _slug(cidr: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "-", cidr).strip("-")
