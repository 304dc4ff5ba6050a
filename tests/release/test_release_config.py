"""Release config: defaults, and every rejection names its key path under
`appstack:apps.web.release` (or the key it conflicts with) and says what is allowed."""

from __future__ import annotations

from typing import Any

import pytest

from components import config as config_model
from tests.conftest import base_raw, load_error
from tests.release.helpers import NEW_IMAGE, argo, blue_green, canary, release_raw

KEY = "appstack:apps.web.release"


def test_the_default_release_is_rolling_without_argo() -> None:
    release = config_model.load(base_raw()).apps["web"].release
    assert release.strategy == "rolling" and release.argo_rollouts is False
    assert release.weight == 0 and release.steps == [10, 25, 50, 100]
    assert release.active == "blue" and release.scale_down_idle is False


def test_release_keys_are_camel_case_and_documented() -> None:
    fields = config_model.ReleaseSettings.model_fields
    assert {f.alias for f in fields.values()} >= {
        "strategy",
        "active",
        "blueImage",
        "greenImage",
        "scaleDownIdle",
        "canaryImage",
        "weight",
        "steps",
        "argoRollouts",
    }
    assert all(f.description for f in fields.values())
    assert config_model.AppConfig.model_fields["release"].description


@pytest.mark.parametrize(
    ("raw", "key", "detail"),
    [
        pytest.param(
            release_raw(release={"strategy": "canary", "weight": 10}),
            f"{KEY}.canaryImage:",
            "strategy canary needs canaryImage",
            id="canary-needs-image",
        ),
        pytest.param(
            canary(weight=30),
            f"{KEY}.weight:",
            "weight (30) must be 0 or one of steps [10, 25, 50, 100]",
            id="weight-not-a-step",
        ),
        pytest.param(
            canary(weight=10, release={"steps": [10, 50, 25]}),
            f"{KEY}.steps:",
            "must be strictly increasing",
            id="steps-not-increasing",
        ),
        pytest.param(
            canary(weight=10, release={"steps": [10, 10]}),
            f"{KEY}.steps:",
            "must be strictly increasing",
            id="steps-repeated",
        ),
        pytest.param(
            canary(weight=0, release={"steps": [0, 50]}),
            f"{KEY}.steps[0]:",
            "greater than or equal to 1",
            id="step-zero",
        ),
        pytest.param(
            canary(weight=0, release={"steps": [50, 101]}),
            f"{KEY}.steps[1]:",
            "less than or equal to 100",
            id="step-above-100",
        ),
        pytest.param(
            canary(weight=101),
            f"{KEY}.weight:",
            "less than or equal to 100",
            id="weight-above-100",
        ),
        pytest.param(
            release_raw(release={"strategy": "purple"}),
            f"{KEY}.strategy:",
            "'purple' is not allowed",
            id="unknown-strategy",
        ),
        pytest.param(
            blue_green(release={"active": "red"}),
            f"{KEY}.active:",
            "'red' is not allowed",
            id="unknown-colour",
        ),
        pytest.param(
            blue_green(release={"blueImage": "registry.example.com/web:latest"}),
            f"{KEY}.blueImage:",
            "is not pinned",
            id="colour-image-unpinned",
        ),
        pytest.param(
            canary(release={"canaryImage": "registry.example.com/web"}),
            f"{KEY}.canaryImage:",
            "is not pinned",
            id="canary-image-unpinned",
        ),
        pytest.param(
            release_raw(release={"canaryWeight": 5}),
            f"{KEY}.canaryWeight:",
            "unknown key",
            id="unknown-key",
        ),
        pytest.param(
            argo("rolling"),
            f"{KEY}.argoRollouts:",
            "argoRollouts needs strategy blueGreen or canary",
            id="argo-needs-a-strategy",
        ),
        pytest.param(
            {**argo("canary"), "monitoring": {"enabled": False}},
            f"{KEY}.argoRollouts:",
            "needs appstack:monitoring.enabled: true",
            id="argo-needs-monitoring",
        ),
        pytest.param(
            argo("canary", release={"canaryImage": NEW_IMAGE}),
            f"{KEY}.canaryImage:",
            "not used with argoRollouts",
            id="argo-rolls-out-image-itself",
        ),
        pytest.param(
            argo("canary", release={"weight": 10}),
            f"{KEY}.weight:",
            "not used with argoRollouts",
            id="argo-walks-the-steps",
        ),
        pytest.param(
            blue_green(release={"scaleDownIdle": True}, autoscaling={"enabled": True}),
            f"{KEY}.scaleDownIdle:",
            "never scales below minReplicas",
            id="scale-down-idle-with-hpa",
        ),
        pytest.param(
            canary(weight=50, replicas=4, pdb={"minAvailable": 2}),
            f"{KEY}.weight:",
            "the stable track runs 2 of 4 pods",
            id="canary-leaves-stable-below-pdb",
        ),
        pytest.param(
            canary(weight=50, replicas=3, pdb={"minAvailable": "50%"}),
            f"{KEY}.weight:",
            "pdb.minAvailable (50%) would block every eviction",
            id="canary-leaves-stable-below-pdb-percent",
        ),
        pytest.param(
            release_raw(release={"prometheusAddress": "prometheus:9090"}),
            f"{KEY}.prometheusAddress:",
            "should match pattern",
            id="prometheus-address-not-a-url",
        ),
    ],
)
def test_bad_release_config_is_rejected_with_its_key_path(raw: Any, key: str, detail: str) -> None:
    message = load_error(raw)
    line = next((ln for ln in message.splitlines() if key in ln), None)
    assert line is not None, message
    assert detail in line, message
    assert "Traceback" not in message


@pytest.mark.parametrize(
    "raw",
    [
        blue_green("prod", replicas=1, autoscaling={"enabled": False}),
        canary("prod", replicas=1, autoscaling={"enabled": False}),
        argo("blueGreen", replicas=1, autoscaling={"enabled": False}),
    ],
    ids=["blueGreen", "canary", "argo"],
)
def test_prod_invariants_hold_for_every_strategy(raw: dict[str, Any]) -> None:
    assert "appstack:apps.web.replicas: prod needs >= 2 replicas" in load_error(raw)
    raw["apps"]["web"]["replicas"] = 2
    raw["apps"]["web"]["pdb"] = {"enabled": False}
    assert "appstack:apps.web.pdb.enabled: prod requires a PodDisruptionBudget" in load_error(raw)


@pytest.mark.parametrize(
    "raw",
    [
        blue_green("prod"),
        blue_green("prod", release={"greenImage": None, "blueImage": NEW_IMAGE}, replicas=2),
        canary("prod", weight=100),
        canary("prod", weight=0, replicas=2, autoscaling={"enabled": False}),
        argo("blueGreen", release={"scaleDownIdle": True}),
        argo("canary"),
    ],
)
def test_valid_release_configs_load(raw: dict[str, Any]) -> None:
    assert config_model.load(raw).apps["web"].release.strategy != "rolling"
