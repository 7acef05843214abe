"""Bindings between steps and their run order."""

from __future__ import annotations

from typing import TYPE_CHECKING

from plant2edge.local.errors import PipelineSpecError
from plant2edge.local.values import ParentBinding, StepOutput

if TYPE_CHECKING:
    from plant2edge.local.spec import StepSpec


def check_bindings(steps: dict[str, StepSpec], pipeline_inputs: dict) -> None:
    for step in steps.values():
        for key, value in step.inputs.items():
            where = f"Step {step.name!r} input {key!r}"
            if isinstance(value, ParentBinding):
                if value.kind != "inputs":
                    raise PipelineSpecError(
                        f"{where} is bound to {value.text!r}: an input can bind to "
                        "${{parent.inputs.<name>}} or "
                        "${{parent.jobs.<step>.outputs.<name>}}."
                    )
                if value.name not in pipeline_inputs:
                    raise PipelineSpecError(
                        f"{where} is bound to {value.text!r}, but the pipeline has no "
                        f"input {value.name!r}. Pipeline inputs: "
                        f"{', '.join(pipeline_inputs) or 'none'}."
                    )
            elif isinstance(value, StepOutput):
                _check_step_output_binding(where, value, step.name, steps)


def _check_step_output_binding(where, value: StepOutput, own, steps) -> None:
    if value.step == own:
        raise PipelineSpecError(f"{where} is bound to its own step's output.")
    if value.step not in steps:
        raise PipelineSpecError(
            f"{where} is bound to {value.text!r}, but the pipeline has no step "
            f"{value.step!r}. Steps: {', '.join(steps)}."
        )
    declared = steps[value.step].component.outputs
    if value.name not in declared:
        raise PipelineSpecError(
            f"{where} is bound to {value.text!r}, but step {value.step!r} has no "
            f"output {value.name!r}. Its outputs: {', '.join(declared) or 'none'}."
        )


def order_steps(steps: dict[str, StepSpec]) -> list[str]:
    """Return the step names in run order: dependencies first, else YAML order.

    Raises PipelineSpecError naming the steps of a cycle.
    """
    _raise_on_cycle(steps)
    done: list[str] = []
    while len(done) < len(steps):
        ready = next(
            name
            for name, step in steps.items()
            if name not in done and step.upstream() <= set(done)
        )
        done.append(ready)
    return done


def _raise_on_cycle(steps: dict[str, StepSpec]) -> None:
    state: dict[str, str] = {}  # name -> "visiting" | "done"

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "visiting"
        for upstream in sorted(steps[name].upstream()):
            if state.get(upstream) == "visiting":
                cycle = trail[trail.index(upstream) :] + [upstream]
                raise PipelineSpecError(
                    "The steps form a cycle: "
                    + " -> ".join(reversed(cycle))
                    + ". Remove one of these bindings."
                )
            if upstream not in state:
                visit(upstream, trail + [upstream])
        state[name] = "done"

    for name in steps:
        if name not in state:
            visit(name, [name])
