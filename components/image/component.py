"""ServiceImage: build and push a service's container image with pulumi-docker.

The image is built from the app's `build` block, tagged with the git commit (the primary tag,
so every deploy of a new commit is a new image) and with the configured version (the tag of
`appstack:apps.<name>.image`) plus any extra tags, pushed to the registry named by that image,
and the Deployment runs the pushed repository digest (`repo@sha256:...`), so what runs is
exactly what was built. Earlier pushes of the version tag serve as the build cache
(BUILDKIT_INLINE_CACHE embeds the cache metadata in the image).

Registry credentials come from `appstack:registry` (`password` is a Pulumi secret); without
them the Docker config's credentials are used (`~/.docker/config.json`, or `$DOCKER_CONFIG`).

The tag pushes (`docker.Tag`, `docker.RegistryImage`) run in the bridged Terraform provider
(pulumi-docker 237b789, v5.1.0-24, submodule `upstream` = kreuzwerker/terraform-provider-docker
v4.5.0, 5074970). Without `auth_config` on the resource it looks the pushed image's registry up
in the provider's `registry_auth` and fails with "no auth config found for registry <host>"
when there is none (internal/provider/resource_docker_registry_image_funcs.go,
`getAuthConfigForRegistry`); the registry host is read from the image name by
`parseImageOptions` (resource_docker_image_funcs.go) and the entries are keyed by
`convertToHostname(address)` (provider.go `providerSetToRegistryAuth`). So the provider always
gets a `registry_auth` entry for that host: with the login when one is configured, otherwise
address only, and its `config_file` defaults to the Docker config (provider.go, `config_file`
DefaultFunc: `$DOCKER_CONFIG[/config.json]` or `~/.docker/config.json`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pulumi

from components.config import ImageBuild, RegistryCredentials, image_parts
from components.image.git import git_head

if TYPE_CHECKING:
    import pulumi_docker as docker

# pulumi_docker (some 70 ms of every process's start) is imported by the code that registers an
# image build: a stack without `build` blocks, and every command that does not render one, never
# loads it.

PROJECT_DIR = Path(__file__).resolve().parents[2]


def git_commit(repo_dir: Path) -> str:
    """Short commit of the working tree the program runs from ("untracked" outside git)."""
    return git_head(repo_dir, abbrev=12) or "untracked"


DOCKER_HUB_PUSH_HOST = "registry-1.docker.io"
"""The host `parseImageOptions` gives an image without a registry part."""


def registry_server(image: str) -> str:
    """The registry host the docker provider pushes `image` to, read as its `parseImageOptions`
    reads it: the first path part when the name has more than two parts, or two parts and the
    first contains "." or ":" or is "localhost"; otherwise Docker Hub."""
    repo, _, _ = image_parts(image)
    first, slash, _ = repo.partition("/")
    if repo.count("/") > 1 or (slash and (":" in first or "." in first or first == "localhost")):
        return first
    return DOCKER_HUB_PUSH_HOST


@dataclass(frozen=True)
class ServiceImageArgs:
    """Inputs of one image build."""

    image: str
    """The app's configured image 'repo:version': repository and version tag to push."""
    build: ImageBuild
    """Build settings (context, Dockerfile, target, platform, extra tags)."""
    project_dir: Path
    """Directory the build context and Dockerfile paths are relative to."""
    commit: str
    """Git commit, the primary tag."""
    credentials: RegistryCredentials | None = None
    """Registry login; None uses the Docker daemon's credentials."""
    password: pulumi.Input[str] | None = None
    """Registry password as a Pulumi secret (from credentials)."""


def _registry_auth(server: str, args: ServiceImageArgs) -> docker.ProviderRegistryAuthArgs:
    """The provider's auth entry for the push registry: the login if configured, else address
    only (credentials then come from the Docker config file, the provider's default)."""
    import pulumi_docker as docker

    if args.credentials is not None and args.password is not None:
        return docker.ProviderRegistryAuthArgs(
            address=server,
            username=args.credentials.username,
            password=pulumi.Output.secret(args.password),
        )
    return docker.ProviderRegistryAuthArgs(address=server)


class ServiceImage(pulumi.ComponentResource):
    """Build, tag and push one image; expose the pushed digest."""

    def __init__(
        self, name: str, args: ServiceImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        import pulumi_docker as docker

        super().__init__("appstack:image:ServiceImage", name, None, opts)
        repo, version, _ = image_parts(args.image)
        server = registry_server(args.image)
        registry = (
            docker.RegistryArgs(
                server=server,
                username=args.credentials.username,
                password=pulumi.Output.secret(args.password) if args.password is not None else None,
            )
            if args.credentials is not None
            else None
        )
        build = args.build
        built = docker.Image(
            f"{name}-image",
            image_name=f"{repo}:{args.commit}",
            build=docker.DockerBuildArgs(
                context=str(args.project_dir / build.context),
                dockerfile=str(args.project_dir / build.dockerfile),
                target=build.target,
                platform=build.platform,
                args={"BUILDKIT_INLINE_CACHE": "1"},
                cache_from=docker.CacheFromArgs(images=[f"{repo}:{version or args.commit}"]),
            ),
            registry=registry,
            opts=pulumi.ResourceOptions(parent=self),
        )
        provider = docker.Provider(
            f"{name}-registry",
            registry_auth=[_registry_auth(server, args)],
            opts=pulumi.ResourceOptions(parent=self),
        )
        tags = sorted({t for t in [version, *build.extra_tags] if t and t != args.commit})
        for tag in tags:
            target = f"{repo}:{tag}"
            tagged = docker.Tag(
                f"{name}-tag-{tag}",
                source_image=built.image_name,
                target_image=target,
                tag_triggers=[built.repo_digest],
                opts=pulumi.ResourceOptions(parent=self, provider=provider),
            )
            docker.RegistryImage(
                f"{name}-push-{tag}",
                name=tagged.target_image,
                keep_remotely=True,
                triggers={"digest": built.repo_digest},
                opts=pulumi.ResourceOptions(parent=self, provider=provider),
            )
        self.image_name: pulumi.Output[str] = built.image_name
        self.repo_digest: pulumi.Output[str] = built.repo_digest
        self.register_outputs({"image_name": self.image_name, "repo_digest": self.repo_digest})
