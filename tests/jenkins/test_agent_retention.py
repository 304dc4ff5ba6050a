"""Per-build pod templates keep no idle pods. The Jenkinsfile's `kubernetes { inheritFrom 'X' }`
makes a new template per build with a unique label; kubernetes plugin (4423.vb_59f230b_ce53)
PodTemplateUtils.combine sets `idleMinutes` to the child's value when non-zero, else the
parent's. So a parent with idleMinutes > 0 keeps each build's pod (its requests counted against
containerCap) for that long, and no later build can use it (its label is unique)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.jenkins.helpers import templates
from tests.renders import Renders

JENKINSFILE = (Path(__file__).resolve().parents[2] / "Jenkinsfile").read_text()


def _combined_idle_minutes(child: int, parent: int) -> int:
    """PodTemplateUtils.combine: `template.getIdleMinutes() != 0 ? template... : parent...`."""
    return child if child != 0 else parent


def test_every_template_the_jenkinsfile_inherits_keeps_no_idle_pod(renders: Renders) -> None:
    inherited = set(re.findall(r"inheritFrom '([^']+)'", JENKINSFILE))
    assert inherited == {"pulumi", "builder"}
    by_name = templates(renders.stack("prod"))
    # The Jenkinsfile sets no idleMinutes of its own (0 = unset in the plugin's model).
    assert "idleMinutes" not in JENKINSFILE
    for name in inherited:
        assert _combined_idle_minutes(0, by_name[name]["idleMinutes"]) == 0, name


def test_the_seed_still_keeps_idle_pods_where_they_can_be_reused(renders: Renders) -> None:
    by_name = templates(renders.stack("prod"))
    assert by_name["default"]["idleMinutes"] == 5  # Pulumi.prod.yaml cloud.idleMinutes
