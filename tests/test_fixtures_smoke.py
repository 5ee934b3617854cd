from sqlalchemy import text


async def test_database_is_migrated(db_sessions):
    # The shared database fills up as other tests run: check the revision, not emptiness.
    from alembic.script import ScriptDirectory

    from db.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    async with db_sessions() as s:
        version = (await s.execute(text("select version_num from alembic_version"))).scalar_one()
    assert head is not None and version == head


async def test_local_temporal_has_search_attributes(temporal_local):
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    resp = await temporal_local.client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="default")
    )
    assert "CurrentApprovers" in resp.custom_attributes
