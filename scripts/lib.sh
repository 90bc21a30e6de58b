# Shared install steps for scripts/test, scripts/demo and scripts/build-binary.

# Install Debian packages that are missing (one apt-get update, only if needed).
ensure_debs() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== apt-get install ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Create a virtualenv at $1 (once) and install this project with extras $2 into it.
ensure_venv() {
  local venv=$1 spec=$2
  local python=${PYTHON:-python3}
  if [ ! -x "$venv/bin/python" ]; then
    # Debian's python3 ships venv without ensurepip until python3-venv is installed.
    "$python" -c 'import ensurepip, venv' 2>/dev/null || ensure_debs python3-venv
    echo "== creating $venv with $($python --version)"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
  fi
  echo "== pip install -e $spec"
  "$venv/bin/pip" install -q -e "$spec"
}
