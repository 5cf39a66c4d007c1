#!/usr/bin/env python3
"""Checks the Kubernetes manifests without a cluster, for every CI run.

Each overlay is rendered with `kubectl kustomize`; every object is validated against the
Kubernetes schemas (the `kubernetes-validate` package, strict: an unknown field fails) at the
oldest and newest versions named below, and the Gateway API and Inference Extension kinds
against their published CRD schemas kept in schemas/ (unknown fields fail there too, as
`kubectl apply` rejects them). Then the pieces are checked to fit together: the pool selects
the model server pods and targets their port, the endpoint picker serves the pool and its
Service exposes the port the pool names, the route sends to the pool, the drain fits in
the grace period, and every selector matches something.

Usage: python3 docker/kubernetes/check.py   (needs kubectl, pyyaml, kubernetes-validate)
"""
import copy
import json
import pathlib
import subprocess
import sys

import jsonschema
import kubernetes_validate
import yaml

HERE = pathlib.Path(__file__).resolve().parent
# The oldest Kubernetes the manifests support (gRPC probes, autoscaling/v2, policy/v1) and
# the newest the validator knows.
VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
errors = []


def render(overlay):
    """The overlay's objects, as `kubectl kustomize` renders them."""
    out = subprocess.run(["kubectl", "kustomize", str(overlay)], capture_output=True, text=True)
    if out.returncode != 0:
        errors.append(f"{overlay.name}: kubectl kustomize failed: {out.stderr.strip()}")
        return []
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def closed(schema):
    """`schema` with unknown fields refused wherever it lists the fields an object may have."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    # apiVersion, kind and metadata are checked by the API server itself.
    schema.setdefault("properties", {}).setdefault("metadata", {"type": "object"})
    return schema


def crd_schemas():
    """(apiVersion, kind) → closed schema, from the fixtures in schemas/."""
    schemas = {}
    for path in sorted((HERE / "schemas").glob("*.json")):
        doc = json.loads(path.read_text())
        schemas[(f"{doc['group']}/{doc['version']}", doc["kind"])] = closed(doc["schema"])
    return schemas


def validate(overlay, doc, schemas):
    name = f"{overlay.name}: {doc.get('kind')} {doc.get('metadata', {}).get('name')}"
    schema = schemas.get((doc.get("apiVersion"), doc.get("kind")))
    if schema is not None:
        for error in jsonschema.Draft7Validator(schema).iter_errors(doc):
            errors.append(f"{name}: {'/'.join(map(str, error.absolute_path))}: {error.message}")
        return
    for version in VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{name} (Kubernetes {version}): {'/'.join(map(str, error.path))}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{name}: no schema for {doc.get('apiVersion')} {doc.get('kind')} in Kubernetes {version}")


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def one(objects, kind, name=None):
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    return found[0] if len(found) == 1 else None


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def check_wiring(overlay, objects):
    """The pieces fit together; each failure names what does not match."""
    say = lambda message: errors.append(f"{overlay.name}: {message}")  # noqa: E731
    pool = one(objects, "InferencePool")
    route = one(objects, "HTTPRoute")
    if pool is None or route is None:
        say("needs exactly one InferencePool and one HTTPRoute")
        return
    pool_name = pool["metadata"]["name"]
    servers = [
        d for d in objects
        if d["kind"] == "Deployment" and matches(pool["spec"]["selector"]["matchLabels"], d["spec"]["template"]["metadata"]["labels"])
    ]
    if len(servers) != 1:
        say(f"the pool's selector matches {len(servers)} Deployments' pods, not 1")
        return
    server = servers[0]
    pod = server["spec"]["template"]
    container = pod["spec"]["containers"][0]
    ports = {p["containerPort"] for p in container.get("ports", [])}
    if pool["spec"]["targetPorts"][0]["number"] not in ports:
        say(f"the pool targets port {pool['spec']['targetPorts'][0]['number']}, the server listens on {sorted(ports)}")
    if pod["metadata"]["labels"].get("llm-d.ai/engine-type") != "vllm":
        say("the model server pods need llm-d.ai/engine-type: vllm (Ponder publishes vLLM's metric names)")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if container.get(probe, {}).get("httpGet", {}).get("path") != "/health":
            say(f"the model server's {probe} must check /health")
    env = env_of(container)
    grace = int(env.get("PONDER_SHUTDOWN_GRACE") or 30)
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pre_stop_seconds = int(pre_stop[-1]) if pre_stop[:1] == ["sleep"] else 0
    if pod["spec"].get("terminationGracePeriodSeconds", 30) < grace + pre_stop_seconds:
        say("terminationGracePeriodSeconds leaves no time for the preStop pause and PONDER_SHUTDOWN_GRACE")
    if env.get("PONDER_MODEL") is None:
        say("the model server has no PONDER_MODEL")
    # The endpoint picker: its Service has the pool's port, its pods serve this pool.
    picker_ref = pool["spec"]["endpointPickerRef"]
    picker_service = one(objects, "Service", picker_ref["name"])
    if picker_service is None:
        say(f"the pool's endpoint picker Service {picker_ref['name']} is missing")
    else:
        if picker_ref["port"]["number"] not in {p["port"] for p in picker_service["spec"]["ports"]}:
            say(f"the endpoint picker Service does not expose port {picker_ref['port']['number']}")
        pickers = [
            d for d in objects
            if d["kind"] == "Deployment" and matches(picker_service["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])
        ]
        if len(pickers) != 1:
            say(f"the endpoint picker Service selects {len(pickers)} Deployments' pods, not 1")
        else:
            args = pickers[0]["spec"]["template"]["spec"]["containers"][0]["args"]
            if args[args.index("--pool-name") + 1] != pool_name:
                say("the endpoint picker serves another pool")
            account = pickers[0]["spec"]["template"]["spec"].get("serviceAccountName")
            if one(objects, "ServiceAccount", account) is None or one(objects, "RoleBinding") is None:
                say("the endpoint picker has no ServiceAccount and RoleBinding to watch pods and pools")
    backends = [b for rule in route["spec"]["rules"] for b in rule.get("backendRefs", [])]
    if not any(b.get("kind") == "InferencePool" and b["name"] == pool_name for b in backends):
        say("the HTTPRoute does not send to the InferencePool")
    # Every other selector matches the model server pods.
    for kind in ("Service", "PodDisruptionBudget"):
        for obj in objects:
            if obj["kind"] != kind or obj["metadata"]["name"] != server["metadata"]["name"]:
                continue
            selector = obj["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            if not matches(selector, pod["metadata"]["labels"]):
                say(f"{kind} {obj['metadata']['name']} selects no model server pod")
    for hpa in (o for o in objects if o["kind"] == "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        if one(objects, target["kind"], target["name"]) is None:
            say(f"the autoscaler scales {target['kind']} {target['name']}, which is not there")


def main():
    schemas = crd_schemas()
    overlays = sorted(p for p in (HERE / "overlays").iterdir() if p.is_dir())
    counts = []
    for overlay in overlays:
        objects = render(overlay)
        for doc in objects:
            validate(overlay, doc, schemas)
        if objects:
            check_wiring(overlay, objects)
        counts.append(f"{overlay.name} {len(objects)} objects")
    if errors:
        print("\n".join(errors))
        sys.exit(1)
    print(f"kubernetes manifests: ok ({', '.join(counts)}; Kubernetes {' and '.join(VERSIONS)})")


if __name__ == "__main__":
    main()
