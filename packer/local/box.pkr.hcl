# The same install and bake steps as aws/box.pkr.hcl, run on this machine by a
# real Packer build (null builder, no communicator): what the tests and a
# developer use against the local stack. Installs under `install_root`.

variable "agent_package" {
  type = string
}

variable "install_root" {
  type = string
}

variable "agent_config" {
  type = string
}

variable "bake_spec" {
  type = string
}

variable "environment" {
  type        = list(string)
  default     = []
  description = "KEY=VALUE pairs for the bake step (AWS endpoints of the local stand-in); never secrets."
}

source "null" "box" {
  communicator = "none"
}

build {
  sources = ["source.null.box"]

  provisioner "shell-local" {
    environment_vars = var.environment
    inline = [
      "sh ${path.root}/../scripts/install.sh ${var.agent_package} --root ${var.install_root} --config ${var.agent_config}",
      "${var.install_root}/opt/slothbox-agent/bin/slothbox-agent bake --spec ${var.bake_spec} --config ${var.install_root}/etc/slothbox/agent.json",
    ]
  }
}
