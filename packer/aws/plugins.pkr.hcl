# Modern Packer (>= 1.7) installs the Amazon plugin from this block (`packer init packer/aws`).
# It lives in its own file so that Debian's Packer 1.6.6, which has the builder
# built in and does not know `required_plugins`, can validate box.pkr.hcl alone.
packer {
  required_version = ">= 1.7.0"
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.2.0"
    }
  }
}
