#!/usr/bin/env bash
# Offline validation of everything Phoenix deploys to Kubernetes; no cluster needed.
#
#   1. deploy/crds/ holds the CRDs (that they are exactly what the Rust types generate is the
#      unit test `committed_crds_match_the_types` of phoenix-operator, run by `cargo test`).
#   2. `helm lint` and `helm template` of deploy/helm/phoenix-operator, with the default values
#      and with every optional value set.
#   3. kubernetes-validate --strict (schemas of the Kubernetes release the operator is built
#      against) on every manifest in deploy/ (the CRDs included), on the rendered chart, and
#      on the objects the operator's builders produce (`crdgen --objects DIR`, with the crdgen
#      binary `cargo test --workspace --all-features` already built: $CRDGEN, by default
#      $CARGO_TARGET_DIR/debug/crdgen). A kind it has
#      no schema for is a failure here, not the tool's warning.
#   4. Every file in deploy/samples/, and the Phoenix resources among the builders' objects,
#      against the openAPIV3Schema of its CRD in deploy/crds/, with unknown fields rejected as
#      `kubectl apply` (strict field validation) does; one sample of each kind at least. And the
#      chart grants exactly the rules of deploy/rbac.yaml: as a ClusterRole by default, as a
#      Role in the watched namespace (and no ClusterRole) with `watchNamespace` set.
#
# Tools, pinned, are cached outside the clone: kubernetes-validate, jsonschema and PyYAML in a
# Python venv; helm built from the Go module registry with `go install` (as
# tools/otelcol/build.sh builds the collector). Needs python3 (with venv), Go, and the crdgen
# binary (built by `cargo test --workspace --all-features`, or
# `cargo build -p phoenix-operator --bin crdgen`).
set -euo pipefail
# Failures inside $(...) stop the script too.
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

KUBERNETES_VALIDATE_VERSION=1.37.0
JSONSCHEMA_VERSION=4.26.0
PYYAML_VERSION=6.0.4
HELM_VERSION=v3.19.5
# The release k8s-openapi is built for (its `v1_37` feature in Cargo.toml).
KUBERNETES_VERSION=1.37.0

cache="${XDG_CACHE_HOME:-$HOME/.cache}/phoenix"
chart=deploy/helm/phoenix-operator

# The venv's directory; created and filled on first use.
python_tools() {
  local python_version key venv
  python_version=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  key="kv$KUBERNETES_VALIDATE_VERSION-js$JSONSCHEMA_VERSION-yaml$PYYAML_VERSION-py$python_version"
  venv="$cache/python/$key"
  # A venv cannot be moved (its scripts name its path), so it is built in place and marked
  # complete at the end; an incomplete one is rebuilt.
  if [ ! -e "$venv/.complete" ]; then
    printf 'installing kubernetes-validate %s, jsonschema %s and PyYAML %s into %s\n' \
      "$KUBERNETES_VALIDATE_VERSION" "$JSONSCHEMA_VERSION" "$PYYAML_VERSION" "$venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv" >&2 || {
      printf 'python3 cannot create a venv (on Debian: apt-get install python3-venv)\n' >&2
      return 1
    }
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
      "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" \
      "jsonschema==$JSONSCHEMA_VERSION" \
      "PyYAML==$PYYAML_VERSION" >&2 || {
      printf 'pip could not install the validation tools into %s\n' "$venv" >&2
      return 1
    }
    touch "$venv/.complete"
  fi
  printf '%s\n' "$venv"
}

# The helm binary; built on first use.
helm_binary() {
  local dir="$cache/helm/$HELM_VERSION" tmp
  if [ ! -x "$dir/helm" ]; then
    command -v go >/dev/null 2>&1 || {
      printf 'go is not installed: helm %s is built from the Go module registry\n' \
        "$HELM_VERSION" >&2
      return 1
    }
    printf 'building helm %s into %s (a few minutes the first time)\n' "$HELM_VERSION" "$dir" >&2
    mkdir -p "$dir"
    tmp=$(mktemp -d "$dir/build.XXXXXX")
    if ! GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-trimpath \
      go install -ldflags='-s -w' "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2; then
      rm -rf "$tmp"
      printf 'go install helm.sh/helm/v3/cmd/helm@%s failed\n' "$HELM_VERSION" >&2
      return 1
    fi
    mv "$tmp/helm" "$dir/helm"
    rm -rf "$tmp"
  fi
  printf '%s\n' "$dir/helm"
}

venv=$(python_tools)
helm=$(helm_binary)
work=$(mktemp -d "${TMPDIR:-/tmp}/phoenix-kubernetes.XXXXXX")
trap 'rm -rf "$work"' EXIT

crdgen="${CRDGEN:-${CARGO_TARGET_DIR:-target}/debug/crdgen}"
if [ ! -x "$crdgen" ]; then
  printf 'no crdgen binary at %s: build it first (cargo test --workspace --all-features, or\n' "$crdgen" >&2
  printf 'cargo build -p phoenix-operator --bin crdgen), or name it with CRDGEN=\n' >&2
  exit 1
fi
crds=(deploy/crds/*.yaml)
if [ ! -e "${crds[0]}" ]; then
  printf 'deploy/crds/ holds no CRDs (run: cargo run -p phoenix-operator --bin crdgen)\n' >&2
  exit 1
fi

printf 'crdgen --objects (the objects the builders produce)\n'
mkdir -p "$work/objects"
"$crdgen" --objects "$work/objects"
# Built-in kinds go to kubernetes-validate; Phoenix resources (the children of an experiment)
# to the CRD-schema check with the samples.
objects=()
custom_objects=()
while IFS= read -r -d '' file; do
  if grep -q '^apiVersion: phoenix\.io/' "$file"; then
    custom_objects+=("$file")
  else
    objects+=("$file")
  fi
done < <(find "$work/objects" -type f \( -name '*.yaml' -o -name '*.yml' \) -print0 | sort -z)
if [ "${#objects[@]}" = 0 ]; then
  printf 'crdgen --objects wrote no built-in objects into %s\n' "$work/objects" >&2
  exit 1
fi

printf 'helm lint and helm template (%s, helm %s)\n' "$chart" "$HELM_VERSION"
mkdir -p "$work/helm"
# Runs helm; its warning that crds/ is a symbolic link (to deploy/crds, on purpose) is dropped,
# anything else it says on stderr is shown.
helm_run() {
  local status=0
  "$helm" "$@" 2>"$work/helm.err" || status=$?
  grep -v 'found symbolic link in path' "$work/helm.err" >&2 || true
  return "$status"
}
helm_run lint --strict --kube-version "$KUBERNETES_VERSION" "$chart"
helm_run template phoenix "$chart" --namespace phoenix-system --include-crds \
  --kube-version "$KUBERNETES_VERSION" >"$work/helm/default.yaml"
cat >"$work/values.yaml" <<'EOF'
image: {repository: registry.example.com/phoenix-operator, tag: "1.2.3", pullPolicy: Always}
imagePullSecrets: [{name: registry}]
prometheus: {url: "http://prometheus.monitoring:9090/prom"}
serviceAccount: {create: false, name: existing-operator}
collectorServiceAccount: {create: false, name: existing-collector}
nodeSelector: {node-role.kubernetes.io/infra: ""}
tolerations: [{key: infra, operator: Exists, effect: NoSchedule}]
affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms: [{matchExpressions: [{key: kubernetes.io/arch, operator: In, values: [amd64, arm64]}]}]
priorityClassName: system-cluster-critical
podAnnotations: {example.com/team: platform}
podLabels: {team: platform}
extraEnv: [{name: RUST_BACKTRACE, value: "1"}]
watchNamespace: team-a
EOF
helm_run template phoenix "$chart" --namespace phoenix-system -f "$work/values.yaml" \
  --kube-version "$KUBERNETES_VERSION" >"$work/helm/custom.yaml"

manifests=()
while IFS= read -r -d '' file; do manifests+=("$file"); done \
  < <(find deploy -maxdepth 1 -type f \( -name '*.yaml' -o -name '*.yml' \) -print0 | sort -z)
manifests+=("${crds[@]}" "$work/helm/default.yaml" "$work/helm/custom.yaml" "${objects[@]}")
printf 'kubernetes-validate --strict (Kubernetes %s): %d files\n' "$KUBERNETES_VERSION" "${#manifests[@]}"
status=0
"$venv/bin/kubernetes-validate" --strict --quiet --kubernetes-version "$KUBERNETES_VERSION" \
  "${manifests[@]}" >"$work/validate.log" 2>&1 || status=$?
cat "$work/validate.log"
if grep -q "Couldn't find schema" "$work/validate.log"; then
  printf 'kubernetes-validate has no schema for some of these objects (see above)\n' >&2
  exit 1
fi
if [ "$status" != 0 ]; then exit "$status"; fi

printf 'samples and generated Phoenix resources against the CRD schemas; chart RBAC\n'
"$venv/bin/python" - "$work/helm/default.yaml" "$work/helm/custom.yaml" "${custom_objects[@]}" <<'EOF'
"""Samples against their CRD's openAPIV3Schema; the chart's ClusterRole rules."""
import copy
import glob
import sys

import jsonschema
import yaml


def documents(path):
    try:
        with open(path, encoding="utf-8") as f:
            return [d for d in yaml.safe_load_all(f) if d is not None]
    except (OSError, yaml.YAMLError) as e:
        sys.exit(f"{path}: {e}")


def strict(schema):
    """Rejects unknown fields, as the API server's strict field validation does, except where
    the schema preserves them."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if (
                node.get("type") == "object"
                and "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    # The API server handles these itself; CRD schemas need not list them.
    implicit = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}}
    for name, field in implicit.items():
        schema.setdefault("properties", {}).setdefault(name, field)
    walk(schema)
    return schema


schemas = {}
for path in sorted(glob.glob("deploy/crds/*.yaml")):
    for crd in documents(path):
        if crd.get("kind") != "CustomResourceDefinition":
            continue
        group = crd["spec"]["group"]
        kind = crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            api_version = f"{group}/{version['name']}"
            schema = version.get("schema", {}).get("openAPIV3Schema")
            if not version.get("served", False) or schema is None:
                continue
            schemas[(api_version, kind)] = strict(schema)

failures = []
seen = set()
samples = sorted(glob.glob("deploy/samples/*.yaml"))
for path in samples + sys.argv[3:]:
    for index, resource in enumerate(documents(path)):
        key = (resource.get("apiVersion"), resource.get("kind"))
        where = f"{path} (document {index + 1}, {key[1]} {resource.get('metadata', {}).get('name')})"
        schema = schemas.get(key)
        if schema is None:
            failures.append(f"{where}: no served CRD in deploy/crds/ for {key[0]} {key[1]}")
            continue
        if path in samples:
            seen.add(key)
        validator = jsonschema.Draft4Validator(schema)
        for error in sorted(validator.iter_errors(resource), key=lambda e: list(e.absolute_path)):
            field = ".".join(str(p) for p in error.absolute_path) or "(root)"
            failures.append(f"{where}: {field}: {error.message}")
for key in sorted(set(schemas) - seen):
    failures.append(f"deploy/samples/ has no {key[1]} ({key[0]})")


def role_rules(docs, kind, namespace=None):
    roles = [d for d in docs if d.get("kind") == kind]
    if len(roles) != 1:
        failures.append(f"expected one {kind}, found {len(roles)}")
        return []
    if namespace is not None and roles[0]["metadata"].get("namespace") != namespace:
        failures.append(f"the {kind} is not in namespace {namespace}")
    return roles[0]["rules"]


plain = role_rules(documents("deploy/rbac.yaml"), "ClusterRole")
chart = documents(sys.argv[1])
if role_rules(chart, "ClusterRole") != plain:
    failures.append("the chart's ClusterRole rules differ from deploy/rbac.yaml's")
# The custom values set watchNamespace: a Role there, bound there, and no ClusterRole.
watched = documents(sys.argv[2])
if role_rules(watched, "Role", "team-a") != plain:
    failures.append("with watchNamespace, the chart's Role rules differ from deploy/rbac.yaml's")
bindings = [d for d in watched if d.get("kind") == "RoleBinding"]
if len(bindings) != 1 or bindings[0]["metadata"].get("namespace") != "team-a":
    failures.append("with watchNamespace, expected one RoleBinding in team-a")
for kind in ("ClusterRole", "ClusterRoleBinding"):
    if any(d.get("kind") == kind for d in watched):
        failures.append(f"with watchNamespace, the chart still renders a {kind}")

for failure in failures:
    print(failure, file=sys.stderr)
if failures:
    sys.exit(1)
print(
    f"{len(samples)} samples ({len(seen)} kinds) and {len(sys.argv) - 3} generated resources "
    f"valid against {len(schemas)} CRD schemas; RBAC rules agree (ClusterRole, and Role with "
    f"watchNamespace)"
)
EOF
