"""Load profiles as data: how many users at which second. Pure, so they are tested without
starting Locust (importing locust monkey-patches the process with gevent).

The locustfile's one LoadTestShape asks `users_at(profile, t)` every second.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Stage:
    until_s: float  # the stage ends this many seconds after the start of the run
    users: int
    spawn_rate: float  # users started (or stopped) per second on the way to `users`


# Step: climb past what one replica of each deployment keeps up with, hold long enough for the
# autoscaler (upscale_delay_s 3, look_back_period_s 5) to act and for the new replicas to start,
# then drop to a trickle for longer than downscale_delay_s (30) so the scale-down is seen too.
STEP = (
    Stage(until_s=30, users=4, spawn_rate=4),
    Stage(until_s=65, users=16, spawn_rate=4),
    Stage(until_s=110, users=40, spawn_rate=8),
    Stage(until_s=150, users=64, spawn_rate=8),
    Stage(until_s=170, users=16, spawn_rate=16),
    Stage(until_s=230, users=2, spawn_rate=16),
)

# Spike: a quiet baseline, every user at once, then quiet again to watch the recovery.
SPIKE = (
    Stage(until_s=20, users=4, spawn_rate=4),
    Stage(until_s=50, users=64, spawn_rate=64),
    Stage(until_s=100, users=4, spawn_rate=64),
)

PROFILES = {"step": STEP, "spike": SPIKE}
SHAPES = ("steady", *PROFILES)


def steady(users: int, spawn_rate: float, run_time_s: float | None) -> tuple[Stage, ...]:
    """Locust's own -u/-r/-t as a profile; no run time: until stopped."""
    return (
        Stage(
            until_s=run_time_s if run_time_s else float("inf"), users=users, spawn_rate=spawn_rate
        ),
    )


def users_at(profile: tuple[Stage, ...], elapsed_s: float) -> tuple[int, float] | None:
    """(users, spawn_rate) for this moment of the run, or None once the profile is over."""
    for stage in profile:
        if elapsed_s < stage.until_s:
            return stage.users, stage.spawn_rate
    return None


def duration_s(profile: tuple[Stage, ...]) -> float:
    return profile[-1].until_s if profile else 0.0


def peak_users(profile: tuple[Stage, ...]) -> int:
    return max((stage.users for stage in profile), default=0)
