"""Placement rules, on capacities and requests alone (no database)."""

from fleet.placement import Gpu, HostCapacity, Placement, Request, place

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


def gpu_job(job_id: int, gpus: int = 1, model: str = "") -> Request:
    return Request(job_id, cpus=4, memory_mb=16 * 1024, gpus=gpus, gpu_model=model)


def cpu_job(job_id: int, cpus: float = 2, memory_mb: int = 4096) -> Request:
    return Request(job_id, cpus=cpus, memory_mb=memory_mb)


def test_gpu_jobs_get_exact_free_indices() -> None:
    host = gpu_host("g1", 4, used_gpus=frozenset({0, 2}))

    result = place([host], [gpu_job(1), gpu_job(2)])

    assert result.placed == [Placement(1, "g1", (1,)), Placement(2, "g1", (3,))]
    assert result.unplaced == []


def test_a_multi_gpu_job_gets_all_its_gpus_on_one_host() -> None:
    hosts = [gpu_host("g1", 1), gpu_host("g2", 4)]

    result = place(hosts, [gpu_job(1, gpus=3)])

    assert result.placed == [Placement(1, "g2", (0, 1, 2))]


def test_nothing_is_over_committed() -> None:
    host = cpu_host("c1", cpus=8, memory_mb=16 * 1024)
    requests = [cpu_job(i, cpus=3, memory_mb=4096) for i in range(1, 5)]

    result = place([host], requests)

    assert [p.job_id for p in result.placed] == [1, 2]  # a third would need 9 CPUs
    assert [u.job_id for u in result.unplaced] == [3, 4]


def test_gpus_are_never_handed_out_twice() -> None:
    host = gpu_host("g1", 2)

    result = place([host], [gpu_job(i) for i in range(1, 6)])

    given = [index for p in result.placed for index in p.gpu_indices]
    assert sorted(given) == [0, 1]
    assert len(result.unplaced) == 3


def test_memory_already_used_counts() -> None:
    host = HostCapacity(name="c1", cpus=16, memory_mb=8192, used_memory_mb=6000)

    result = place([host], [cpu_job(1, memory_mb=4096), cpu_job(2, memory_mb=2048)])

    assert [p.job_id for p in result.placed] == [2]


def test_fractional_cpus_add_up_exactly() -> None:
    host = cpu_host("c1", cpus=0.3)

    result = place([host], [cpu_job(i, cpus=0.1, memory_mb=1) for i in range(1, 5)])

    assert [p.job_id for p in result.placed] == [1, 2, 3]


def test_gpu_model_is_a_case_insensitive_substring() -> None:
    hosts = [gpu_host("t4", 2, model=T4), gpu_host("a100", 2)]

    result = place(hosts, [gpu_job(1, model="a100"), gpu_job(2, model="T4")])

    assert result.placed == [Placement(1, "a100", (0,)), Placement(2, "t4", (0,))]


def test_a_host_with_mixed_gpus_gives_only_the_model_asked_for() -> None:
    mixed = HostCapacity(
        name="mixed", cpus=32, memory_mb=256 * 1024, gpus=(Gpu(0, T4), Gpu(1, A100), Gpu(2, T4))
    )

    result = place([mixed], [gpu_job(1, model="A100"), gpu_job(2, model="A100")])

    assert result.placed == [Placement(1, "mixed", (1,))]
    assert result.unplaced[0].fits_nowhere is False


def test_cpu_jobs_go_to_hosts_without_gpus_first() -> None:
    hosts = [gpu_host("g1", 8), cpu_host("c1")]

    result = place(hosts, [cpu_job(1)])

    assert result.placed == [Placement(1, "c1", ())]


def test_cpu_jobs_use_gpu_hosts_when_nothing_else_has_room() -> None:
    hosts = [gpu_host("g1", 8), cpu_host("c1", cpus=2)]

    result = place(hosts, [cpu_job(1, cpus=2), cpu_job(2, cpus=2)])

    assert result.placed == [Placement(1, "c1", ()), Placement(2, "g1", ())]


def test_gpu_jobs_fill_the_host_with_fewest_free_gpus() -> None:
    # Leaving g2's four GPUs together keeps room for a 4-GPU job.
    hosts = [gpu_host("g2", 4), gpu_host("g1", 4, used_gpus=frozenset({0, 1, 2}))]

    result = place(hosts, [gpu_job(1), gpu_job(2, gpus=4)])

    assert result.placed == [Placement(1, "g1", (3,)), Placement(2, "g2", (0, 1, 2, 3))]


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


def test_a_job_that_fits_when_a_host_frees_up_waits_behind_others() -> None:
    host = gpu_host("g1", 1)

    result = place([host], [gpu_job(1), gpu_job(2), gpu_job(3, gpus=9), gpu_job(4)])

    assert [p.job_id for p in result.placed] == [1]
    reasons = {u.job_id: u for u in result.unplaced}
    assert reasons[2].reason == "waiting for capacity: all hosts that fit it are busy"
    assert reasons[3].fits_nowhere is True
    # Job 3 fits nowhere, so it is not counted as waiting ahead of job 4.
    assert reasons[4].reason == (
        "waiting for capacity: all hosts that fit it are busy; 1 job ahead of it"
    )
    assert reasons[4].fits_nowhere is False


def test_a_small_job_passes_a_big_one_that_waits() -> None:
    host = gpu_host("g1", 2, used_gpus=frozenset({0}))

    result = place([host], [gpu_job(1, gpus=2), gpu_job(2)])

    assert result.placed == [Placement(2, "g1", (1,))]
    assert result.unplaced[0].job_id == 1


def test_labels_select_hosts() -> None:
    hosts = [
        HostCapacity(name="eu", cpus=8, memory_mb=8192, labels={"zone": "eu"}),
        HostCapacity(name="us", cpus=8, memory_mb=8192, labels={"zone": "us"}),
    ]
    asks = Request(1, cpus=1, memory_mb=1024, labels={"zone": "us"})
    nowhere = Request(2, cpus=1, memory_mb=1024, labels={"zone": "mars"})

    result = place(hosts, [asks, nowhere])

    assert result.placed == [Placement(1, "us", ())]
    assert result.unplaced[0].reason == "no host has the labels zone=mars"


def test_no_hosts_at_all() -> None:
    result = place([], [cpu_job(1)])

    assert result.unplaced[0].reason == "no host is registered"
    assert result.unplaced[0].fits_nowhere is True
