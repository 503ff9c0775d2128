import math

from serve_app.ops.loadtest import profiles
from serve_app.ops.loadtest.profiles import Stage


def test_users_at_walks_the_stages_then_ends() -> None:
    profile = (Stage(until_s=10, users=2, spawn_rate=1), Stage(until_s=20, users=8, spawn_rate=4))
    assert profiles.users_at(profile, 0) == (2, 1)
    assert profiles.users_at(profile, 9.99) == (2, 1)
    assert profiles.users_at(profile, 10) == (8, 4)
    assert profiles.users_at(profile, 20) is None


def test_step_climbs_then_falls_and_lasts_three_to_four_minutes() -> None:
    users = [stage.users for stage in profiles.STEP]
    peak = users.index(max(users))
    assert users[: peak + 1] == sorted(users[: peak + 1])
    assert users[peak:] == sorted(users[peak:], reverse=True)
    assert 180 <= profiles.duration_s(profiles.STEP) <= 240
    # The quiet tail outlasts downscale_delay_s (30 s in serve_config.yaml) with room to spare.
    assert profiles.STEP[-1].until_s - profiles.STEP[-2].until_s >= 45


def test_spike_goes_from_quiet_to_peak_at_once() -> None:
    before, spike, after = profiles.SPIKE
    assert spike.users == profiles.peak_users(profiles.SPIKE) > before.users == after.users
    assert spike.spawn_rate >= spike.users


def test_steady_is_locusts_own_options() -> None:
    assert profiles.users_at(profiles.steady(8, 2, 30), 29) == (8, 2)
    assert profiles.users_at(profiles.steady(8, 2, 30), 30) is None
    forever = profiles.steady(8, 2, None)
    assert math.isinf(profiles.duration_s(forever))
    assert profiles.users_at(forever, 1e9) == (8, 2)


def test_every_shape_is_selectable() -> None:
    assert set(profiles.SHAPES) == {"steady", *profiles.PROFILES}
