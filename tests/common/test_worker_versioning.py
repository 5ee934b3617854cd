"""Worker Versioning's settings: which build a worker polls as, and how each workflow moves."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion

from cli.devstack import child_env, dev_build_id
from common.settings import Settings
from worker.versioning import deployment_config, deployment_version, running_on
from workflows.approval import ApprovalWorkflow
from workflows.delivery import DeliverNoticesWorkflow
from workflows.reconcile import ReconcileWorkflow


def test_off_by_default_so_every_worker_takes_every_task() -> None:
    settings = Settings()
    assert deployment_version(settings) is None and deployment_config(None) is None


def test_on_the_worker_polls_as_the_deployment_version_of_its_build() -> None:
    settings = Settings(
        APPROVALS_WORKER_VERSIONING=True,
        APPROVALS_DEPLOYMENT_NAME="approvals",
        APPROVALS_BUILD_ID="2026.12.07-1",
    )
    version = deployment_version(settings)
    assert version is not None
    config = deployment_config(version)
    assert config is not None and config.use_worker_versioning
    assert (config.version.deployment_name, config.version.build_id) == (
        "approvals",
        "2026.12.07-1",
    )
    assert config.default_versioning_behavior == VersioningBehavior.PINNED
    assert running_on(version) == (
        'TemporalWorkerDeploymentVersion = "approvals:2026.12.07-1" AND ExecutionStatus = "Running"'
    )


def test_versioning_without_a_build_id_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="APPROVALS_BUILD_ID must be set"):
        Settings(APPROVALS_WORKER_VERSIONING=True)


@pytest.mark.parametrize("build_id", ["a b", 'x"y', "with/slash"])
def test_a_build_id_that_would_break_the_visibility_query_is_refused(build_id: str) -> None:
    with pytest.raises(ValidationError):
        Settings(APPROVALS_WORKER_VERSIONING=True, APPROVALS_BUILD_ID=build_id)


def test_every_workflow_is_pinned_by_the_worker_and_declares_nothing_itself() -> None:
    config = deployment_config(WorkerDeploymentVersion(deployment_name="a", build_id="1"))
    assert config is not None

    def behavior(cls: type) -> VersioningBehavior | None:
        declared = workflow._Definition.must_from_class(cls).versioning_behavior
        return declared or config.default_versioning_behavior

    assert behavior(ApprovalWorkflow) == VersioningBehavior.PINNED
    # Not in its decorator: an unversioned worker would send it, and be refused.
    assert not workflow._Definition.must_from_class(ApprovalWorkflow).versioning_behavior
    assert behavior(DeliverNoticesWorkflow) == VersioningBehavior.PINNED
    assert behavior(ReconcileWorkflow) == VersioningBehavior.PINNED
    for cls in (DeliverNoticesWorkflow, ReconcileWorkflow):
        assert not workflow._Definition.must_from_class(cls).versioning_behavior


def test_make_dev_runs_one_build_that_it_makes_current(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "APPROVALS_WORKER_VERSIONING",
        "APPROVALS_BUILD_ID",
        "APPROVALS_DEPLOYMENT_PROMOTE",
    ):
        monkeypatch.delenv(name, raising=False)
    env = child_env(Settings(), "postgresql+asyncpg://x/y")
    assert env["APPROVALS_WORKER_VERSIONING"] == "true"
    assert env["APPROVALS_DEPLOYMENT_PROMOTE"] == "true"
    # The package's version, not the commit: a request started before a commit still
    # finds its build's worker after `make dev` restarts.
    assert env["APPROVALS_BUILD_ID"] == dev_build_id() and dev_build_id().startswith("dev")
    built = Settings.model_validate({k: v for k, v in env.items() if k.startswith("APPROVALS_")})
    assert deployment_version(built) is not None


def test_make_dev_keeps_what_the_environment_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPROVALS_WORKER_VERSIONING", "false")
    env = child_env(Settings(), "postgresql+asyncpg://x/y")
    assert env["APPROVALS_WORKER_VERSIONING"] == "false"
