"""The pod of an app: one container `app` with restricted security (Pod Security Standards
"restricted"), startup/liveness/readiness probes, requests and limits, graceful shutdown (preStop
sleep shorter than the grace period), a writable /tmp, the app's Secret mounted as files, and
topology spread per revision. Every workload of every release strategy (components/app/release.py)
uses this template."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.app import release
from components.config import AppConfig, Probe
from components.config.workload import SECRETS_MOUNT as SECRETS_MOUNT
from components.config.workload import TMP_MOUNT
from components.kube import labels
from components.kube.security import container_security_context, pod_security_context

CONTAINER = "app"
#: Name of the pod volume of the app's PersistentVolumeClaim (apps.<name>.volume).
DATA_VOLUME = "data"


def _http_probe(probe: Probe) -> k8s.core.v1.ProbeArgs:
    """An HTTP probe on the named port. `initialDelaySeconds` only when set: 0 is the API's
    default, and core/v1 Probe's Go field (`int32`, `omitempty`) drops it whenever a controller
    writes the object back whole (Argo Rollouts updates its Rollout, rollout/controller.go and
    sync.go `Update`): a rendered 0 then reads as a change on every preview."""
    return k8s.core.v1.ProbeArgs(
        http_get=k8s.core.v1.HTTPGetActionArgs(path=probe.path, port="http"),
        initial_delay_seconds=probe.initial_delay_seconds or None,
        period_seconds=probe.period_seconds,
        timeout_seconds=probe.timeout_seconds,
        failure_threshold=probe.failure_threshold,
        success_threshold=1,
    )


def _resources(app: AppConfig) -> k8s.core.v1.ResourceRequirementsArgs:
    req, lim = app.resources.requests, app.resources.limits
    return k8s.core.v1.ResourceRequirementsArgs(
        requests={"cpu": req.cpu, "memory": req.memory, "ephemeral-storage": req.ephemeral_storage},
        limits={"cpu": lim.cpu, "memory": lim.memory, "ephemeral-storage": lim.ephemeral_storage},
    )


def topology_spread(
    app_name: str, instance: str, app: AppConfig, revision_label: str
) -> list[k8s.core.v1.TopologySpreadConstraintArgs]:
    """Spread replicas across nodes, and zones when configured; per revision so a rollout's new
    pods spread too. `revision_label` is the pod-template-hash label the workload's controller
    gives its pods (components.app.release.Workload.revision_label): `pod-template-hash` for a
    Deployment, `rollouts-pod-template-hash` for an Argo Rollout. A key the pods lack would
    make the scheduler ignore it and spread old and new pods together."""
    keys = ["kubernetes.io/hostname"] + (
        ["topology.kubernetes.io/zone"] if app.topology.zones else []
    )
    return [
        k8s.core.v1.TopologySpreadConstraintArgs(
            max_skew=app.topology.max_skew,
            topology_key=key,
            when_unsatisfiable=app.topology.when_unsatisfiable,
            label_selector=k8s.meta.v1.LabelSelectorArgs(
                match_labels=labels.selector_labels(app_name, instance)
            ),
            match_label_keys=[revision_label],
        )
        for key in keys
    ]


def app_container(
    app: AppConfig, image: pulumi.Input[str], config_map: pulumi.Input[str]
) -> k8s.core.v1.ContainerArgs:
    """The app's container: ports, env from the ConfigMap, resources, restricted security
    context, probes, graceful shutdown, writable /tmp and the mounted secrets."""
    sec = app.security
    return k8s.core.v1.ContainerArgs(
        name=CONTAINER,
        image=image,
        image_pull_policy="Always",
        ports=[
            k8s.core.v1.ContainerPortArgs(name="http", container_port=app.port, protocol="TCP"),
            k8s.core.v1.ContainerPortArgs(
                name="metrics", container_port=app.metrics_port, protocol="TCP"
            ),
        ],
        env_from=[
            k8s.core.v1.EnvFromSourceArgs(
                config_map_ref=k8s.core.v1.ConfigMapEnvSourceArgs(name=config_map)
            )
        ],
        # The version this pod runs, from its own label (the downward API): a canary's or a
        # colour's pods report their own image's version, and the ConfigMap stays the same
        # across image bumps.
        env=[
            k8s.core.v1.EnvVarArgs(
                name="APP_VERSION",
                value_from=k8s.core.v1.EnvVarSourceArgs(
                    field_ref=k8s.core.v1.ObjectFieldSelectorArgs(
                        field_path=f"metadata.labels['{labels.VERSION}']"
                    )
                ),
            )
        ],
        # A container that exits with an error gets the tail of its log as its termination
        # message (lastState.terminated.message): `stackctl deploy` quotes its last line when a
        # new version crashes before it is ready (stackctl/ops/rollout_status.py).
        termination_message_policy="FallbackToLogsOnError",
        resources=_resources(app),
        security_context=container_security_context(sec.run_as_user, sec.run_as_group),
        startup_probe=_http_probe(app.probes.startup),
        liveness_probe=_http_probe(app.probes.liveness),
        readiness_probe=_http_probe(app.probes.readiness),
        lifecycle=k8s.core.v1.LifecycleArgs(
            pre_stop=k8s.core.v1.LifecycleHandlerArgs(
                sleep=k8s.core.v1.SleepActionArgs(seconds=app.rollout.pre_stop_sleep_seconds)
            )
        )
        if app.rollout.pre_stop_sleep_seconds > 0
        else None,
        volume_mounts=[
            k8s.core.v1.VolumeMountArgs(name="tmp", mount_path=TMP_MOUNT),
            k8s.core.v1.VolumeMountArgs(name="secrets", mount_path=SECRETS_MOUNT, read_only=True),
        ]
        + (
            [k8s.core.v1.VolumeMountArgs(name=DATA_VOLUME, mount_path=app.volume.mount_path)]
            if app.volume is not None
            else []
        ),
    )


def tolerations(app: AppConfig) -> list[k8s.core.v1.TolerationArgs] | None:
    """The app's tolerations as the pod spec takes them (None when there are none, so the field
    is not set). Each is written as configured, operator included."""
    return [
        k8s.core.v1.TolerationArgs(
            key=t.key or None,
            operator=t.operator,
            value=t.value or None,
            effect=t.effect or None,
            toleration_seconds=t.toleration_seconds,
        )
        for t in app.tolerations
    ] or None


def pod_template(
    app_name: str,
    instance: str,
    app: AppConfig,
    *,
    image: pulumi.Input[str],
    service_account: pulumi.Input[str],
    config_map: pulumi.Input[str],
    secret: pulumi.Input[str],
    extra_labels: Mapping[str, str] | None = None,
    revision_label: str = release.DEPLOYMENT_REVISION_LABEL,
    image_pull_secrets: Sequence[pulumi.Input[str]] = (),
    claim: pulumi.Input[str] | None = None,
) -> k8s.core.v1.PodTemplateSpecArgs:
    """The pod of an app: restricted security, probes, resources, graceful shutdown; with
    `claim` (apps.<name>.volume) the app's PersistentVolumeClaim, writable by the non-root uid
    through the pod's fsGroup (the kubelet gives the volume that group, setgid)."""
    sec = app.security
    annotations = {"kubectl.kubernetes.io/default-container": CONTAINER}
    return k8s.core.v1.PodTemplateSpecArgs(
        metadata=k8s.meta.v1.ObjectMetaArgs(
            labels={
                **labels.standard_labels(app_name, instance, "server", app.label_version),
                **(extra_labels or {}),
            },
            annotations=annotations,
        ),
        spec=k8s.core.v1.PodSpecArgs(
            service_account_name=service_account,
            automount_service_account_token=False,
            enable_service_links=False,
            image_pull_secrets=[
                k8s.core.v1.LocalObjectReferenceArgs(name=n) for n in image_pull_secrets
            ]
            or None,
            security_context=pod_security_context(sec.run_as_user, sec.run_as_group, sec.fs_group),
            termination_grace_period_seconds=app.rollout.termination_grace_period_seconds,
            topology_spread_constraints=topology_spread(app_name, instance, app, revision_label),
            # Node placement (issue 32): off (unset) unless configured; every workload of the
            # app (each strategy's Deployments, the Argo Rollout) is built from this template.
            node_selector=dict(app.node_selector) or None,
            tolerations=tolerations(app),
            containers=[app_container(app, image, config_map)],
            volumes=[
                k8s.core.v1.VolumeArgs(
                    name="tmp",
                    empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit=app.tmp_size_limit),
                ),
                k8s.core.v1.VolumeArgs(
                    name="secrets",
                    secret=k8s.core.v1.SecretVolumeSourceArgs(
                        secret_name=secret, default_mode=0o440
                    ),
                ),
            ]
            + (
                [
                    k8s.core.v1.VolumeArgs(
                        name=DATA_VOLUME,
                        persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(
                            claim_name=claim
                        ),
                    )
                ]
                if claim is not None
                else []
            ),
        ),
    )
