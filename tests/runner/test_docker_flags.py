"""Device flags for containers (pure; no daemon needed)."""

from ixci.runtimes.docker import gpu_flags


def test_single_nvidia_gpu_is_a_plain_device_request() -> None:
    assert gpu_flags("docker", "nvidia", (3,)) == ["--gpus", "device=3"]


def test_several_nvidia_gpus_are_quoted_inside_the_value() -> None:
    # docker splits --gpus on commas unless the device list is quoted in the value
    assert gpu_flags("docker", "nvidia", (0, 1)) == ["--gpus", '"device=0,1"']


def test_podman_uses_cdi_devices() -> None:
    assert gpu_flags("podman", "nvidia", (0, 1)) == [
        "--device",
        "nvidia.com/gpu=0",
        "--device",
        "nvidia.com/gpu=1",
    ]


def test_no_devices_no_flags() -> None:
    assert gpu_flags("docker", "cpu", ()) == []
