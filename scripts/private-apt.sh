# Sourced by the fetch scripts (bash): the machine's own Debian mirror, and apt-get
# run on a private configuration under $APT so that the machine's lists stay untouched.
# No archive's host name is written here: the mirror is whatever the machine uses.

# The first URIs (deb822) or deb line naming a .../debian archive; empty if none.
debian_mirror() {
  { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null || true; } |
    sed -n -e 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\/\{0,1\}\)[[:space:]]*$/\1/p' \
      -e 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\([^[:space:]]*\/debian\/\{0,1\}\)[[:space:]].*/\2/p' | head -n 1
}

apt_private() {
  apt-get -qq \
    -o Dir::Etc::sourcelist="$APT/sources.list" -o Dir::Etc::sourceparts=- \
    -o Dir::Etc::preferences=/dev/null -o Dir::Etc::preferencesparts=- \
    -o Dir::State::Lists="$APT/lists" -o Dir::Cache="$APT/cache" \
    -o Dir::State::status=/dev/null \
    -o APT::Architectures::=amd64 -o APT::Sandbox::User=root "$@"
}
