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

variable "control_plane_token_file" {
  type        = string
  default     = ""
  description = "A file holding the control plane's token for this build's bake step; empty: the bake reports nothing (--no-report). Never baked into the image."
}

variable "bake_box_id" {
  type        = string
  default     = "packer-bake"
  description = "The boxId the bake step reports under (the image itself carries none)."
}

source "null" "box" {
  communicator = "none"
}

build {
  sources = ["source.null.box"]

  provisioner "shell-local" {
    environment_vars = concat(var.environment, ["SLOTHBOX_BAKE_TOKEN_FILE=${var.control_plane_token_file}", "SLOTHBOX_BAKE_BOX_ID=${var.bake_box_id}"])
    inline = [
      "sh ${path.root}/../scripts/install.sh ${var.agent_package} --root ${var.install_root} --config ${var.agent_config}",
      "sh ${path.root}/../scripts/bake-step.sh ${var.install_root}/opt/slothbox-agent/bin/slothbox-agent ${var.bake_spec} ${var.install_root}/etc/slothbox/agent.json",
    ]
  }
}
