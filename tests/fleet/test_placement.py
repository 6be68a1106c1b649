"""Placement rules, on capacities, requests and policy alone (no database)."""

import pytest

from fleet.placement import (
    Gpu,
    HostCapacity,
    Limits,
    Placement,
    Policy,
    ReplicaPlacement,
    Request,
    Unplaced,
    Usage,
    place,
)

A100 = "NVIDIA A100-SXM4-80GB"
T4 = "Tesla T4"


def gpu_host(
    name: str,
    count: int,
    model: str = A100,
    used_gpus: frozenset[int] = frozenset(),
    accepting: bool = True,
) -> HostCapacity:
    gpus = tuple(Gpu(i, model) for i in range(count))
    return HostCapacity(
        name=name,
        cpus=32,
        memory_mb=256 * 1024,
        gpus=gpus,
        used_gpus=used_gpus,
        accepting=accepting,
    )


def cpu_host(name: str, cpus: float = 16, memory_mb: int = 64 * 1024) -> HostCapacity:
    return HostCapacity(name=name, cpus=cpus, memory_mb=memory_mb)


def gpu_job(
    job_id: int,
    gpus: int = 1,
    model: str = "",
    *,
    replicas: int = 1,
    owner: int = 0,
    team: int | None = None,
    priority: int = 0,
) -> Request:
    return Request(
        job_id,
        cpus=4,
        memory_mb=16 * 1024,
        gpus=gpus,
        gpu_model=model,
        replicas=replicas,
        owner=owner,
        team=team,
        priority=priority,
        machine=f"gpu{gpus}",
    )


def cpu_job(job_id: int, cpus: float = 2, memory_mb: int = 4096) -> Request:
    return Request(job_id, cpus=cpus, memory_mb=memory_mb, machine="cpu")


def on(job_id: int, *replicas: tuple[str, tuple[int, ...]]) -> Placement:
    return Placement(job_id, tuple(ReplicaPlacement(host, gpus) for host, gpus in replicas))


def placed_ids(result_placed: list[Placement]) -> list[int]:
    return [placement.job_id for placement in result_placed]


def test_gpu_jobs_get_exact_free_indices() -> None:
    host = gpu_host("g1", 4, used_gpus=frozenset({0, 2}))

    result = place([host], [gpu_job(1), gpu_job(2)])

    assert result.placed == [on(1, ("g1", (1,))), on(2, ("g1", (3,)))]
    assert result.unplaced == []


def test_a_multi_gpu_job_gets_all_its_gpus_on_one_host() -> None:
    hosts = [gpu_host("g1", 1), gpu_host("g2", 4)]

    result = place(hosts, [gpu_job(1, gpus=3)])

    assert result.placed == [on(1, ("g2", (0, 1, 2)))]


def test_nothing_is_over_committed() -> None:
    host = cpu_host("c1", cpus=8, memory_mb=16 * 1024)
    requests = [cpu_job(i, cpus=3, memory_mb=4096) for i in range(1, 5)]

    result = place([host], requests)

    assert placed_ids(result.placed) == [1, 2]  # a third would need 9 CPUs
    assert [u.job_id for u in result.unplaced] == [3, 4]


def test_gpus_are_never_handed_out_twice() -> None:
    host = gpu_host("g1", 2)

    result = place([host], [gpu_job(i) for i in range(1, 6)])

    given = [index for p in result.placed for r in p.replicas for index in r.gpu_indices]
    assert sorted(given) == [0, 1]
    assert len(result.unplaced) == 3


def test_memory_already_used_counts() -> None:
    host = HostCapacity(name="c1", cpus=16, memory_mb=8192, used_memory_mb=6000)

    result = place([host], [cpu_job(1, memory_mb=4096), cpu_job(2, memory_mb=2048)])

    assert placed_ids(result.placed) == [2]


def test_fractional_cpus_add_up_exactly() -> None:
    host = cpu_host("c1", cpus=0.3)

    result = place([host], [cpu_job(i, cpus=0.1, memory_mb=1) for i in range(1, 5)])

    assert placed_ids(result.placed) == [1, 2, 3]


def test_gpu_model_is_a_case_insensitive_substring() -> None:
    hosts = [gpu_host("t4", 2, model=T4), gpu_host("a100", 2)]

    result = place(hosts, [gpu_job(1, model="a100"), gpu_job(2, model="T4")])

    assert result.placed == [on(1, ("a100", (0,))), on(2, ("t4", (0,)))]


def test_a_host_with_mixed_gpus_gives_only_the_model_asked_for() -> None:
    mixed = HostCapacity(
        name="mixed", cpus=32, memory_mb=256 * 1024, gpus=(Gpu(0, T4), Gpu(1, A100), Gpu(2, T4))
    )

    result = place([mixed], [gpu_job(1, model="A100"), gpu_job(2, model="A100")])

    assert result.placed == [on(1, ("mixed", (1,)))]
    assert result.unplaced[0].fits_nowhere is False


def test_cpu_jobs_go_to_hosts_without_gpus_first() -> None:
    hosts = [gpu_host("g1", 8), cpu_host("c1")]

    result = place(hosts, [cpu_job(1)])

    assert result.placed == [on(1, ("c1", ()))]


def test_cpu_jobs_use_gpu_hosts_when_nothing_else_has_room() -> None:
    hosts = [gpu_host("g1", 8), cpu_host("c1", cpus=2)]

    result = place(hosts, [cpu_job(1, cpus=2), cpu_job(2, cpus=2)])

    assert result.placed == [on(1, ("c1", ())), on(2, ("g1", ()))]


def test_gpu_jobs_fill_the_host_with_fewest_free_gpus() -> None:
    # Leaving g2's four GPUs together keeps room for a 4-GPU job.
    hosts = [gpu_host("g2", 4), gpu_host("g1", 4, used_gpus=frozenset({0, 1, 2}))]

    result = place(hosts, [gpu_job(1), gpu_job(2, gpus=4)])

    assert result.placed == [on(1, ("g1", (3,))), on(2, ("g2", (0, 1, 2, 3)))]


def test_hosts_not_accepting_take_nothing() -> None:
    draining = gpu_host("g1", 4, accepting=False)

    result = place([draining], [gpu_job(1)])

    assert result.placed == []
    assert result.unplaced[0].fits_nowhere is False
    assert "g1" in result.unplaced[0].reason
    assert "take no new work" in result.unplaced[0].reason


def test_a_request_no_host_has_enough_gpus_for_never_fits() -> None:
    hosts = [gpu_host("g1", 1), gpu_host("t4", 4, model=T4), cpu_host("c1")]

    result = place(hosts, [gpu_job(1, gpus=2, model="A100")])

    [unplaced] = result.unplaced
    assert unplaced.fits_nowhere is True
    assert unplaced.reason == "no host has 2 GPUs of model A100; the largest has 1"


def test_a_gpu_request_on_a_cpu_fleet_never_fits() -> None:
    result = place([cpu_host("c1")], [gpu_job(1)])

    assert result.unplaced[0].reason == "no host has a GPU"
    assert result.unplaced[0].fits_nowhere is True


def test_too_many_cpus_or_too_much_memory_never_fits() -> None:
    hosts = [cpu_host("c1", cpus=8, memory_mb=32 * 1024)]

    result = place(hosts, [cpu_job(1, cpus=12), cpu_job(2, memory_mb=64 * 1024)])

    assert [u.reason for u in result.unplaced] == [
        "no host has 12 CPUs; the largest has 8",
        "no host has 64 GB of memory; the largest has 32 GB",
    ]
    assert all(u.fits_nowhere for u in result.unplaced)


def test_needs_met_only_on_different_hosts_never_fit() -> None:
    hosts = [cpu_host("many-cpus", cpus=64, memory_mb=8192), cpu_host("much-memory", cpus=2)]

    result = place(hosts, [cpu_job(1, cpus=32, memory_mb=32 * 1024)])

    assert result.unplaced[0].reason == ("no single host has 32 CPUs and 32 GB of memory together")


def test_a_job_that_fits_when_a_host_frees_up_waits_for_one() -> None:
    host = gpu_host("g1", 1)

    result = place([host], [gpu_job(1), gpu_job(2), gpu_job(3, gpus=9), gpu_job(4, gpus=1)])

    assert placed_ids(result.placed) == [1]
    assert result.unplaced == [
        Unplaced(2, "waiting: no host with gpu1 free", fits_nowhere=False),
        Unplaced(3, "no host has 9 GPUs; the largest has 1", fits_nowhere=True),
        Unplaced(4, "waiting: no host with gpu1 free", fits_nowhere=False),
    ]


def test_a_small_job_passes_a_big_one_that_waits() -> None:
    host = gpu_host("g1", 2, used_gpus=frozenset({0}))

    result = place([host], [gpu_job(1, gpus=2), gpu_job(2)])

    assert result.placed == [on(2, ("g1", (1,)))]
    assert result.unplaced[0].job_id == 1


def test_labels_select_hosts() -> None:
    hosts = [
        HostCapacity(name="eu", cpus=8, memory_mb=8192, labels={"zone": "eu"}),
        HostCapacity(name="us", cpus=8, memory_mb=8192, labels={"zone": "us"}),
    ]
    asks = Request(1, cpus=1, memory_mb=1024, labels={"zone": "us"})
    nowhere = Request(2, cpus=1, memory_mb=1024, labels={"zone": "mars"})

    result = place(hosts, [asks, nowhere])

    assert result.placed == [on(1, ("us", ()))]
    assert result.unplaced[0].reason == "no host has the labels zone=mars"


def test_no_hosts_at_all() -> None:
    result = place([], [cpu_job(1)])

    assert result.unplaced[0].reason == "no host is registered"
    assert result.unplaced[0].fits_nowhere is True


def test_cpu_jobs_fill_the_host_with_fewest_free_cpus_that_holds_them() -> None:
    hosts = [cpu_host("roomy", cpus=16), cpu_host("tight", cpus=3), cpu_host("small", cpus=1)]

    result = place(hosts, [cpu_job(1, cpus=2)])

    assert result.placed == [on(1, ("tight", ()))]


def test_cpu_jobs_count_what_earlier_jobs_of_the_pass_took() -> None:
    hosts = [
        gpu_host("g1", 4),
        HostCapacity("g2", cpus=16, memory_mb=64 * 1024, gpus=(Gpu(0, T4),)),
    ]
    big = Request(2, cpus=20, memory_mb=1024, gpus=1, gpu_model="A100")

    # g1 had the most CPUs free, and has the fewest once job 2 took 20 of them.
    result = place(hosts, [cpu_job(1), big, cpu_job(3)])

    assert result.placed == [on(1, ("g2", ())), on(2, ("g1", (0,))), on(3, ("g1", ()))]


def test_among_hosts_with_as_many_free_gpus_the_first_given_wins() -> None:
    hosts = [gpu_host("g2", 2), gpu_host("g1", 2)]

    result = place(hosts, [gpu_job(1)])

    assert result.placed == [on(1, ("g2", (0,)))]


def test_the_best_fitting_host_is_passed_over_when_its_cpus_are_taken() -> None:
    busy = HostCapacity(
        name="busy", cpus=32, memory_mb=256 * 1024, gpus=(Gpu(0, A100),), used_cpus=30
    )
    hosts = [busy, gpu_host("g4", 4)]

    result = place(hosts, [gpu_job(1)])

    assert result.placed == [on(1, ("g4", (0,)))]


# --- gangs ------------------------------------------------------------------------------------


def test_a_gang_spreads_over_hosts_when_none_holds_it_whole() -> None:
    hosts = [gpu_host("g1", 4), gpu_host("g2", 4)]

    result = place(hosts, [gpu_job(1, gpus=2, replicas=3)])

    assert result.placed == [on(1, ("g1", (0, 1)), ("g1", (2, 3)), ("g2", (0, 1)))]


def test_a_gang_that_does_not_fit_takes_nothing() -> None:
    host = gpu_host("g1", 4, used_gpus=frozenset({0}))

    # One replica of job 1 fits; had it kept its GPUs, job 2 would not.
    result = place([host], [gpu_job(1, gpus=2, replicas=2), gpu_job(2, gpus=3)])

    assert result.placed == [on(2, ("g1", (1, 2, 3)))]
    assert result.unplaced == [
        Unplaced(1, "waiting: no hosts with 2\N{MULTIPLICATION SIGN}gpu2 free", fits_nowhere=False)
    ]


def test_a_gang_larger_than_the_whole_fleet_fits_nowhere() -> None:
    hosts = [gpu_host("g1", 4), gpu_host("g2", 4)]

    result = place(hosts, [gpu_job(1, gpus=4, replicas=3)])

    assert result.unplaced == [
        Unplaced(1, "the hosts can hold at most 2 of its 3 replicas at once", fits_nowhere=True)
    ]


def test_a_gang_that_only_fits_with_a_draining_host_waits_for_it() -> None:
    hosts = [gpu_host("g1", 4), gpu_host("g2", 4, accepting=False)]

    result = place(hosts, [gpu_job(1, gpus=4, replicas=2)])

    reason = "waiting for a host: those that could run it (g2) take no new work now"
    assert result.unplaced == [Unplaced(1, reason, fits_nowhere=False)]


def test_a_job_without_a_machine_type_is_described_by_its_needs() -> None:
    host = gpu_host("g1", 2, used_gpus=frozenset({0, 1}))
    job = Request(1, cpus=8, memory_mb=32 * 1024, gpus=2, gpu_model="A100")

    result = place([host], [job])

    reason = "waiting: no host with 2 A100 GPUs, 8 CPUs, 32 GB of memory free"
    assert result.unplaced == [Unplaced(1, reason, fits_nowhere=False)]


def test_a_job_needs_at_least_one_replica() -> None:
    with pytest.raises(ValueError, match="replica"):
        gpu_job(1, replicas=0)


# --- quotas -----------------------------------------------------------------------------------


def test_a_job_beyond_its_users_gpu_quota_waits_while_a_smaller_one_runs() -> None:
    policy = Policy(user_limits={1: Limits(max_gpus=4)}, user_usage={1: Usage(gpus=2, jobs=1)})
    requests = [gpu_job(1, gpus=4, owner=1), gpu_job(2, gpus=2, owner=1)]

    result = place([gpu_host("g1", 8)], requests, policy)

    assert placed_ids(result.placed) == [2]
    # The numbers are what the user holds after the pass, job 2 included.
    assert result.unplaced == [
        Unplaced(1, "waiting: quota 4/4 GPUs", fits_nowhere=False, quota=True)
    ]


def test_a_job_bigger_than_its_quota_says_waiting_will_not_help() -> None:
    policy = Policy(team_limits={7: Limits(max_gpus=4)})

    result = place([gpu_host("g1", 8)], [gpu_job(1, gpus=8, owner=1, team=7)], policy)

    assert result.placed == []
    reason = (
        "waiting: it needs 8 GPUs and the team quota allows 4 at once; ask a site admin to raise it"
    )
    assert result.unplaced == [Unplaced(1, reason, fits_nowhere=False, quota=True)]


def test_a_job_beyond_its_users_job_quota_waits() -> None:
    policy = Policy(user_limits={1: Limits(max_jobs=2)}, user_usage={1: Usage(jobs=1)})

    result = place([gpu_host("g1", 8)], [gpu_job(1, owner=1), gpu_job(2, owner=1)], policy)

    assert placed_ids(result.placed) == [1]
    assert result.unplaced == [
        Unplaced(2, "waiting: quota 2/2 jobs", fits_nowhere=False, quota=True)
    ]


def test_a_team_quota_counts_all_its_members_jobs() -> None:
    policy = Policy(team_limits={7: Limits(max_gpus=8)}, team_usage={7: Usage(gpus=6, jobs=3)})
    requests = [gpu_job(1, gpus=4, owner=1, team=7), gpu_job(2, gpus=2, owner=2, team=7)]

    result = place([gpu_host("g1", 8)], requests, policy)

    assert placed_ids(result.placed) == [2]
    assert result.unplaced == [
        Unplaced(1, "waiting: team quota 8/8 GPUs", fits_nowhere=False, quota=True)
    ]


def test_a_team_job_quota_leaves_other_teams_alone() -> None:
    policy = Policy(team_limits={7: Limits(max_jobs=1)})
    requests = [gpu_job(1, team=7), gpu_job(2, team=7), gpu_job(3, team=8), gpu_job(4)]

    result = place([gpu_host("g1", 8)], requests, policy)

    assert placed_ids(result.placed) == [1, 3, 4]
    assert result.unplaced == [
        Unplaced(2, "waiting: team quota 1/1 jobs", fits_nowhere=False, quota=True)
    ]


def test_a_gang_counts_all_its_gpus_but_as_one_job() -> None:
    policy = Policy(user_limits={1: Limits(max_gpus=4, max_jobs=1)})
    requests = [gpu_job(1, gpus=2, replicas=2, owner=1), gpu_job(2, owner=1)]

    result = place([gpu_host("g1", 8)], requests, policy)

    assert placed_ids(result.placed) == [1]
    assert result.unplaced == [
        Unplaced(2, "waiting: quota 4/4 GPUs", fits_nowhere=False, quota=True)
    ]


def test_a_cpu_job_runs_when_its_user_has_all_the_gpus_allowed() -> None:
    policy = Policy(user_limits={1: Limits(max_gpus=4)}, user_usage={1: Usage(gpus=4)})
    job = Request(1, cpus=1, memory_mb=1024, owner=1)

    result = place([cpu_host("c1")], [job], policy)

    assert placed_ids(result.placed) == [1]


def test_a_job_no_host_could_run_says_so_rather_than_quota() -> None:
    policy = Policy(user_limits={1: Limits(max_gpus=0)})

    result = place([gpu_host("g1", 1)], [gpu_job(1, gpus=2, owner=1)], policy)

    assert result.unplaced[0].fits_nowhere is True
    assert result.unplaced[0].quota is False


# --- order and fair share ---------------------------------------------------------------------


def test_users_take_turns_whoever_submitted_first() -> None:
    requests = [gpu_job(i, owner=1) for i in (1, 2, 3)] + [gpu_job(i, owner=2) for i in (4, 5, 6)]

    result = place([gpu_host("g1", 4)], requests)

    assert placed_ids(result.placed) == [1, 4, 2, 5]
    assert [u.job_id for u in result.unplaced] == [3, 6]


def test_the_user_holding_less_goes_first() -> None:
    policy = Policy(user_usage={1: Usage(gpus=4, jobs=4)})

    result = place([gpu_host("g1", 1)], [gpu_job(1, owner=1), gpu_job(2, owner=2)], policy)

    assert placed_ids(result.placed) == [2]


def test_a_user_with_twice_the_share_gets_twice_the_gpus() -> None:
    policy = Policy(shares={1: 2.0})
    requests = [gpu_job(i, owner=1) for i in range(1, 7)] + [
        gpu_job(i, owner=2) for i in range(7, 13)
    ]

    result = place([gpu_host("g1", 6)], requests, policy)

    owners = [requests[p.job_id - 1].owner for p in result.placed]
    assert owners.count(1) == 4
    assert owners.count(2) == 2


def test_higher_priority_goes_first_across_users() -> None:
    requests = [gpu_job(1, owner=1), gpu_job(2, owner=2, priority=5)]

    result = place([gpu_host("g1", 1)], requests)

    assert placed_ids(result.placed) == [2]


def test_within_one_user_higher_priority_then_older_goes_first() -> None:
    requests = [gpu_job(1), gpu_job(2, priority=1), gpu_job(3, priority=1), gpu_job(4)]

    result = place([gpu_host("g1", 2)], requests)

    assert placed_ids(result.placed) == [2, 3]
    # The queue as its users see it: the order the pass considered the jobs in.
    assert [u.job_id for u in result.unplaced] == [1, 4]
