"""The rules of tests/e2e/traffic_kit.py on hand-made timelines (the real ones come from the API
server's watches in `make e2e-app`)."""

from __future__ import annotations

import threading

import pytest

from e2e.load import binomial_bounds
from tests.e2e.traffic_kit import (
    PodTrack,
    Timeline,
    api_seconds,
    graceful_problems,
    grouped,
    split_problems,
)


def _timeline(*tracks: PodTrack) -> Timeline:
    timeline = Timeline.__new__(Timeline)  # no watches: the tracks are given
    timeline.pods = {t.name: t for t in tracks}
    timeline.lock = threading.Lock()
    return timeline


def test_api_timestamps_are_utc_seconds() -> None:
    assert api_seconds("1970-01-01T00:01:40Z") == 100.0


def test_a_pod_that_left_the_endpoints_before_its_second_of_exit_is_graceful() -> None:
    ok = PodTrack("a", endpoint_ready_at=1.0, deleting_at=10.0, endpoint_left_at=10.1,
                  finished_at=20.0, exit_code=0)  # fmt: skip
    never_served = PodTrack("b", deleting_at=10.0)  # a surge pod removed before it was ready
    assert graceful_problems(_timeline(ok, never_served)) == []


@pytest.mark.parametrize(
    ("track", "problem"),
    [
        (PodTrack("late", endpoint_ready_at=1.0, deleting_at=10.0, endpoint_left_at=20.5,
                  finished_at=20.0, exit_code=0), "after the second its process stopped"),
        (PodTrack("stuck", endpoint_ready_at=1.0, deleting_at=10.0, finished_at=20.0,
                  exit_code=0), "still a ready endpoint"),
        (PodTrack("killed", endpoint_ready_at=1.0, deleting_at=10.0, endpoint_left_at=10.1,
                  finished_at=20.0, exit_code=137), "exit code 137"),
        (PodTrack("unseen", endpoint_ready_at=1.0, deleting_at=10.0, endpoint_left_at=10.1),
         "no terminated state"),
    ],
)  # fmt: skip
def test_each_breach_of_the_graceful_rule_is_named(track: PodTrack, problem: str) -> None:
    (found,) = graceful_problems(_timeline(track))
    assert found.startswith(track.name) and problem in found


def test_counts_are_grouped_by_the_answering_pods_label() -> None:
    split = {"web-1": 5, "web-2": 7, "web-canary-1": 3, "gone": 1}
    group_of = {"web-1": "stable", "web-2": "stable", "web-canary-1": "canary"}
    assert grouped(split, group_of) == {"stable": 12, "canary": 3, "unknown:gone": 1}


def test_a_split_inside_the_binomial_region_passes_and_outside_fails() -> None:
    n, share = 1000, 0.25
    lo, hi = binomial_bounds(n, share, 1e-4)
    inside = {"canary": lo, "stable": n - lo}
    assert split_problems(inside, {"canary": share, "stable": 1 - share}) == []
    outside = {"canary": hi + 1, "stable": n - hi - 1}
    problems = split_problems(outside, {"canary": share, "stable": 1 - share})
    assert len(problems) == 2 and problems[0].startswith("canary:")
    assert split_problems({"green": 10, "blue": 1}, {"green": 1.0}) == [
        "green: 10 of 11 (0.909), expected 1.000 (acceptance 11..11 at alpha 0.0001)",
        "responses from unexpected groups: ['blue']",
    ]
