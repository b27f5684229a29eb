"""TunnelPath: the way in to a private instance, through an EC2 Instance Connect Endpoint.

The VPC the program makes has no route from the internet, by design. The
cheapest path AWS documents from a laptop into it is an EC2 Instance Connect
Endpoint (no charge) in front of a small tunnel host: the endpoint only carries
SSH (ports 22 and 3389; it refuses 5432, so it cannot reach RDS by itself),
and `aws ec2-instance-connect ssh --connection-type eice --local-forwarding
5432:<rds address>:5432` forwards PostgreSQL through SSH to the host and on to
the instance (`temporaldb tunnel --stack <stack>` runs that command). The
alternative, SSM port forwarding, needs interface endpoints for ssm and
ssmmessages in an isolated VPC: about $15 a month against about $4 here.

Every session is authorized by IAM (`ec2-instance-connect:OpenTunnel` and
`SendSSHPublicKey`, which pushes a one-minute key) and logged in CloudTrail;
the host has no key pair, no public address and no route out. Each hop may
only reach the next: endpoint -> host on 22, host -> database on 5432.

The host is stateless. It runs the newest Amazon Linux 2023 image the program
finds, so a `pulumi up` after AWS publishes a new image replaces it: that is
how it gets patched without a route to the internet.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.firewall import POSTGRES_PORT

SSH_PORT = 22
# The smallest Graviton size: forwarding one person's SQL session needs next to nothing.
HOST_INSTANCE_TYPE = "t4g.nano"
# The public SSM parameter naming the newest Amazon Linux 2023 image; it has the
# EC2 Instance Connect agent installed, which `SendSSHPublicKey` needs.
AMAZON_LINUX_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"


@dataclass(frozen=True)
class TunnelPathArgs:
    vpc_id: pulumi.Input[str]
    subnet_id: pulumi.Input[str]
    """A private subnet of the database's VPC, for the endpoint and the host."""
    database_security_group_id: pulumi.Input[str]
    image_id: pulumi.Input[str]
    """The tunnel host's AMI: an arm64 Amazon Linux 2023 image (looked up by the program)."""
    instance_type: str = HOST_INSTANCE_TYPE
    port: int = POSTGRES_PORT


class TunnelPath(pulumi.ComponentResource):
    endpoint_id: pulumi.Output[str]
    host_instance_id: pulumi.Output[str]

    def __init__(self, name: str, args: TunnelPathArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("temporaldb:access:TunnelPath", name, None, opts)
        self._name = name
        child = pulumi.ResourceOptions(parent=self)
        endpoint_group = self._group("endpoint", args.vpc_id, "EC2 Instance Connect Endpoint: SSH to the host only")
        host_group = self._group("host", args.vpc_id, f"tunnel host: SSH from the endpoint, {args.port} out only")
        # Separate rule resources: the groups refer to each other, which inline rules cannot express.
        self._rule("endpoint-to-host", aws.vpc.SecurityGroupEgressRule, endpoint_group.id, host_group.id, SSH_PORT)
        self._rule("host-from-endpoint", aws.vpc.SecurityGroupIngressRule, host_group.id, endpoint_group.id, SSH_PORT)
        self._rule(
            "host-to-database",
            aws.vpc.SecurityGroupEgressRule,
            host_group.id,
            args.database_security_group_id,
            args.port,
        )
        self._rule(
            "database-from-host",
            aws.vpc.SecurityGroupIngressRule,
            args.database_security_group_id,
            host_group.id,
            args.port,
        )
        endpoint = aws.ec2transitgateway.InstanceConnectEndpoint(
            f"{name}-endpoint",
            subnet_id=args.subnet_id,
            security_group_ids=[endpoint_group.id],
            # Off: connections then come from the endpoint's own address, which the group references match.
            preserve_client_ip=False,
            tags={"Name": f"{name}-endpoint"},
            opts=child,
        )
        host = aws.ec2.Instance(
            f"{name}-host",
            ami=args.image_id,
            instance_type=args.instance_type,
            subnet_id=args.subnet_id,
            vpc_security_group_ids=[host_group.id],
            associate_public_ip_address=False,
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                http_tokens="required", http_endpoint="enabled", http_put_response_hop_limit=1
            ),
            # No size: the image's own (8 GiB for AL2023); a fixed one would fail once an image outgrows it.
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                volume_type="gp3", encrypted=True, delete_on_termination=True
            ),
            monitoring=False,
            tags={"Name": f"{name}-host", "temporaldb:purpose": "tunnel"},
            # The endpoint must exist before anyone can reach the host; nothing else orders them.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[endpoint]),
        )
        self.endpoint_id = endpoint.id
        self.host_instance_id = host.id
        self.register_outputs({"endpoint_id": self.endpoint_id, "host_instance_id": self.host_instance_id})

    def _group(self, suffix: str, vpc_id: pulumi.Input[str], description: str) -> aws.ec2.SecurityGroup:
        # A group made by the provider has no rules (it removes AWS's default allow-all egress).
        return aws.ec2.SecurityGroup(
            f"{self._name}-{suffix}-sg",
            description=description,
            vpc_id=vpc_id,
            tags={"Name": f"{self._name}-{suffix}-sg"},
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _rule(
        self,
        suffix: str,
        kind: type[aws.vpc.SecurityGroupEgressRule] | type[aws.vpc.SecurityGroupIngressRule],
        group_id: pulumi.Input[str],
        other_group_id: pulumi.Input[str],
        port: int,
    ) -> None:
        kind(
            f"{self._name}-{suffix}",
            security_group_id=group_id,
            description=f"TCP {port}, {suffix.replace('-', ' ')}",
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            referenced_security_group_id=other_group_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
