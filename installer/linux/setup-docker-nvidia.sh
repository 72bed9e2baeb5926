#!/usr/bin/env bash
# Install what SpareCycles runs jobs with on Debian or Ubuntu: the Docker engine and the NVIDIA
# Container Toolkit. Every command is printed before it runs, and each step asks first (y/N).
#
#   setup-docker-nvidia.sh [--yes] [--dry-run] [--docker-source distro|docker] [--add-user NAME]
#
#   --yes            answer yes to every step (unattended use; the commands are still printed)
#   --dry-run        print the plan, run nothing, change nothing (no root needed)
#   --docker-source  distro: the distribution's docker.io package (default);
#                    docker: Docker's own repository (docker-ce, newer)
#   --add-user NAME  also offer to add NAME to the docker group (read the warning below first)
set -euo pipefail

ARGUMENTS="$*"
ASSUME_YES=0
DRY_RUN=0
DOCKER_SOURCE=distro
ADD_USER=""
NVIDIA_REPO=https://nvidia.github.io/libnvidia-container
NVIDIA_KEYRING=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg
DOCKER_KEYRING=/etc/apt/keyrings/docker.asc

usage() {
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
}

while (($#)); do
  case "$1" in
    --yes | -y) ASSUME_YES=1 ;;
    --dry-run | -n) DRY_RUN=1 ;;
    --docker-source)
      DOCKER_SOURCE=${2:-}
      shift
      ;;
    --docker-source=*) DOCKER_SOURCE=${1#*=} ;;
    --add-user)
      ADD_USER=${2:-}
      shift
      ;;
    --add-user=*) ADD_USER=${1#*=} ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      echo "unknown option: $1" >&2
      usage >&2
      exit 2
      ;;
  esac
  shift
done
case "$DOCKER_SOURCE" in
  distro | docker) ;;
  *)
    echo "--docker-source must be 'distro' or 'docker', not '$DOCKER_SOURCE'" >&2
    exit 2
    ;;
esac

if ((DRY_RUN)); then
  echo "DRY RUN: the plan is printed; nothing is run or changed."
elif ((EUID != 0)); then
  echo "Run this as root (sudo $0 $ARGUMENTS), or with --dry-run to see the plan." >&2
  exit 1
fi

# The distribution, for Docker's repository: ID (debian|ubuntu) and VERSION_CODENAME.
OS_ID=unknown
OS_CODENAME=unknown
if [[ -r /etc/os-release ]]; then
  # shellcheck disable=SC1091  # the file is the system's own
  . /etc/os-release
  OS_ID=${ID:-unknown}
  OS_CODENAME=${VERSION_CODENAME:-unknown}
fi
if [[ $OS_ID != debian && $OS_ID != ubuntu && ${ID_LIKE:-} != *debian* ]]; then
  echo "This script is for Debian and Ubuntu (found '$OS_ID'); follow your distribution's documentation." >&2
  ((DRY_RUN)) || exit 1
fi
if [[ $DOCKER_SOURCE == docker && $OS_ID != debian && $OS_ID != ubuntu ]]; then
  echo "Docker's repository has packages for debian and ubuntu by name; use --docker-source distro here." >&2
  ((DRY_RUN)) || exit 1
fi

# ask QUESTION: yes with --yes, else the answer typed (default no). Never asks in a dry run.
ask() {
  if ((ASSUME_YES || DRY_RUN)); then
    return 0
  fi
  local answer
  read -r -p "$1 [y/N] " answer || answer=""
  [[ $answer == [yY] || $answer == [yY][eE][sS] ]]
}

# run CMD...: print it, then run it (not in a dry run).
run() {
  printf '  $ %s\n' "$*"
  if ((DRY_RUN)); then
    return 0
  fi
  "$@"
}

# run_shell TEXT: a pipeline, printed as written, run by bash (not in a dry run).
run_shell() {
  printf '  $ %s\n' "$1"
  if ((DRY_RUN)); then
    return 0
  fi
  bash -c "$1"
}

# step TITLE EXPLANATION FUNCTION: show the step and its commands, ask, then run them.
step() {
  local title=$1 explanation=$2 body=$3
  echo
  echo "== $title"
  echo "$explanation" | fold -s -w 100
  echo "Commands:"
  DRY_RUN=1 "$body" # print them first, whatever the mode
  if ((DRY_RUN)); then
    return 0
  fi
  if ask "Run this step?"; then
    "$body"
  else
    echo "Skipped."
  fi
}

docker_from_distro() {
  run apt-get update
  run apt-get install -y docker.io
  run systemctl enable --now docker
}

docker_from_docker() {
  run apt-get update
  run apt-get install -y ca-certificates curl
  run install -m 0755 -d /etc/apt/keyrings
  run curl -fsSL "https://download.docker.com/linux/$OS_ID/gpg" -o "$DOCKER_KEYRING"
  run chmod a+r "$DOCKER_KEYRING"
  run_shell "echo \"deb [arch=\$(dpkg --print-architecture) signed-by=$DOCKER_KEYRING] https://download.docker.com/linux/$OS_ID $OS_CODENAME stable\" > /etc/apt/sources.list.d/docker.list"
  run apt-get update
  run apt-get install -y docker-ce docker-ce-cli containerd.io
  run systemctl enable --now docker
}

nvidia_toolkit() {
  run apt-get update
  run apt-get install -y ca-certificates curl gnupg
  run_shell "curl -fsSL $NVIDIA_REPO/gpgkey | gpg --dearmor --yes -o $NVIDIA_KEYRING"
  run_shell "curl -fsSL $NVIDIA_REPO/stable/deb/nvidia-container-toolkit.list | sed 's#deb https://#deb [signed-by=$NVIDIA_KEYRING] https://#g' > /etc/apt/sources.list.d/nvidia-container-toolkit.list"
  run apt-get update
  run apt-get install -y nvidia-container-toolkit
  run nvidia-ctk runtime configure --runtime=docker
  run systemctl restart docker
}

docker_group_user() {
  run usermod -aG docker "$ADD_USER"
}

check() {
  run docker run --rm --gpus all ubuntu nvidia-smi
}

cat <<'EOF'
SpareCycles runs jobs in Docker containers with the GPU passed in by the NVIDIA Container Toolkit.
This script installs both. It needs the NVIDIA driver already (`nvidia-smi` must work):
  Debian: sudo apt install nvidia-driver   (non-free)   Ubuntu: sudo ubuntu-drivers install

About the docker group: whoever can use the Docker socket can start a container that mounts the
host's / and so act as root on this machine. Adding a user to the `docker` group is equivalent
to giving that user root. The alternatives:
  - run the agent as a dedicated system user through the system unit
    (`sudo sparecycles service install --system`): only that account is in the docker group, and
    your own login is not;
  - rootless Docker (`dockerd-rootless-setuptool.sh install`, package docker-ce-rootless-extras
    or rootlesskit): the engine runs as your user; GPU support then needs the toolkit's
    no-cgroups setting, see NVIDIA's install guide.
EOF

case "$DOCKER_SOURCE" in
  distro)
    step "1. Docker engine (the distribution's docker.io)" \
      "Installs Docker from the distribution's own packages and starts it at boot." docker_from_distro
    ;;
  docker)
    step "1. Docker engine (Docker's repository)" \
      "Adds Docker's apt repository and signing key, installs docker-ce and starts it at boot." docker_from_docker
    ;;
esac
step "2. NVIDIA Container Toolkit (NVIDIA's repository)" \
  "Adds NVIDIA's apt repository and signing key, installs nvidia-container-toolkit, registers the nvidia runtime with Docker and restarts Docker (running containers stop)." \
  nvidia_toolkit
if [[ -n $ADD_USER ]]; then
  step "3. Add $ADD_USER to the docker group" \
    "WARNING: this gives $ADD_USER the equivalent of root on this machine (see above). The change applies at $ADD_USER's next login." \
    docker_group_user
fi
step "Check: a container sees the GPU" \
  "Runs nvidia-smi in a throwaway container (downloads the ubuntu image)." check

echo
if ((DRY_RUN)); then
  echo "DRY RUN finished: nothing was changed."
else
  echo "Done. \`sparecycles doctor\` checks everything SpareCycles needs."
fi
