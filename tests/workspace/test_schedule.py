"""pipelines/schedules/retrain.yaml loads as an Azure ML schedule of the training job."""

from __future__ import annotations

from azure.ai.ml.entities import CronTrigger, PipelineJob
from azure.ai.ml.entities._load_functions import load_schedule

from plant2edge.validate_sdk import quiet_sdk


def test_retrain_schedule_runs_training_weekly(repo_root):
    with quiet_sdk():
        schedule = load_schedule(repo_root / "pipelines" / "schedules" / "retrain.yaml")
        result = schedule._validate()

    assert result.passed, result.error_messages
    assert schedule.name == "plant2edge-retrain-weekly"
    assert isinstance(schedule.trigger, CronTrigger)
    assert schedule.trigger.expression == "0 3 * * 1"
    assert schedule.trigger.time_zone == "UTC"
    assert isinstance(schedule.create_job, PipelineJob)
    assert set(schedule.create_job.jobs) == {"train", "evaluate", "register"}


def test_retrain_schedule_rest_body_embeds_training_job(repo_root):
    with quiet_sdk():
        schedule = load_schedule(repo_root / "pipelines" / "schedules" / "retrain.yaml")
        body = schedule._to_rest_object().as_dict()

    action = body["properties"]["action"]
    assert action["actionType"] == "CreateJob"
    assert action["jobDefinition"]["displayName"] == "Train the state identifier"
    assert action["jobDefinition"]["jobType"] == "Pipeline"
    assert body["properties"]["trigger"] == {
        "triggerType": "Cron",
        "expression": "0 3 * * 1",
        "timeZone": "UTC",
    }
