"""Request bodies of the /v1/ API (pydantic: they validate the JSON and make the OpenAPI schema).

Coordinates as in ``waveseg.volume``: voxel (i, j, k) = (column, row, slice) of the (Z, Y, X)
volume; slice-local points and boxes are (x, y) pixels of the slice across ``axis``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Axis = Annotated[int, Field(ge=0, le=2, description="0 axial, 1 coronal, 2 sagittal")]
Revision = Annotated[int | None, Field(ge=0, description="the session revision the client has seen; a stale one is refused (409)")]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArrayHeader(Strict):
    dtype: str
    shape: list[int]
    codec: str


class SessionSpec(Strict):
    """Sent as JSON in the ``X-WaveSeg-Spec`` header of ``POST /v1/sessions`` (the body is the volume)."""

    model: str | None = None
    profile: str | None = None
    spacing: Annotated[list[Finite], Field(min_length=3, max_length=3)] = [1.0, 1.0, 1.0]
    window: Annotated[list[Finite], Field(min_length=2, max_length=2)] | None = None
    array: ArrayHeader


class Action(Strict):
    revision: Revision = None


class SliceAction(Action):
    axis: Axis = 0
    index: Annotated[int, Field(ge=0)]


class SegmentSlice(SliceAction):
    box: Annotated[list[Finite], Field(min_length=4, max_length=4)] | None = None
    points: list[Annotated[list[Finite], Field(min_length=2, max_length=2)]] | None = Field(None, max_length=1000)
    labels: list[Annotated[int, Field(ge=0, le=1)]] | None = Field(None, max_length=1000)


class Click(Action):
    ijk: Annotated[list[Finite], Field(min_length=3, max_length=3)]
    positive: bool = True
    axis: Axis = 0
    repropagate: bool = True


class Box3d(Action):
    corner0: Annotated[list[Finite], Field(min_length=3, max_length=3)]
    corner1: Annotated[list[Finite], Field(min_length=3, max_length=3)]
    axis: Axis = 0


class Adaptation(Strict):
    """Adapt the session's model to the structure its mask holds, from its annotated slices."""

    session: str
    name: Annotated[str, Field(description="profile name: 1-64 letters, digits, '_' or '-'")]
    structure: str = "structure"
    method: str = "decoder"
    axis: Axis = 0
    steps: Annotated[int, Field(ge=1, le=5000)] = 400
    time_budget_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
