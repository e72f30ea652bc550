# Sourced by the scripts here: installs the Debian packages they need, once, in one apt run.
#
#   source "$(dirname "$0")/lib.sh"
#   need_packages libnghttp2-dev libjemalloc-dev     # packages dpkg does not list
#   need_command redis-server redis-server           # a command not on PATH, and its package
#   install_needed                                   # apt-get install what was named missing

missing_packages=()

need_packages() {
  local package
  for package in "$@"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing_packages+=("$package")
  done
}

need_command() {
  command -v "$1" >/dev/null || missing_packages+=("$2")
}

install_needed() {
  ((${#missing_packages[@]})) || return 0
  echo "== installing ${missing_packages[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_packages[@]}"
  missing_packages=()
}
