"""The Kubernetes manifests: valid against the real schemas, and saying exactly what we mean.

DaskCluster objects are checked against the CRD schema shipped inside dask-kubernetes, core objects (and the
Pod specs inside a DaskCluster) against Kubernetes' own OpenAPI schemas in strict mode (unknown fields fail).
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")
pytest.importorskip("dask_kubernetes")
jsonschema = pytest.importorskip("jsonschema")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

from click.testing import CliRunner  # noqa: E402

from gmat_sweep import dask_config  # noqa: E402

from gmat_sweep import kubernetes as k8s  # noqa: E402
from gmat_sweep.cli.k8s import k8s as k8s_group  # noqa: E402

K8S_VERSION = "1.33"
IMAGE = "ghcr.io/acme/gmat-sweep:0.1.0"
DIGEST_IMAGE = "registry.example:5000/acme/gmat-sweep@sha256:" + "a" * 64


# ------------------------------------------------------------------------------------------- schemas
@functools.cache
def _crd_schema(kind: str) -> dict:
    """The openAPIV3Schema of a Dask CRD, from the fully expanded copies in the operator's Helm chart."""
    import dask_kubernetes

    root = Path(dask_kubernetes.__file__).parent / "operator" / "deployment" / "helm" / "dask-kubernetes-operator"
    crd = yaml.safe_load((root / "crds" / f"{kind.lower()}.yaml").read_text())
    assert crd["spec"]["names"]["kind"] == kind
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return version["schema"]["openAPIV3Schema"]


def validate(obj: dict) -> None:
    """Fail unless ``obj`` is what a Kubernetes API server (with the Dask CRDs) accepts."""
    if obj["apiVersion"] == "kubernetes.dask.org/v1":
        jsonschema.Draft7Validator(_crd_schema(obj["kind"])).validate(obj)
        # The CRD schema allows unknown fields; the Pod specs inside must be real Pod specs.
        for role in ("scheduler", "worker"):
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": obj["spec"][role]["spec"]}
            kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
        service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
                   "spec": obj["spec"]["scheduler"]["service"]}
        kubernetes_validate.validate(service, K8S_VERSION, strict=True)
    else:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def pod_specs(spec: dict) -> list[dict]:
    return [spec["spec"]["scheduler"]["spec"], spec["spec"]["worker"]["spec"]]


def test_the_validator_rejects_what_kubernetes_rejects():
    spec = k8s.cluster_spec("sma-scan", IMAGE, 2)
    broken = copy.deepcopy(spec)
    broken["spec"]["worker"]["spec"]["containers"][0]["imagePullPolicy"] = 3
    with pytest.raises(Exception):
        validate(broken)
    broken = copy.deepcopy(spec)
    del broken["spec"]["worker"]
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)
    broken = copy.deepcopy(spec)
    broken["spec"]["worker"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"  # a typo: strict mode
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)


# ---------------------------------------------------------------------------------------- DaskCluster
@pytest.fixture()
def spec() -> dict:
    return k8s.cluster_spec("sma-scan", IMAGE, 3, claim="gmat-shared", mount_path="/shared",
                            env={"OMP_NUM_THREADS": "1"}, node_selector={"pool": "gmat"},
                            tolerations=[{"key": "gmat", "operator": "Exists", "effect": "NoSchedule"}],
                            image_pull_secrets=["regcred"], service_account="gmat-runner",
                            scheduler_service_type="LoadBalancer")


def test_cluster_spec_validates(spec):
    validate(spec)
    validate(k8s.cluster_spec("minimal", DIGEST_IMAGE, 0))


def test_cluster_spec_is_accepted_by_kubecluster_parsing(spec):
    from dask_kubernetes.operator import make_cluster_spec

    reference = make_cluster_spec("sma-scan", image=IMAGE, n_workers=3)
    assert spec["apiVersion"] == reference["apiVersion"] and spec["kind"] == "DaskCluster"
    assert spec["metadata"]["name"] == "sma-scan"
    assert spec["spec"]["worker"]["replicas"] == 3
    assert spec["spec"]["scheduler"]["service"]["type"] == "LoadBalancer"
    assert spec["spec"]["scheduler"]["service"]["selector"] == reference["spec"]["scheduler"]["service"]["selector"]


def test_claim_is_mounted_in_every_pod(spec):
    for pod in pod_specs(spec):
        assert pod["volumes"] == [{"name": "shared", "persistentVolumeClaim": {"claimName": "gmat-shared"}}]
        [container] = pod["containers"]
        assert container["volumeMounts"] == [{"name": "shared", "mountPath": "/shared"}]
        assert {"name": "GMAT_SWEEP_SHARED", "value": "/shared"} in container["env"]
        assert {"name": "OMP_NUM_THREADS", "value": "1"} in container["env"]


def test_no_claim_means_no_volume():
    for pod in pod_specs(k8s.cluster_spec("sma-scan", IMAGE, 1)):
        assert "volumes" not in pod
        assert "volumeMounts" not in pod["containers"][0]
        assert all(e["name"] != "GMAT_SWEEP_SHARED" for e in pod["containers"][0]["env"])


def test_commands_exist_in_current_images(spec):
    worker = spec["spec"]["worker"]["spec"]["containers"][0]
    scheduler = spec["spec"]["scheduler"]["spec"]["containers"][0]
    assert worker["command"] == ["dask", "worker"]
    assert scheduler["command"] == ["dask", "scheduler"]
    argv = worker["command"] + worker["args"]
    assert argv[2] == "$(DASK_SCHEDULER_ADDRESS)"
    assert argv[argv.index("--name") + 1] == "$(DASK_WORKER_NAME)"
    assert argv[argv.index("--nthreads") + 1] == "1"
    assert argv[argv.index("--nworkers") + 1] == "1"
    assert "--dashboard" in argv and argv[argv.index("--dashboard-address") + 1] == "8788"
    assert "--host" in scheduler["args"]
    for container in (worker, scheduler):
        assert not any(part in ("dask-worker", "dask-scheduler") for part in container["command"] + container["args"])


def test_resources_one_cpu_and_memory():
    default = k8s.cluster_spec("sma-scan", IMAGE, 1)["spec"]["worker"]["spec"]["containers"][0]["resources"]
    assert default == {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "2Gi"}}
    custom = k8s.cluster_spec("sma-scan", IMAGE, 1, resources={"requests": {"memory": "6Gi"}})
    resources = custom["spec"]["worker"]["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "1", "memory": "6Gi"}, "limits": {"memory": "6Gi"}}
    limited = k8s.cluster_spec("sma-scan", IMAGE, 1, resources={"limits": {"memory": "8Gi", "cpu": "2"}})
    assert limited["spec"]["worker"]["spec"]["containers"][0]["resources"]["limits"] == {"memory": "8Gi", "cpu": "2"}


def test_pull_policy_and_security_context(spec):
    for pod in pod_specs(spec):
        [container] = pod["containers"]
        assert container["image"] == IMAGE
        assert container["imagePullPolicy"] == "IfNotPresent"
        security = container["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] == k8s.RUN_AS_USER == 1000
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_scheduling_options_on_both_pods(spec):
    for pod in pod_specs(spec):
        assert pod["nodeSelector"] == {"pool": "gmat"}
        assert pod["tolerations"] == [{"key": "gmat", "operator": "Exists", "effect": "NoSchedule"}]
        assert pod["imagePullSecrets"] == [{"name": "regcred"}]
        assert pod["serviceAccountName"] == "gmat-runner"
    for pod in pod_specs(k8s.cluster_spec("sma-scan", IMAGE, 1)):
        assert pod["automountServiceAccountToken"] is False
        assert not {"nodeSelector", "tolerations", "imagePullSecrets", "serviceAccountName"} & set(pod)


def test_env_list_passes_through():
    env = [{"name": "A", "value": "1"}, {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    spec = k8s.cluster_spec("sma-scan", IMAGE, 1, env=env, claim="c", mount_path="/data")
    container_env = spec["spec"]["worker"]["spec"]["containers"][0]["env"]
    quiet = [{"name": name, "value": value} for name, value in dask_config.env(dask_config.QUIET).items()]
    assert container_env == env + [{"name": "GMAT_SWEEP_SHARED", "value": "/data"}] + quiet
    validate(spec)


@pytest.mark.parametrize("image", [IMAGE, DIGEST_IMAGE, "localhost:5000/gmat:1.2", "gmat:0.1.0",
                                   "ghcr.io/acme/gmat-sweep:0.1.0@sha256:" + "0" * 64])
def test_pinned_images_are_accepted(image):
    assert k8s.cluster_spec("sma-scan", image, 1)["spec"]["worker"]["spec"]["containers"][0]["image"] == image


@pytest.mark.parametrize("image", ["ghcr.io/acme/gmat-sweep", "ghcr.io/acme/gmat-sweep:latest",
                                   "localhost:5000/gmat", "gmat"])
def test_unpinned_images_are_refused_with_a_way_out(image):
    with pytest.raises(ValueError, match=r"pin a version tag .*@sha256:.*allow_unpinned"):
        k8s.cluster_spec("sma-scan", image, 1)
    spec = k8s.cluster_spec("sma-scan", image, 1, allow_unpinned=True)
    assert spec["spec"]["scheduler"]["spec"]["containers"][0]["image"] == image


BAD_INPUTS = [
    (dict(image=""), "invalid image"),
    (dict(image="acme/gmat sweep:1"), "invalid image"),
    (dict(image="acme/gmat@sha256:abc"), "digest"),
    (dict(image="acme/gmat:"), "invalid image"),
    (dict(name="SMA_scan"), r"lower-case letters, digits or '-'"),
    (dict(name="1scan"), "starting with a letter"),
    (dict(name="scan-"), "DNS-1123 label"),
    (dict(name="a" * 54), "at most 53"),
    (dict(n_workers=-1), r"whole number >= 0"),
    (dict(n_workers=1.5), r"whole number >= 0"),
    (dict(n_workers=True), r"whole number >= 0"),
    (dict(scheduler_service_type="ExternalName"), "ClusterIP, NodePort, LoadBalancer"),
    (dict(claim="gmat-shared", mount_path=None), "without a mount path"),
    (dict(claim="gmat-shared", mount_path=""), "without a mount path"),
    (dict(mount_path="/data"), "without a claim"),
    (dict(claim="gmat-shared", mount_path="relative/dir"), "absolute path"),
    (dict(claim="Gmat_Shared"), "DNS-1123 subdomain"),
    (dict(resources={"request": {"memory": "1Gi"}}), "requests"),
    (dict(resources={"requests": {"memory": "lots"}}), "quantity"),
    (dict(env={"BAD NAME": "x"}), "environment variable"),
    (dict(claim="c", env={"GMAT_SWEEP_SHARED": "/elsewhere"}), "GMAT_SWEEP_SHARED"),
    (dict(service_account="Runner!"), "service account"),
    (dict(image_pull_secrets=["Bad_Secret"]), "image pull secret"),
]


@pytest.mark.parametrize(("change", "message"), BAD_INPUTS, ids=[m for _, m in BAD_INPUTS])
def test_bad_input_is_refused_clearly(change, message):
    kwargs = dict(name="sma-scan", image=IMAGE, n_workers=2) | change
    name, image, n = kwargs.pop("name"), kwargs.pop("image"), kwargs.pop("n_workers")
    with pytest.raises(ValueError, match=message):
        k8s.cluster_spec(name, image, n, **kwargs)


def test_default_mount_without_claim_is_fine():
    k8s.cluster_spec("sma-scan", IMAGE, 1, mount_path="/shared")
    k8s.cluster_spec("sma-scan", IMAGE, 1, mount_path=None)


# --------------------------------------------------------------------------------------- other objects
def test_pvc():
    claim = k8s.pvc("gmat-shared", "50Gi", storage_class="nfs-client", namespace="sweeps")
    validate(claim)
    assert claim["spec"] == {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "50Gi"}},
                             "storageClassName": "nfs-client"}
    assert claim["metadata"]["namespace"] == "sweeps"
    assert "storageClassName" not in k8s.pvc("gmat-shared")["spec"]
    with pytest.raises(ValueError, match="access mode"):
        k8s.pvc("gmat-shared", access_mode="ReadWriteSometimes")
    with pytest.raises(ValueError, match="quantity"):
        k8s.pvc("gmat-shared", size="ten gigs")
    with pytest.raises(ValueError, match="DNS-1123"):
        k8s.pvc("Gmat Shared")


def test_driver_rbac_is_exact_and_namespaced():
    objs = k8s.driver_rbac("sma-scan-driver", "sweeps")
    for obj in objs:
        validate(obj)
        assert obj["metadata"]["namespace"] == "sweeps"
    assert [o["kind"] for o in objs] == ["ServiceAccount", "Role", "RoleBinding"]
    role, binding = objs[1], objs[2]
    assert role["rules"] == [
        {"apiGroups": ["kubernetes.dask.org"], "resources": ["daskclusters"],
         "verbs": ["get", "list", "create", "delete"]},
        {"apiGroups": ["kubernetes.dask.org"], "resources": ["daskworkergroups"],
         "verbs": ["get", "list", "create", "patch", "delete"]},
        {"apiGroups": ["kubernetes.dask.org"], "resources": ["daskautoscalers"],
         "verbs": ["get", "create", "patch", "delete"]},
        {"apiGroups": [""], "resources": ["pods", "services"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["get", "create"]},
    ]
    assert not any("*" in rule[key] for rule in role["rules"] for key in ("apiGroups", "resources", "verbs"))
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "sma-scan-driver"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "sma-scan-driver", "namespace": "sweeps"}]
    with pytest.raises(ValueError, match="namespace"):
        k8s.driver_rbac("sma-scan-driver", None)
    with pytest.raises(ValueError, match="DNS-1123"):
        k8s.driver_rbac("Driver", "sweeps")


def test_driver_pod_matches_the_workers():
    pod = k8s.driver_pod("sma-scan-driver", IMAGE, claim="gmat-shared", mount_path="/shared",
                         command="gmat-sweep run /shared/mission.script --out '/shared/out dir'",
                         service_account="sma-scan-driver", namespace="sweeps", scheduler="sma-scan")
    validate(pod)
    spec = pod["spec"]
    [container] = spec["containers"]
    assert container["command"] == ["gmat-sweep", "run", "/shared/mission.script", "--out", "/shared/out dir"]
    assert container["image"] == IMAGE and container["imagePullPolicy"] == "IfNotPresent"
    assert container["volumeMounts"] == [{"name": "shared", "mountPath": "/shared"}]
    assert spec["volumes"] == [{"name": "shared", "persistentVolumeClaim": {"claimName": "gmat-shared"}}]
    assert spec["restartPolicy"] == "Never"
    assert spec["serviceAccountName"] == "sma-scan-driver"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {"GMAT_SWEEP_SHARED": "/shared",
                   "DASK_SCHEDULER_ADDRESS": "tcp://sma-scan-scheduler.sweeps.svc.cluster.local:8786"}
    assert container["securityContext"]["runAsNonRoot"] is True
    with pytest.raises(ValueError, match="empty driver command"):
        k8s.driver_pod("d", IMAGE, claim=None, command="")
    with pytest.raises(ValueError, match="pin"):
        k8s.driver_pod("d", "acme/gmat", claim=None, command=["true"])


def test_driver_script_configmap_is_mounted():
    cm = k8s.driver_script("sma-scan-driver", "print('hello')\n", "scan.py", namespace="sweeps")
    validate(cm)
    pod = k8s.driver_pod("sma-scan-driver", IMAGE, claim=None, command=["python", "/opt/gmat-sweep/driver/scan.py"],
                         script_configmap="sma-scan-driver")
    validate(pod)
    assert {"name": "driver-script", "configMap": {"name": "sma-scan-driver"}} in pod["spec"]["volumes"]
    assert {"name": "driver-script", "mountPath": k8s.DRIVER_SCRIPT_DIR, "readOnly": True} in \
        pod["spec"]["containers"][0]["volumeMounts"]


def test_manual_manifests_need_no_operator():
    objs = k8s.manual_manifests("sma-scan", IMAGE, 4, namespace="sweeps", claim="gmat-shared")
    for obj in objs:
        validate(obj)
    scheduler, service, workers = objs
    assert [o["kind"] for o in objs] == ["Deployment", "Service", "Deployment"]
    assert workers["metadata"]["name"] == "sma-scan-worker" and workers["spec"]["replicas"] == 4
    assert service["metadata"]["name"] == "sma-scan-scheduler"
    assert service["spec"]["selector"].items() <= scheduler["spec"]["template"]["metadata"]["labels"].items()
    for deployment in (scheduler, workers):
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
        pod = deployment["spec"]["template"]["spec"]
        assert pod["volumes"] == [{"name": "shared", "persistentVolumeClaim": {"claimName": "gmat-shared"}}]
    container = workers["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["dask", "worker"] and "--nthreads" in container["args"]
    env = {e["name"]: e for e in container["env"]}
    assert env["DASK_SCHEDULER_ADDRESS"]["value"] == "tcp://sma-scan-scheduler:8786"
    assert env["DASK_WORKER_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_render_all_and_yaml_round_trip():
    objs = k8s.render_all("sma-scan", IMAGE, 2, namespace="sweeps", claim="gmat-shared", size="20Gi",
                          driver_command="gmat-sweep run /shared/mission.script")
    assert [o["kind"] for o in objs] == ["PersistentVolumeClaim", "ServiceAccount", "Role", "RoleBinding",
                                         "DaskCluster", "Pod"]
    for obj in objs:
        validate(obj)
        assert obj["metadata"]["namespace"] == "sweeps"
    assert list(yaml.safe_load_all(k8s.to_yaml(objs))) == objs
    assert k8s.to_yaml(objs[0]).count("---") == 0

    manual = k8s.render_all("sma-scan", IMAGE, 2, claim="gmat-shared", create_claim=False, operator=False,
                            driver_script_text="print(1)\n")
    assert [o["kind"] for o in manual] == ["ConfigMap", "Deployment", "Service", "Deployment", "Pod"]
    for obj in manual:
        validate(obj)
    assert "serviceAccountName" not in manual[-1]["spec"]
    with pytest.raises(ValueError, match="either a driver command or a driver script"):
        k8s.render_all("sma-scan", IMAGE, 2, driver_command="x", driver_script_text="y")


# ---------------------------------------------------------------------------------------------- CLI
def run_cli(*args: str):
    return CliRunner().invoke(k8s_group, ["render", *args])


def test_cli_renders_yaml():
    result = run_cli("--name", "sma-scan", "--image", IMAGE, "--workers", "3", "--claim", "gmat-shared",
                     "--storage-class", "nfs", "--size", "5Gi", "--namespace", "sweeps", "--memory", "3Gi",
                     "--driver-command", "gmat-sweep run /shared/m.script", "--scheduler-service-type", "NodePort")
    assert result.exit_code == 0, result.output
    objs = list(yaml.safe_load_all(result.stdout))
    assert [o["kind"] for o in objs] == ["PersistentVolumeClaim", "ServiceAccount", "Role", "RoleBinding",
                                         "DaskCluster", "Pod"]
    for obj in objs:
        validate(obj)
    cluster = objs[4]
    assert cluster["spec"]["worker"]["replicas"] == 3
    assert cluster["spec"]["scheduler"]["service"]["type"] == "NodePort"
    assert cluster["spec"]["worker"]["spec"]["containers"][0]["resources"]["limits"] == {"memory": "3Gi"}
    assert objs[0]["spec"]["storageClassName"] == "nfs"


def test_cli_no_operator_gives_no_dask_cluster(tmp_path):
    script = tmp_path / "scan.py"
    script.write_text("print('driver')\n")
    result = run_cli("--image", IMAGE, "--no-operator", "--claim", "gmat-shared", "--existing-claim",
                     "--driver-script", str(script))
    assert result.exit_code == 0, result.output
    objs = list(yaml.safe_load_all(result.stdout))
    kinds = [o["kind"] for o in objs]
    assert "DaskCluster" not in kinds and "Role" not in kinds and "PersistentVolumeClaim" not in kinds
    assert kinds == ["ConfigMap", "Deployment", "Service", "Deployment", "Pod"]
    assert objs[0]["data"] == {"scan.py": "print('driver')\n"}
    assert objs[-1]["spec"]["containers"][0]["command"] == ["python", "/opt/gmat-sweep/driver/scan.py"]


@pytest.mark.parametrize(("args", "message"), [
    (["--image", "acme/gmat:latest"], "pin a version tag"),
    (["--image", "acme/gmat"], "--allow-unpinned"),
    (["--image", IMAGE, "--name", "Bad_Name"], "DNS-1123 label"),
    (["--image", IMAGE, "--workers", "-1"], "--workers"),
    (["--image", IMAGE, "--scheduler-service-type", "ExternalName"], "--scheduler-service-type"),
    (["--image", IMAGE, "--mount", "/data"], "needs --claim"),
    (["--image", IMAGE, "--claim", "c", "--size", "huge"], "quantity"),
    (["--image", IMAGE, "--driver-command", "x", "--driver-script", __file__], "not both"),
    (["--image", IMAGE, "--driver-script", "/does/not/exist.py"], "does not exist"),
    ([], "--image"),
])
def test_cli_bad_input_is_one_line_and_exit_2(args, message):
    result = run_cli(*args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.stderr


def test_cli_allow_unpinned():
    result = run_cli("--image", "acme/gmat:latest", "--allow-unpinned")
    assert result.exit_code == 0, result.output
    [cluster] = list(yaml.safe_load_all(result.stdout))
    assert cluster["spec"]["worker"]["spec"]["containers"][0]["image"] == "acme/gmat:latest"


# ------------------------------------------------------------------- KubernetesPool: refused before any request
# Bad input must fail before the pool talks to Kubernetes: the kubeconfig here points at a closed port, so a
# check that came too late would say "cannot reach the Kubernetes API server" instead.


@pytest.fixture
def unreachable_kubernetes(tmp_path, monkeypatch):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path / "kubeconfig.yaml"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "nowhere",
        "clusters": [{"name": "nowhere", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {}}],
        "contexts": [{"name": "nowhere", "context": {"cluster": "nowhere", "user": "u"}}]}))
    monkeypatch.setenv("KUBECONFIG", str(config))
    _forget_kr8s_clients()
    yield f"http://127.0.0.1:{port}"
    _forget_kr8s_clients()


def _forget_kr8s_clients():
    from kr8s._api import Api

    Api._instances.clear()


@pytest.mark.parametrize("image, options, message", [
    ("acme/gmat-sweep", {}, "has no tag"),
    ("acme/gmat-sweep:latest", {}, "moving tag ':latest'"),
    (IMAGE, {"claim": "gmat-shared", "mount_path": None}, "given without a mount path"),
    (IMAGE, {"mount_path": "/data"}, "given without a claim"),
    (IMAGE, {"name": "SMA_scan"}, "invalid cluster name 'SMA_scan'"),
    (IMAGE, {"name": "a" * 60}, "invalid cluster name"),
    (IMAGE, {"namespace": "Sweeps"}, "invalid namespace 'Sweeps'"),
    (IMAGE, {"claim": "gmat_shared"}, "invalid claim name"),
    (IMAGE, {"shared_storage": True}, "shared_storage=True needs a claim"),
    (IMAGE, {"wait_timeout": 0}, "wait_timeout must be a positive"),
    (IMAGE, {"scheduler_service_type": "Ingress"}, "invalid scheduler service type"),
])
def test_kubernetes_pool_refuses_bad_input_before_any_request(image, options, message, unreachable_kubernetes):
    from gmat_sweep.backends.kubernetes import KubernetesPool, KubernetesPoolError

    with pytest.raises(ValueError, match=message) as info:
        KubernetesPool(image, 2, **options)
    assert not isinstance(info.value, KubernetesPoolError)


def test_kubernetes_pool_names_an_unreachable_api_server(unreachable_kubernetes):
    from gmat_sweep.backends.kubernetes import KubernetesPool, KubernetesPoolError

    with pytest.raises(KubernetesPoolError, match=f"cannot reach the Kubernetes API server at "
                                                  f"{unreachable_kubernetes}.*kubectl cluster-info"):
        KubernetesPool(IMAGE, 2)


def test_kubernetes_pool_without_any_kubeconfig_says_where_to_get_one(tmp_path, monkeypatch):
    from gmat_sweep.backends.kubernetes import KubernetesPool, KubernetesPoolError

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing.yaml"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    _forget_kr8s_clients()
    try:
        with pytest.raises(KubernetesPoolError, match="no Kubernetes configuration found: point KUBECONFIG"):
            KubernetesPool(IMAGE, 2)
    finally:
        _forget_kr8s_clients()


def test_generated_cluster_names_are_valid_and_fresh():
    from gmat_sweep.backends.kubernetes import cluster_name

    names = {cluster_name() for _ in range(50)}
    assert len(names) == 50
    for name in names:
        k8s.cluster_spec(name, IMAGE, 1)  # the spec builder's own DNS-1123 check


def test_worker_ttl_is_off_unless_the_user_set_it():
    def scheduler_env(spec):
        return spec["spec"]["scheduler"]["spec"]["containers"][0]["env"]

    ttl_off = {"name": k8s.WORKER_TTL_ENV, "value": "None"}
    assert ttl_off in scheduler_env(k8s.cluster_spec("ttl", IMAGE, 1, env={"A": "1"}))
    own = scheduler_env(k8s.cluster_spec("ttl", IMAGE, 1, env=[{"name": k8s.WORKER_TTL_ENV, "value": "2h"}]))
    assert [e for e in own if e["name"] == k8s.WORKER_TTL_ENV] == [{"name": k8s.WORKER_TTL_ENV, "value": "2h"}]


def test_dask_processes_are_quiet_unless_the_user_set_otherwise():
    profile = dask_config.env_name("distributed.worker.profile.enabled")
    assert profile == "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED"
    spec = k8s.cluster_spec("quiet", IMAGE, 1, env={profile: "True"})
    for role in ("worker", "scheduler"):
        env = {e["name"]: e["value"] for e in spec["spec"][role]["spec"]["containers"][0]["env"]}
        assert env[profile] == "True"  # the caller's choice, once
        assert env["DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL"] == "1s"
        assert env["DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL"] == "2s"
        assert env["DASK_DISTRIBUTED__WORKER__MEMORY__MONITOR_INTERVAL"] == "1s"
        assert (k8s.WORKER_TTL_ENV in env) == (role == "scheduler")


def test_the_scheduler_serves_the_http_api_the_operator_autoscales_with():
    import dask
    import distributed  # noqa: F401 - its defaults

    defaults = dask.config.get("distributed.scheduler.http.routes")
    assert "distributed.http.scheduler.api" not in defaults  # what the spec must add
    spec = k8s.cluster_spec("auto", IMAGE, 1)
    scheduler, worker = ({e["name"]: e["value"] for e in spec["spec"][role]["spec"]["containers"][0]["env"]}
                         for role in ("scheduler", "worker"))
    # Dask parses the variable back into the list: its own routes, then /api/v1 (adaptive_target, retire_workers).
    routes = dask.config.collect_env({k8s.HTTP_ROUTES_ENV: scheduler[k8s.HTTP_ROUTES_ENV]})
    assert routes == {"distributed": {"scheduler": {"http": {"routes": [*defaults,
                                                                        "distributed.http.scheduler.api"]}}}}
    assert k8s.HTTP_ROUTES_ENV not in worker
    own = k8s.cluster_spec("auto", IMAGE, 1, env={k8s.HTTP_ROUTES_ENV: "['distributed.http.health']"})
    env = own["spec"]["scheduler"]["spec"]["containers"][0]["env"]
    assert [e["value"] for e in env if e["name"] == k8s.HTTP_ROUTES_ENV] == ["['distributed.http.health']"]


def test_the_driver_role_grants_what_resizing_asks_for():
    from gmat_sweep.backends.kubernetes import ADAPT_PERMISSIONS, SCALE_PERMISSIONS, START_PERMISSIONS

    granted = {(group, resource, verb) for rule in k8s.DRIVER_RULES for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    for verb, group, resource in START_PERMISSIONS + ADAPT_PERMISSIONS + SCALE_PERMISSIONS:
        assert (group, resource, verb) in granted


# ------------------------------------------------------------------- gmat-sweep run --backend kubernetes: usage


@pytest.mark.parametrize("args, message", [
    (["--backend", "kubernetes"], "--backend kubernetes needs --image"),
    (["--image", IMAGE], "--image needs --backend kubernetes"),
    (["--backend", "dask", "--claim", "gmat-shared"], "--claim needs --backend kubernetes"),
    (["--backend", "kubernetes", "--image", IMAGE, "--scheduler", "tcp://h:8786"], "--scheduler is for --backend dask"),
])
def test_cli_kubernetes_usage_errors_exit_2(args, message, leo, tmp_path):
    from gmat_sweep.cli import main

    result = CliRunner().invoke(main, ["run", str(leo), "--grid", "Sat.SMA=7000", "--out", str(tmp_path / "o"),
                                       "--no-progress", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


@pytest.mark.parametrize("args, message", [
    (["--image", "acme/gmat-sweep:latest"], "moving tag"),
    (["--image", IMAGE, "--mount", "/data"], "given without a claim"),
    (["--image", IMAGE, "--namespace", "Sweeps"], "invalid namespace"),
])
def test_cli_kubernetes_bad_input_is_one_line_exit_2(args, message, leo, tmp_path, unreachable_kubernetes):
    from gmat_sweep.cli import main

    result = CliRunner().invoke(main, ["run", str(leo), "--grid", "Sat.SMA=7000", "--out", str(tmp_path / "o"),
                                       "--no-progress", "--backend", "kubernetes", *args])
    assert result.exit_code == 2, result.output
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert message in line, result.stderr
