"""Remote source settings are refused with one message naming the key, before any data is touched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from finrecon.models.config import ConfigError, GcpBigQuerySource, parse_config

ERP = {"kind": "files", "po_headers": "po_headers.csv"}


def _config(tmp_path: Path, source: dict[str, Any]) -> Any:
    (tmp_path / "po_headers.csv").write_text("po_number\n", encoding="utf-8")
    return parse_config({"sources": [source], "erp": ERP}, tmp_path, "test.toml")


GCP = {"kind": "gcp_bigquery", "project": "p", "dataset": "billing"}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (GCP, "set exactly one of `table` and `billing_account_id`"),
        (GCP | {"table": "t", "billing_account_id": "01-02-03"}, "set exactly one of"),
        (
            GCP | {"billing_account_id": "01", "export_type": "focus", "push_down": True},
            "`push_down` aggregates",
        ),
        ({"kind": "azure_query", "scope": "subscriptions/1", "tag_keys": ["po", "team"]}, "tag_keys"),
        ({"kind": "aws_cur", "export_type": "cur3", "bucket": "bkt", "export_name": "e"}, "export_type"),
        ({"kind": "azure_export", "container": "c", "export_name": "e"}, "container"),
    ],
)
def test_bad_remote_source_settings_are_refused_naming_the_key(
    tmp_path: Path, source: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        _config(tmp_path, source)
    assert str(raised.value).startswith("test.toml: sources.0")


@pytest.mark.parametrize(
    ("settings", "table_id"),
    [
        (
            {"billing_account_id": "010101-ABCDEF-123456"},
            "p.billing.gcp_billing_export_v1_010101_ABCDEF_123456",
        ),
        (
            {"billing_account_id": "01-02", "export_type": "detailed"},
            "p.billing.gcp_billing_export_resource_v1_01_02",
        ),
        ({"billing_account_id": "01-02", "export_type": "focus"}, "p.billing.gcp_billing_export_focus_01_02"),
        ({"table": "my_view", "dataset": "other-project.exports"}, "other-project.exports.my_view"),
    ],
)
def test_gcp_table_id_follows_googles_export_names(
    tmp_path: Path, settings: dict[str, Any], table_id: str
) -> None:
    source = _config(tmp_path, GCP | settings).sources[0]
    assert isinstance(source, GcpBigQuerySource)
    assert source.table_id == table_id


def test_aws_and_azure_locations_name_where_the_export_lives(tmp_path: Path) -> None:
    aws = {"kind": "aws_cur", "export_type": "cur2", "bucket": "bkt", "prefix": "/a/b/", "export_name": "e"}
    assert _config(tmp_path, aws).sources[0].location == "s3://bkt/a/b/e"
    azure = {"kind": "azure_export", "container": "costs", "root_folder_path": "/x/", "export_name": "daily"}
    assert _config(tmp_path, azure).sources[0].location == "azure://costs/x/daily"
    query = {"kind": "azure_query", "scope": "/subscriptions/1/"}
    assert _config(tmp_path, query).sources[0].scope == "subscriptions/1"
