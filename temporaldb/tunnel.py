"""`temporaldb tunnel --stack NAME`: forward a local port to the stack's private instance.

The stack's tunnel path (components/tunnel.py) is an EC2 Instance Connect
Endpoint in front of a small tunnel host. The endpoint carries SSH only, so the
forward is SSH's: `aws ec2-instance-connect ssh --connection-type eice` pushes
a one-minute key to the host, opens the session through the endpoint and
forwards `localhost:<local port>` to the instance's address and port (on an
Aurora stack, the cluster's writer endpoint, or with `--reader` its reader
endpoint). Leave it open while `pulumi up` or the CLI (`--stack NAME --host
localhost`) work; AWS ends a session after an hour at most.

This finds the host (by the stack's tags) and the instance (deployed.py), then
runs that command, or prints it with `--print`. It needs the AWS CLI v2
(2.12 or later) and an OpenSSH client.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from temporaldb import deployed

PURPOSE_TAG: Final = "temporaldb:purpose"
TUNNEL_PURPOSE: Final = "tunnel"
OS_USER: Final = "ec2-user"  # Amazon Linux's
DEFAULT_LOCAL_PORT: Final = 5432  # where the stack files' dbHost/dbPort send `pulumi up`
LIVE_STATES: Final = ("pending", "running")
EXIT_NO_AWS_CLI: Final = 8


@dataclass(frozen=True)
class Tunnel:
    host_instance_id: str
    instance: deployed.Instance
    region: str
    profile: str | None
    local_port: int
    address: str | None = None
    """Forward to this address instead of the instance's (e.g. a drill's copy in the same subnets)."""

    @property
    def target(self) -> str:
        return f"{self.address or self.instance.address}:{self.instance.port}"

    def command(self) -> list[str]:
        """The AWS CLI command that opens the forward."""
        forward = f"{self.local_port}:{self.target}"
        command = [
            "aws", "ec2-instance-connect", "ssh",
            "--instance-id", self.host_instance_id,
            "--os-user", OS_USER,
            "--connection-type", "eice",
            "--local-forwarding", forward,
            "--region", self.region,
        ]  # fmt: skip
        return [*command, "--profile", self.profile] if self.profile else command


def find_tunnel_host(aws: deployed.AwsClients, qualified_stack: str) -> str:
    """The id of the stack's tunnel host; the newest while `pulumi up` replaces it with a newer image."""
    filters = [
        {"Name": f"tag:{PURPOSE_TAG}", "Values": [TUNNEL_PURPOSE]},
        {"Name": "tag:stack", "Values": [qualified_stack]},
        {"Name": "instance-state-name", "Values": list(LIVE_STATES)},
    ]
    with deployed.aws_errors("list the tunnel hosts", aws):
        pages = aws.ec2.get_paginator("describe_instances").paginate(Filters=filters)
        hosts: list[dict[str, Any]] = [i for page in pages for r in page["Reservations"] for i in r["Instances"]]
    if not hosts:
        raise deployed.NotDeployedError(
            f"no running tunnel host tagged stack={qualified_stack}, {PURPOSE_TAG}={TUNNEL_PURPOSE} in {aws.region}: "
            "has `pulumi up` run with tunnel: true?"
        )
    newest = max(hosts, key=lambda host: str(host.get("LaunchTime", "")))
    return str(newest["InstanceId"])


def locate(
    request: deployed.StackRequest, local_port: int, address: str | None = None, *, reader: bool = False
) -> Tunnel:
    """The host and the target: the instance, or an Aurora cluster's writer endpoint (its reader endpoint with
    `reader`)."""
    stack_file = deployed.read_stack_file(request.project_root, request.stack)
    aws = deployed.clients(stack_file, request)
    instance = deployed.find_instance(aws, stack_file, read_only=reader)
    if reader and instance.endpoint != "reader endpoint":
        raise deployed.UsageError(
            f"--reader: {instance.name} has no reader endpoint to forward to (an RDS instance, or a cluster "
            "without readers); leave --reader out"
        )
    return Tunnel(
        host_instance_id=find_tunnel_host(aws, stack_file.qualified),
        instance=instance,
        region=aws.region,
        profile=stack_file.profile,
        local_port=local_port,
        address=address,
    )


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "tunnel",
        help="forward localhost:5432 to a deployed stack's private instance (for pulumi up and --stack)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        epilog=f"Exit codes: 0 the session ended (or --print), 2 usage, 5 no instance or tunnel host for the stack, "
        f"7 AWS unreachable or refused, {EXIT_NO_AWS_CLI} the AWS CLI is not installed.",
    )
    parser.add_argument("--stack", metavar="NAME", required=True, help="the deployed stack (Pulumi.NAME.yaml)")
    parser.add_argument(
        "--local-port", type=int, default=DEFAULT_LOCAL_PORT, help=f"local port (default {DEFAULT_LOCAL_PORT})"
    )
    parser.add_argument(
        "--address",
        help="forward to this address in the stack's VPC instead of the instance's, e.g. a restore drill's copy "
        "(it shares the instance's security group, so the tunnel host may reach it)",
    )
    parser.add_argument(
        "--reader",
        action="store_true",
        help="on an Aurora stack with readers, forward to the cluster's reader endpoint instead of the writer "
        "(for the read-only commands through --host/--port; use another --local-port)",
    )
    parser.add_argument("--print", action="store_true", help="print the command instead of running it")
    parser.add_argument("--region", help="AWS region (default: aws:region of the stack file)")
    parser.add_argument("--endpoint-url", metavar="URL", help="AWS endpoint, e.g. an emulator")
    parser.add_argument("--project-dir", type=Path, metavar="DIR", help="folder holding Pulumi.yaml")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from temporaldb.stackconfig import StackConfigError, find_project_root  # noqa: PLC0415

    try:
        root = args.project_dir.resolve() if args.project_dir else find_project_root(Path.cwd())
        request = deployed.StackRequest(
            stack=args.stack, role="analyst", project_root=root, region=args.region, endpoint_url=args.endpoint_url
        )
        tunnel = locate(request, args.local_port, args.address, reader=args.reader)
    except StackConfigError as error:
        print(f"temporaldb tunnel: {error}", file=sys.stderr)
        return deployed.EXIT_USAGE
    except deployed.DeployedStackError as error:
        print(f"temporaldb tunnel: {error}", file=sys.stderr)
        return error.exit_code
    command = tunnel.command()
    shown = shlex.join(command)
    if args.print:
        print(shown)
        return 0
    if shutil.which("aws") is None:
        print(
            "temporaldb tunnel: the AWS CLI v2 (2.12 or later, with an OpenSSH client) is not on PATH; install it, "
            f"or run this where it is: {shown}",
            file=sys.stderr,
        )
        return EXIT_NO_AWS_CLI
    print(
        f"temporaldb tunnel: localhost:{tunnel.local_port} -> {tunnel.target} "
        f"through {tunnel.host_instance_id}; leave this open (Ctrl-D or exit ends it)",
        file=sys.stderr,
        flush=True,
    )
    # Replaces this process: the session's exit status is the command's.
    os.execvp(command[0], command)
    return 0  # not reached
