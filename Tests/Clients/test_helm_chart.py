"""The Helm chart in chart/, rendered and linted offline with helm-python-sdk (Helm's own Go code,
no cluster) and every rendered manifest validated with kubernetes-validate against a current
Kubernetes version. No Kubernetes cluster is available on our machines."""
import os

import kubernetes_validate
import pytest
import yaml
from helm_python import Chart, HelmValuesError, lint

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHART = os.path.join(ROOT, "chart")
KUBE_VERSION = "1.30.0"


def render(values=None):
    chart = Chart.load(CHART)
    try:
        rendered = chart.render(values or {}, name="baas", namespace="apps", is_install=True)
    finally:
        chart.close()
    documents = {}
    for path, text in rendered.items():
        if path.endswith("NOTES.txt"):
            assert "minibaas-secrets" in text, "the notes say where credentials come from"
            continue
        for document in yaml.safe_load_all(text):
            if document:
                documents[(document["kind"], path)] = document
    return documents


def test_the_chart_lints_clean():
    report = lint(CHART, strict=True, kube_version="v" + KUBE_VERSION)
    assert report["errors"] == [], report
    assert not [m for m in report["messages"] if m["severity"] >= 2], report["messages"]


@pytest.mark.parametrize("values", [
    {},
    {"autoscaling": {"enabled": True}, "serviceMonitor": {"enabled": True}, "secretKeys": {"hostedDatabaseUrl": "HOSTED_URL"},
     "config": {"publicUrl": "https://api.example.com", "baseDomain": "api.example.com"}},
])
def test_every_manifest_is_valid_kubernetes(values):
    documents = render(values)
    kinds = sorted(kind for kind, _ in documents)
    expected = {"ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"}
    assert expected <= set(kinds), kinds
    for (kind, path), document in documents.items():
        if kind == "ServiceMonitor":
            assert document["apiVersion"] == "monitoring.coreos.com/v1"  # a CRD: no core schema to check against
            continue
        kubernetes_validate.validate(document, KUBE_VERSION, strict=True)
    deployment = next(d for (k, _), d in documents.items() if k == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    env = {e["name"]: e for e in container["env"]}
    for name in ["DATABASE_URL", "REDIS_URL", "MINIBAAS_ADMIN_TOKEN", "MINIBAAS_MASTER_KEY"]:
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "minibaas-secrets", "secrets come from a Secret, never values"
    assert env["MINIBAAS_NODE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    # Members reach each other pod to pod; $(POD_IP) is expanded by the kubelet, so it must be defined first.
    names = [e["name"] for e in container["env"]]
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert env["MINIBAAS_ADVERTISE_URL"]["value"] == "http://$(POD_IP):8080"
    assert names.index("POD_IP") < names.index("MINIBAAS_ADVERTISE_URL")
    configmap = next(d for (k, _), d in documents.items() if k == "ConfigMap")
    assert configmap["data"]["MINIBAAS_FORWARDING"] == "proxy"
    assert configmap["data"]["MINIBAAS_HEARTBEAT_MS"] == "1000"
    assert configmap["data"]["MINIBAAS_LEASE_TTL_MS"] == "5000"
    if values.get("autoscaling", {}).get("enabled"):
        assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
        assert "MINIBAAS_HOSTED_DATABASE_URL" in env
    else:
        assert deployment["spec"]["replicas"] == 3


@pytest.mark.parametrize("bad", [
    {"replicaCount": 0},
    {"replicaCount": "three"},
    {"service": {"port": 70000}},
    {"config": {"logLevel": "loud"}},
    {"config": {"forwarding": "teleport"}},
    {"config": {"heartbeatMs": 10}},
    {"existingSecret": ""},
])
def test_the_values_schema_refuses_bad_values(bad):
    with pytest.raises(HelmValuesError):
        render(bad)


def test_storage_comes_from_an_s3_bucket_or_a_shared_volume():
    def env_of(values):
        deployment = next(d for (k, _), d in render(values).items() if k == "Deployment")
        spec = deployment["spec"]["template"]["spec"]
        return {e["name"]: e for e in spec["containers"][0]["env"]}, spec
    env, spec = env_of({})
    assert "MINIBAAS_STORAGE_BACKEND" not in env and "MINIBAAS_STORAGE_SHARED" not in env
    env, spec = env_of({"storage": {"s3": {"enabled": True, "endpoint": "http://minio.storage:9000", "bucket": "objects"}}})
    assert env["MINIBAAS_STORAGE_BACKEND"]["value"] == "s3" and env["MINIBAAS_STORAGE_S3_BUCKET"]["value"] == "objects"
    assert env["MINIBAAS_STORAGE_S3_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "minibaas-secrets"
    env, spec = env_of({"storage": {"sharedClaim": "minibaas-objects"}})
    assert env["MINIBAAS_STORAGE_SHARED"]["value"] == "1" and env["MINIBAAS_STORAGE_DIR"]["value"] == "/storage"
    assert {"name": "storage", "persistentVolumeClaim": {"claimName": "minibaas-objects"}} in spec["volumes"]
    for document in render({"storage": {"sharedClaim": "minibaas-objects"}}).values():
        if document["kind"] != "ServiceMonitor":
            kubernetes_validate.validate(document, KUBE_VERSION, strict=True)
    with pytest.raises(HelmValuesError):
        render({"storage": {"s3": {"enabled": True, "endpoint": "not a url", "bucket": "b"}}})
