"""Configuration: the JCasC ConfigMap and the plugin list ConfigMap (both content-named and
immutable: a change rolls the controller), and the controller's JVM options."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.config import JenkinsSettings
from components.config.jenkins_plugins import plugin_lines
from components.jenkins.casc import CascSite, casc_document, casc_yaml
from components.jenkins.context import Ctx
from components.jenkins.names import APP, CASC_FILE, JENKINS_HOME
from components.kube import labels


@dataclass(frozen=True)
class ConfigMaps:
    casc: pulumi.Output[str]
    plugins: pulumi.Output[str]


def _content_named(ctx: Ctx, part: str, data: dict[str, str]) -> k8s.core.v1.ConfigMap:
    """An immutable ConfigMap named by its one value's hash, one Pulumi resource per content
    (labels.content_logical_name), aliased from the constant logical name it had before."""
    (content,) = data.values()
    name = labels.resource_name(APP, part, labels.content_hash(content))
    base = f"{ctx.name}-{part}"
    return k8s.core.v1.ConfigMap(
        labels.content_logical_name(base, name),
        metadata=ctx.meta("config", name),
        data=data,
        immutable=True,
        opts=ctx.opts(aliases=[pulumi.Alias(name=base)]),
    )


def config_maps(ctx: Ctx, *, ui_service: str, agent_service_account: str) -> ConfigMaps:
    site = CascSite(ctx.instance, ctx.settings.namespace, ui_service, agent_service_account)
    casc = casc_yaml(casc_document(ctx.settings, site))
    casc_map = _content_named(ctx, "casc", {CASC_FILE: casc})
    plugins = "\n".join(plugin_lines()) + "\n"
    plugins_map = _content_named(ctx, "plugins", {"plugins.txt": plugins})
    return ConfigMaps(casc=casc_map.metadata.name, plugins=plugins_map.metadata.name)


#: With a plain git branch source (GitLab), webhooks call the git plugin's /git/notifyCommit,
#: which refuses unauthenticated requests unless this property is `disabled` or
#: `disabled-for-polling` (git plugin 5.10.1 GitStatus.java NOTIFY_COMMIT_ACCESS_CONTROL).
#: `disabled-for-polling` lets an anonymous hook only trigger a scan of the repository it names;
#: it cannot pass a revision to build.
NOTIFY_COMMIT_POLLING_ONLY = (
    "-Dhudson.plugins.git.GitStatus.NOTIFY_COMMIT_ACCESS_CONTROL=disabled-for-polling"
)


def java_opts(settings: JenkinsSettings) -> str:
    """JAVA_OPTS of the controller: heap from the memory limit, no setup wizard."""
    opts = [
        f"-XX:MaxRAMPercentage={settings.java_max_ram_percentage}",
        "-Djenkins.install.runSetupWizard=false",
        f"-Duser.home={JENKINS_HOME}",
        "-Djava.io.tmpdir=/tmp",
    ]
    if settings.job.scm == "git":
        opts.append(NOTIFY_COMMIT_POLLING_ONLY)
    return " ".join(opts)
