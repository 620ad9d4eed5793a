"""HostRequest validation and the first-boot scripts, without Pulumi."""

from __future__ import annotations

import json
import logging

import pytest
import yaml

from mapt.core import InputError, redact
from mapt.targets.aws import HostRequest
from mapt.targets.aws._userdata import cloud_config, cloud_init_document, windows_userdata

KEY = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 mapt"


def test_defaults_per_os() -> None:
    rhel, fedora, windows = HostRequest("rhel"), HostRequest("fedora"), HostRequest("windows")
    assert (rhel.resolved_version, rhel.username, rhel.ports) == ("9.4", "ec2-user", (22,))
    assert (fedora.resolved_version, fedora.username) == ("41", "fedora")
    assert (windows.resolved_version, windows.username, windows.ports) == (
        None,
        "ec2-user",
        (22, 3389),
    )
    assert rhel.disk_size == 200
    assert windows.image.name == "Windows_Server-2022-English-Full-Base-*"
    assert windows.image.owner == "amazon"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"os": "ubuntu"}, "operating system 'ubuntu'"),
        ({"os": "rhel", "version": "9.4*"}, "rhel version '9.4\\*'"),
        ({"os": "rhel", "version": "9;rm"}, "digits and dots only"),
        ({"os": "fedora", "version": "41.1"}, "fedora version '41.1'"),
        # ASCII digits only: "\d" and int() take any script's.
        ({"os": "fedora", "version": "٤"}, "fedora version '٤'"),
        ({"os": "rhel", "version": "9.٤"}, "rhel version '9.٤'"),
        ({"os": "windows", "version": "2022"}, "--version '2022' does not apply to windows"),
        ({"os": "rhel", "arch": "aarch64"}, "architecture 'aarch64'"),
        ({"os": "windows", "arch": "arm64"}, "x86_64 only"),
        ({"os": "windows", "airgap": True}, "--airgap is not supported for windows"),
        ({"os": "rhel", "disk_size": 5}, "disk size 5 GiB"),
        ({"os": "windows", "disk_size": 20}, "disk size 20 GiB is out of range for windows"),
        ({"os": "rhel", "disk_size": 20000}, "disk size 20000"),
        ({"os": "rhel", "service_endpoints": ("dynamodb",)}, "service endpoint 'dynamodb'"),
        ({"os": "rhel", "service_endpoints": ("s3", "s3")}, "repeat"),
        ({"os": "rhel", "ami_name": "my-image"}, "--ami-name 'my-image' applies to windows"),
        ({"os": "windows", "ami_name": "bad;name"}, "AMI name 'bad;name'"),
        ({"os": "windows", "ami_owner": "1234"}, "AMI owner '1234'"),
        ({"os": "windows", "ami_owner": "٤" * 12}, "AMI owner '٤٤٤"),
        ({"os": "windows", "ami_username": "o'neil"}, "AMI user name"),
        ({"os": "fedora", "rh_subscription_username": "u"}, "apply to rhel, not fedora"),
        ({"os": "rhel", "rh_subscription_username": "u"}, "needs both"),
    ],
)
def test_invalid_requests_name_the_value(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        HostRequest(**kwargs)  # type: ignore[arg-type]


def test_subscription_password_is_redacted_and_kept_out_of_repr(
    caplog: pytest.LogCaptureFixture,
) -> None:
    request = HostRequest(
        "rhel", rh_subscription_username="me", rh_subscription_password="Very-Secret-42"
    )
    assert "Very-Secret-42" not in repr(request)
    assert redact("login with Very-Secret-42") == "login with ***"


def test_cloud_config_is_valid_json_yaml_and_holds_no_subscription() -> None:
    request = HostRequest(
        "rhel",
        rh_subscription_username='odd "user": x',
        rh_subscription_password="p@ss: {word}#",
    )
    text = cloud_config(request)
    header, body = text.split("\n", 1)
    assert header == "#cloud-config"
    config = json.loads(body)
    assert yaml.safe_load(text) == config  # cloud-init reads it as YAML
    # Registered over SSH once the host is up: neither name nor password is in user data.
    assert "rh_subscription" not in config
    assert "p@ss" not in text and "odd" not in text
    assert config["packages"] == ["podman"]
    assert config["growpart"] == {"mode": "auto", "devices": ["/"]}
    # The machine says what it still waits for until mapt delivers it.
    (marker,) = config["write_files"]
    assert marker == {
        "path": "/var/lib/mapt/awaiting-secrets",
        "permissions": "0644",
        "content": "rh-subscription\n",
    }
    assert text.endswith("\n")
    assert "write_files" not in json.loads(cloud_config(HostRequest("rhel")).split("\n", 1)[1])
    with pytest.raises(InputError):
        cloud_config(HostRequest("windows"))


@pytest.mark.parametrize("value", ["Pässwörd", "密码-🔑-x", 'q"uote\\ and: {yaml}', "tab\tend"])
def test_every_value_survives_the_yaml_round_trip_cloud_init_makes(value: str) -> None:
    config = {"write_files": [{"path": "/etc/x", "content": value}], value: [value]}
    document = cloud_init_document(config)
    assert document.startswith("#cloud-config\n")
    assert yaml.safe_load(document) == config == json.loads(document.split("\n", 1)[1])


def test_escaped_json_would_not_survive_it() -> None:
    """Why ensure_ascii=False: YAML reads JSON's surrogate-pair escapes as two characters."""
    escaped = json.dumps({"password": "🔑"})  # ensure_ascii=True, the old spelling
    assert yaml.safe_load(escaped)["password"] != "🔑"
    assert yaml.safe_load(cloud_init_document({"password": "🔑"}))["password"] == "🔑"


def test_a_subscription_password_with_a_line_break_is_refused_without_showing_it() -> None:
    with pytest.raises(InputError, match="line break") as caught:
        HostRequest("rhel", rh_subscription_username="me", rh_subscription_password="ab\ncd")
    assert "ab\ncd" not in str(caught.value)


def test_windows_userdata_refuses_unsafe_values() -> None:
    request = HostRequest("windows")
    script = windows_userdata(request, public_key=KEY + "\n")
    assert f"WriteAllText($keys, '{KEY}'" in script
    assert "Add-WindowsCapability" in script
    assert "Set-Service -Name sshd -StartupType Automatic" in script
    # No password is set from user data: the account gets one made on the machine.
    assert "RandomNumberGenerator" in script and "Set-LocalUser" not in script
    assert "awaiting-secrets" in script and '"windows-password`n"' in script
    with pytest.raises(InputError, match="public key"):
        windows_userdata(request, public_key="ssh-rsa AAA' ; evil")
    with pytest.raises(InputError):
        windows_userdata(HostRequest("rhel"), public_key=KEY)


def test_request_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="mapt"):
        HostRequest("rhel", rh_subscription_username="me", rh_subscription_password="x-secret-1")
    assert "x-secret-1" not in caplog.text
