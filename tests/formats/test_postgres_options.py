"""Session settings through libpq's ``options``: what we render, as the server reads it back."""

from __future__ import annotations

from tests.support.pg_session import session_settings, sqlx_startup_options
from upstream_formats.postgres_options import startup_options


def test_settings_survive_the_servers_split_including_spaces_and_backslashes():
    settings = {"statement_timeout": "60s", "search_path": "a b", "application_name": "x\\y"}
    assert session_settings(startup_options(settings)) == settings


def test_sqlx_reads_options_and_bracket_parameters_like_its_own_test():
    # sqlx-postgres 0.8.6 options/parse.rs, it_parses_sqlx_options_correctly
    url = "postgres:///?options[synchronous_commit]=off&options[search_path]=postgres"
    assert sqlx_startup_options(url) == "-c synchronous_commit=off -c search_path=postgres"
    encoded = "postgresql://u@h/d?sslmode=require&options=-c%20statement_timeout%3D60s"
    assert session_settings(sqlx_startup_options(encoded)) == {"statement_timeout": "60s"}
