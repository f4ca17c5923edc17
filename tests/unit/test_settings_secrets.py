"""Secrets and tokens in the settings (streams/settings.py) are SecretStr: never in a repr, a log line or a
validation error, and still handed over whole to a child process (streams/stack.settings_env)."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from streams.local.stack import settings_env
from streams.settings import Settings

SECRETS = {
    "x_consumer_secret": "x-secret-1,x-secret-old",
    "meta_app_secret": "meta-secret-1",
    "meta_verify_token": "verify-1",
    "events_token": "events-1",
    "admin_token": "admin-1",
}


def test_secrets_never_show_in_repr_str_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(**SECRETS)
    with caplog.at_level(logging.INFO):
        logging.getLogger("rapport.test").info("settings: %s / %r", settings, settings)
    shown = repr(settings) + str(settings) + caplog.text + str(settings.model_dump())
    for value in SECRETS.values():
        for part in value.split(","):
            assert part not in shown


def test_secret_lists_and_the_child_process_hand_over() -> None:
    settings = Settings(**SECRETS)
    assert settings.secret_list("x_consumer_secret") == ["x-secret-1", "x-secret-old"]
    env = settings_env(settings)
    for name, value in SECRETS.items():
        assert env[f"RAPPORT_{name.upper()}"] == value
    assert Settings(**{k.removeprefix("RAPPORT_").lower(): v for k, v in env.items()}).secret_list("admin_token") == [
        "admin-1"
    ]


def test_a_bad_setting_error_does_not_echo_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAPPORT_EVENTS_TOKEN", "events-super-secret")
    monkeypatch.setenv("RAPPORT_WEB_PORT", "not-a-port")
    with pytest.raises(ValidationError) as error:
        Settings()
    assert "events-super-secret" not in str(error.value)
