"""IsolatedNetwork: a VPC whose subnets have no route to the internet.

Used when a stack names no subnets of its own, so the database never lands in
a public subnet (FSBP RDS.46): no internet gateway, no NAT, a route table with
only the VPC's local route, and the VPC's default security group emptied.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class IsolatedNetworkArgs:
    availability_zones: pulumi.Input[Sequence[str]]
    """Zones to spread subnets over; the first `subnet_count` are used."""
    cidr_block: str = "10.42.0.0/16"
    subnet_count: int = 2
    """An RDS subnet group needs two zones; Multi-AZ places the standby in the second (an Aurora cluster
    takes three, one per zone its storage spans, for its readers)."""


class IsolatedNetwork(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    subnet_ids: pulumi.Output[list[str]]
    availability_zones: pulumi.Output[list[str]]
    """The subnets' zones, in the subnets' order."""

    def __init__(self, name: str, args: IsolatedNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("temporaldb:network:IsolatedNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr_block,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={"Name": f"{name}-vpc"},
            opts=child,
        )
        # A VPC's default group allows all traffic between its members; empty it (FSBP EC2.2).
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=vpc.id, opts=child)
        route_table = aws.ec2.RouteTable(
            f"{name}-isolated", vpc_id=vpc.id, tags={"Name": f"{name}-isolated"}, opts=child
        )
        subnets = []
        vpc_block = ipaddress.ip_network(args.cidr_block)
        # Sixteen equal blocks: room for more zones or tiers later without renumbering.
        blocks = vpc_block.subnets(new_prefix=min(vpc_block.prefixlen + 4, 28))
        zones = pulumi.Output.from_input(args.availability_zones)
        for index, block in zip(range(args.subnet_count), blocks, strict=False):
            subnet = aws.ec2.Subnet(
                f"{name}-subnet-{index + 1}",
                vpc_id=vpc.id,
                cidr_block=str(block),
                availability_zone=zones.apply(functools.partial(_zone, index=index)),
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-isolated-{index + 1}"},
                # The zone list is looked up on every run; if a zone becomes unavailable the
                # list shifts, and the subnets holding the database must not be replaced.
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["availabilityZone"]),
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-subnet-{index + 1}-routes", subnet_id=subnet.id, route_table_id=route_table.id, opts=child
            )
            subnets.append(subnet)
        self.vpc_id = vpc.id
        self.subnet_ids = pulumi.Output.all(*[subnet.id for subnet in subnets])
        self.availability_zones = pulumi.Output.all(*[subnet.availability_zone for subnet in subnets])
        self.register_outputs(
            {"vpc_id": self.vpc_id, "subnet_ids": self.subnet_ids, "availability_zones": self.availability_zones}
        )


def _zone(names: Sequence[str], index: int) -> str:
    if index >= len(names):
        raise ValueError(f"the region offers {len(names)} Availability Zones; subnet {index + 1} needs another")
    return names[index]
