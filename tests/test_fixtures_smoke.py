from sqlalchemy import text


async def test_database_is_migrated(db_sessions):
    async with db_sessions() as s:
        assert (await s.execute(text("select count(*) from requests"))).scalar_one() == 0


async def test_local_temporal_has_search_attributes(temporal_local):
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    resp = await temporal_local.client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="default")
    )
    assert "CurrentApprovers" in resp.custom_attributes
