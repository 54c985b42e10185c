# Bakes a Slothbox box AMI: installs Node 24 and the packaged agent (the
# tarball's SHA-256 checked against its .sha256), its unit and config, runs
# `slothbox-agent bake` so that a failed pull fails the build with Docker's
# error, and enables the daemon for boot.
# The bake instance reads registry secrets through `iam_instance_profile` only.

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "architecture" {
  type        = string
  default     = "x86_64"
  description = "The box's CPU: x86_64, or arm64 for Graviton (t4g, m7g, c7g, …). Picks Debian's AMI, the default instance type and the agent package built for it."
  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "The architecture must be x86_64 or arm64 (Graviton), as EC2 names them."
  }
}

variable "instance_type" {
  type        = string
  default     = ""
  description = "Empty: t3.medium on x86_64, t4g.medium on arm64."
}

variable "iam_instance_profile" {
  type        = string
  description = "Instance profile whose role may read the registry credentials (see docs/install.md: IAM policy)."
}

variable "agent_package_dir" {
  type        = string
  default     = "dist"
  description = "Where `npm run package` wrote slothbox-agent-<version>-linux-x64.tar.gz and -linux-arm64.tar.gz, each with its .sha256: the one built for `architecture` is installed (install.sh refuses a package for another CPU)."
}

variable "agent_config" {
  type        = string
  description = "agent.json for the box (docs/reference.md §4)."
}

variable "bake_spec" {
  type        = string
  description = "The bake spec (docs/reference.md §2) listing the services whose images the AMI must hold."
}

variable "control_plane_token_file" {
  type        = string
  default     = ""
  description = "A file (on the machine running Packer) holding the control plane's token for this build's bake step; empty: the bake reports nothing. Uploaded to /run (a tmpfs, never the root volume the image is made from) into a directory only root reads, and removed after the bake."
  sensitive   = true
}

variable "bake_environment" {
  type        = list(string)
  default     = []
  sensitive   = true
  description = "The agent's proxy settings for the bake step when the build's instance reaches AWS through a proxy, e.g. [\"HTTPS_PROXY=http://user:pass@proxy.internal:3128\", \"NO_PROXY=169.254.169.254,.internal\"], and NODE_EXTRA_CA_CERTS for a TLS-inspecting proxy: given to the bake step's environment only, never written into the image. Registry traffic is dockerd's: give dockerd its own proxy drop-in."
}

variable "bake_box_id" {
  type        = string
  default     = "packer-bake"
  description = "The boxId the bake step reports under. The image carries no boxId: each box gets its own at first boot."
}

variable "ami_name_prefix" {
  type    = string
  default = "slothbox-box"
}

locals {
  timestamp     = regex_replace(timestamp(), "[- TZ:]", "")
  arm64         = var.architecture == "arm64"
  debian_arch   = local.arm64 ? "arm64" : "amd64"
  instance_type = var.instance_type != "" ? var.instance_type : (local.arm64 ? "t4g.medium" : "t3.medium")
  # One package per architecture in the directory (npm run package writes one version).
  agent_package = "${var.agent_package_dir}/${sort(fileset(var.agent_package_dir, "slothbox-agent-*-linux-${local.arm64 ? "arm64" : "x64"}.tar.gz"))[0]}"
}

source "amazon-ebs" "box" {
  region               = var.region
  instance_type        = local.instance_type
  iam_instance_profile = var.iam_instance_profile
  ssh_username         = "admin"
  ami_name             = "${var.ami_name_prefix}-${local.timestamp}"

  source_ami_filter {
    filters = {
      name                = "debian-12-${local.debian_arch}-*"
      architecture        = var.architecture
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = ["136693071363"]
    most_recent = true
  }

  # IMDSv2 only, hop limit 1: the agent runs on the host, and a limit of 2 would
  # let any container on the box take the instance role, and with it every
  # registry secret under the SSM prefix.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  tags = {
    Name      = "${var.ami_name_prefix}-${local.timestamp}"
    BakedWith = "slothbox-agent"
  }
}

build {
  sources = ["source.amazon-ebs.box"]

  provisioner "file" {
    source      = local.agent_package
    destination = "/tmp/slothbox-agent.tar.gz"
  }

  provisioner "file" {
    source      = "${local.agent_package}.sha256"
    destination = "/tmp/slothbox-agent.tar.gz.sha256"
  }

  provisioner "file" {
    source      = "${path.root}/../scripts/install.sh"
    destination = "/tmp/slothbox-install.sh"
  }

  provisioner "file" {
    source      = var.agent_config
    destination = "/tmp/slothbox-agent.json"
  }

  provisioner "file" {
    source      = "${path.root}/../scripts/bake-step.sh"
    destination = "/tmp/slothbox-bake-step.sh"
  }

  # The build's control-plane token and the bake spec never touch the root
  # volume: a file removed there leaves its blocks in the AMI's snapshot. They are
  # uploaded into a directory on /run, a tmpfs that no snapshot holds, which only
  # the build's user may read and which is removed after the bake.
  provisioner "shell" {
    inline = [
      "set -e",
      "sudo install -d -m 0700 -o \"$(id -u)\" -g \"$(id -g)\" /run/slothbox-bake",
      "fs=$(stat -f -c %T /run/slothbox-bake); [ \"$fs\" = tmpfs ] || { echo \"/run/slothbox-bake is on $fs, not a tmpfs: refusing to upload the build's token and spec to a disk the image is made from\" >&2; sudo rm -rf /run/slothbox-bake; exit 1; }",
    ]
  }

  provisioner "file" {
    source      = var.bake_spec
    destination = "/run/slothbox-bake/bake-spec.json"
  }

  # An empty file when the build reports nothing (a file provisioner needs a source).
  provisioner "file" {
    source      = var.control_plane_token_file != "" ? var.control_plane_token_file : "/dev/null"
    destination = "/run/slothbox-bake/control-plane-token"
  }

  provisioner "shell" {
    environment_vars = var.bake_environment
    inline = [
      "set -e",
      # A core dump of anything in the bake would hold the registry secrets it read.
      "ulimit -c 0",
      "sudo chown -R root:root /run/slothbox-bake && sudo chmod 0600 /run/slothbox-bake/control-plane-token /run/slothbox-bake/bake-spec.json",
      "command -v dockerd >/dev/null || (sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io)",
      "sudo systemctl enable --now docker.service",
      "sudo sh /tmp/slothbox-install.sh /tmp/slothbox-agent.tar.gz --sha256 /tmp/slothbox-agent.tar.gz.sha256 --config /tmp/slothbox-agent.json",
      # sudo resets the environment: the proxy settings given in bake_environment are kept for the agent.
      "sudo --preserve-env=HTTPS_PROXY,HTTP_PROXY,NO_PROXY,https_proxy,http_proxy,no_proxy,NODE_EXTRA_CA_CERTS env SLOTHBOX_BAKE_TOKEN_FILE=/run/slothbox-bake/control-plane-token SLOTHBOX_BAKE_BOX_ID=${var.bake_box_id} AWS_REGION=${var.region} sh /tmp/slothbox-bake-step.sh /usr/local/bin/slothbox-agent /run/slothbox-bake/bake-spec.json /etc/slothbox/agent.json || { rc=$?; sudo rm -rf /run/slothbox-bake; exit $rc; }",
      "sudo rm -rf /run/slothbox-bake",
      "sudo systemctl enable slothbox-agent.service slothbox-agent.path",
      "sudo rm -f /tmp/slothbox-agent.tar.gz /tmp/slothbox-agent.tar.gz.sha256 /tmp/slothbox-install.sh /tmp/slothbox-agent.json /tmp/slothbox-bake-step.sh",
    ]
  }
}
