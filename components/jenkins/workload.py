"""Controller workload: the StatefulSet (plugin installer init container + controller)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.config import JenkinsSettings, Resources, image_parts
from components.jenkins.agent_containers import resource_map
from components.jenkins.builder import pull_secret_refs
from components.jenkins.configuration import java_opts
from components.jenkins.context import Ctx
from components.jenkins.names import (
    APP,
    CACHE_DIR,
    CASC_DIR,
    CASC_FILE,
    CI_SECRETS_DIR,
    HTTP_PORT,
    JENKINS_HOME,
    JENKINS_WAR,
    PLUGIN_LIST_DIR,
    PLUGINS_DIR,
    SECRETS_DIR,
    USERS_SECRETS_DIR,
    required_credential_keys,
)
from components.kube import labels
from components.kube.security import container_security_context, pod_security_context

#: Plugins, installed afresh on every start (emptyDir over JENKINS_HOME/plugins): the ~80 pinned
#: .jpi archives are ~300 MiB and Jenkins explodes each next to it (~2x): 1Gi.
PLUGINS_VOLUME_SIZE = "1Gi"
#: /tmp: the installer's download cache and update-center metadata (~350 MiB), then the
#: controller's temporary files.
TMP_SIZE = "1Gi"
#: The extracted WAR (--webroot, ~150 MiB) and Jenkins' caches.
CACHE_SIZE = "1Gi"
#: The StatefulSet and the UI Service wait for the first boot: plugin download (~300 MiB) and
#: Jenkins start, which the startup probe allows 10 minutes; twice the provider's default.
ROLLOUT_TIMEOUT = "20m"


@dataclass(frozen=True)
class WorkloadRefs:
    """Names of the objects the StatefulSet mounts or points at."""

    controller_sa: pulumi.Input[str]
    headless_service: pulumi.Input[str]
    home_claim: pulumi.Input[str]
    casc_map: pulumi.Input[str]
    plugins_map: pulumi.Input[str]
    admin_secret: pulumi.Input[str]


def resources_args(resources: Resources) -> k8s.core.v1.ResourceRequirementsArgs:
    return k8s.core.v1.ResourceRequirementsArgs(
        requests=resource_map(resources, "requests"), limits=resource_map(resources, "limits")
    )


def scanner_skips(settings: JenkinsSettings) -> dict[str, str]:
    """checkov skips of the controller StatefulSet, each with its reason (tests list them)."""
    skips = {
        "checkov.io/skip1": (
            "CKV_K8S_38=the controller calls the Kubernetes API (kubernetes plugin creates, "
            "watches and deletes agent pods), so its pod mounts its ServiceAccount token; "
            "agent pods do not"
        )
    }
    _, _, digest = image_parts(settings.image)
    if digest is None:
        skips["checkov.io/skip2"] = (
            "CKV_K8S_43=image pinned by an immutable LTS tag from config; set a digest in "
            "appstack:jenkins.image to pin by digest"
        )
    return skips


def _mount(name: str, path: str, read_only: bool = False) -> k8s.core.v1.VolumeMountArgs:
    return k8s.core.v1.VolumeMountArgs(name=name, mount_path=path, read_only=read_only or None)


def plugin_installer_args() -> list[str]:
    """jenkins-plugin-cli arguments (plugin-installation-manager-tool CliOptions): exactly the
    pinned list, into the fresh plugins volume, dependencies at their minimum (`--latest false`;
    every dependency is pinned, so nothing is resolved beyond the list), checked against the
    core of the image's WAR."""
    return [
        "--war",
        JENKINS_WAR,
        "--plugin-file",
        f"{PLUGIN_LIST_DIR}/plugins.txt",
        "--plugin-download-directory",
        PLUGINS_DIR,
        "--latest",
        "false",
        "--verbose",
    ]


def _installer(s: JenkinsSettings) -> k8s.core.v1.ContainerArgs:
    sec = s.security
    return k8s.core.v1.ContainerArgs(
        name="install-plugins",
        image=s.image,
        image_pull_policy="Always",
        command=["jenkins-plugin-cli"],
        args=plugin_installer_args(),
        working_dir="/tmp",
        # The UID has no passwd entry: point HOME, user.home and the plugin manager's cache at
        # the /tmp emptyDir.
        env=[
            k8s.core.v1.EnvVarArgs(name="HOME", value="/tmp"),
            # jenkins-plugin-cli runs `java $JAVA_OPTS -jar jenkins-plugin-manager.jar`: the heap
            # share of the controller, of this container's own limit.
            k8s.core.v1.EnvVarArgs(
                name="JAVA_OPTS",
                value=f"-XX:MaxRAMPercentage={s.java_max_ram_percentage} "
                "-Duser.home=/tmp -Djava.io.tmpdir=/tmp",
            ),
            k8s.core.v1.EnvVarArgs(name="CACHE_DIR", value="/tmp/jenkins-plugin-cli"),
        ],
        resources=resources_args(s.plugin_installer_resources),
        security_context=container_security_context(sec.run_as_user, sec.run_as_group),
        volume_mounts=[
            _mount("plugins", PLUGINS_DIR),
            _mount("tmp", "/tmp"),
            _mount("plugin-list", PLUGIN_LIST_DIR, read_only=True),
        ],
    )


#: The check-credentials init container: small and short-lived.
CHECK_RESOURCES = Resources.model_validate(
    {
        "requests": {"cpu": "10m", "memory": "16Mi", "ephemeralStorage": "16Mi"},
        "limits": {"cpu": "100m", "memory": "64Mi", "ephemeralStorage": "64Mi"},
    }
)

#: Fails, naming the key, when a credential file JCasC reads is empty (an empty value would
#: become an empty credential and fail only when a stage uses it).
CHECK_SCRIPT = (
    'for f in "$@"; do [ -s "$f" ] || { '
    'echo "credential ${f##*/} is empty in Secret $SECRET_NAME (docs/ci.md)" >&2; exit 1; }; done'
)


def _credentials_check(s: JenkinsSettings) -> k8s.core.v1.ContainerArgs:
    sec = s.security
    keys = required_credential_keys(s.image_builder, s.pipeline.state_backend)
    files = [f"{CI_SECRETS_DIR}/{key}" for key in keys]
    return k8s.core.v1.ContainerArgs(
        name="check-credentials",
        image=s.image,
        image_pull_policy="Always",
        command=["sh", "-c", CHECK_SCRIPT, "check-credentials"],
        args=files,
        env=[k8s.core.v1.EnvVarArgs(name="SECRET_NAME", value=s.credentials.secret_name)],
        termination_message_policy="FallbackToLogsOnError",
        resources=resources_args(CHECK_RESOURCES),
        security_context=container_security_context(sec.run_as_user, sec.run_as_group),
        volume_mounts=[_mount("ci-credentials", CI_SECRETS_DIR, read_only=True)],
    )


def _http_probe(period: int, timeout: int, failures: int) -> k8s.core.v1.ProbeArgs:
    return k8s.core.v1.ProbeArgs(
        http_get=k8s.core.v1.HTTPGetActionArgs(path="/login", port="http"),
        period_seconds=period,
        timeout_seconds=timeout,
        failure_threshold=failures,
        success_threshold=1,
    )


def _controller(s: JenkinsSettings) -> k8s.core.v1.ContainerArgs:
    sec = s.security
    mounts = [
        _mount("jenkins-home", JENKINS_HOME),
        # Over the claim's plugins/ directory: what runs is what the installer just wrote.
        _mount("plugins", PLUGINS_DIR),
        _mount("tmp", "/tmp"),
        _mount("cache", CACHE_DIR),
        _mount("casc", CASC_DIR, read_only=True),
        _mount("admin", SECRETS_DIR, read_only=True),
        _mount("ci-credentials", CI_SECRETS_DIR, read_only=True),
    ]
    if s.authorization.deployers:
        mounts.append(_mount("users", USERS_SECRETS_DIR, read_only=True))
    env = {
        "JAVA_OPTS": java_opts(s),
        "JENKINS_OPTS": f"--webroot={CACHE_DIR}/war",
        "CASC_JENKINS_CONFIG": f"{CASC_DIR}/{CASC_FILE}",
        "HOME": JENKINS_HOME,
    }
    return k8s.core.v1.ContainerArgs(
        name=APP,
        image=s.image,
        image_pull_policy="Always",
        ports=[
            k8s.core.v1.ContainerPortArgs(name="http", container_port=HTTP_PORT, protocol="TCP")
        ],
        env=[k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in env.items()],
        resources=resources_args(s.resources),
        security_context=container_security_context(sec.run_as_user, sec.run_as_group),
        # Startup: up to 10 min for first boot; liveness restarts a hung controller after
        # 5 x 10 s; readiness drops it from the Service after 3 x 10 s.
        startup_probe=_http_probe(10, 5, 60),
        liveness_probe=_http_probe(10, 5, 5),
        readiness_probe=_http_probe(10, 5, 3),
        volume_mounts=mounts,
    )


def _secret_volume(
    name: str, secret: pulumi.Input[str], items: list[str] | None, paths: list[str] | None = None
) -> k8s.core.v1.VolumeArgs:
    return k8s.core.v1.VolumeArgs(
        name=name,
        secret=k8s.core.v1.SecretVolumeSourceArgs(
            secret_name=secret,
            default_mode=0o440,
            items=[
                k8s.core.v1.KeyToPathArgs(key=k, path=p)
                for k, p in zip(items, paths or items, strict=True)
            ]
            if items
            else None,
        ),
    )


def _volumes(s: JenkinsSettings, refs: WorkloadRefs) -> list[k8s.core.v1.VolumeArgs]:
    def empty(name: str, size: str) -> k8s.core.v1.VolumeArgs:
        return k8s.core.v1.VolumeArgs(
            name=name, empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit=size)
        )

    volumes = [
        k8s.core.v1.VolumeArgs(
            name="jenkins-home",
            persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(
                claim_name=refs.home_claim
            ),
        ),
        empty("plugins", PLUGINS_VOLUME_SIZE),
        empty("tmp", TMP_SIZE),
        empty("cache", CACHE_SIZE),
        k8s.core.v1.VolumeArgs(
            name="casc", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=refs.casc_map)
        ),
        k8s.core.v1.VolumeArgs(
            name="plugin-list",
            config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=refs.plugins_map),
        ),
        _secret_volume(
            "admin",
            refs.admin_secret,
            ["username", "password"],
            ["admin-username", "admin-password"],
        ),
        # The operator's Secret (docs/ci.md): not optional, so the pod waits for it; each key
        # JCasC reads is listed, so a missing key fails the volume setup naming the key
        # (core/v1 SecretVolumeSource.items: "If a key is specified which is not present in the
        # Secret, the volume setup will error unless it is marked optional"), instead of
        # configuration-as-code resolving `${readFile:}` of a missing file to an empty string
        # (SecretSourceResolver.FileStringLookup, 2037.v8e5349845172).
        _secret_volume(
            "ci-credentials",
            s.credentials.secret_name,
            required_credential_keys(s.image_builder, s.pipeline.state_backend),
        ),
    ]
    if s.authorization.deployers:
        volumes.append(
            _secret_volume(
                "users", s.authorization.users_secret_name, list(s.authorization.deployers)
            )
        )
    return volumes


def statefulset(ctx: Ctx, refs: WorkloadRefs) -> pulumi.Output[str]:
    """One replica with a stable identity and stop-before-start updates (ReadWriteOnce home)."""
    s = ctx.settings
    sec = s.security
    sts = k8s.apps.v1.StatefulSet(
        f"{ctx.name}-statefulset",
        metadata=ctx.meta(
            "controller", labels.resource_name(APP), scanner_skips(s), versioned=True
        ),
        spec=k8s.apps.v1.StatefulSetSpecArgs(
            replicas=1,
            service_name=refs.headless_service,
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=ctx.selector),
            pod_management_policy="OrderedReady",
            update_strategy=k8s.apps.v1.StatefulSetUpdateStrategyArgs(type="RollingUpdate"),
            revision_history_limit=5,
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    labels=labels.standard_labels(APP, ctx.instance, "controller", ctx.version),
                    annotations={"kubectl.kubernetes.io/default-container": APP},
                ),
                spec=k8s.core.v1.PodSpecArgs(
                    service_account_name=refs.controller_sa,
                    automount_service_account_token=True,
                    enable_service_links=False,
                    image_pull_secrets=pull_secret_refs(s.image_pull_secrets),  # issue 11
                    security_context=pod_security_context(
                        sec.run_as_user, sec.run_as_group, sec.fs_group
                    ),
                    termination_grace_period_seconds=60,
                    init_containers=[_credentials_check(s), _installer(s)],
                    containers=[_controller(s)],
                    volumes=_volumes(s, refs),
                ),
            ),
        ),
        # The StatefulSet await (provider/pkg/await) would give up after its default 10 min.
        opts=ctx.opts(
            custom_timeouts=pulumi.CustomTimeouts(create=ROLLOUT_TIMEOUT, update=ROLLOUT_TIMEOUT)
        ),
    )
    return sts.metadata.name
