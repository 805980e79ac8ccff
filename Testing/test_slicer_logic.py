"""The Slicer module's Logic against real MRML (PyPI slicer-core: scene, volume and segmentation
nodes, storage nodes) without the GUI: geometry, masks in segments, .seg.nrrd, prompts in RAS."""

from __future__ import annotations

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is part of the test extra")
vtk = pytest.importorskip("vtk")

from WaveSegSlicerLib import mrml_bridge  # noqa: E402
from WaveSegSlicerLib.mrml_support import load_volume, new_scene  # noqa: E402
from WaveSegSlicerLib.selftest_cases import PROMPT_CASES, golden_mask, run_case  # noqa: E402
from WaveSegSlicerLib.volume_logic import VolumePromptLogic  # noqa: E402
from waveseg.io import read_image  # noqa: E402
from waveseg.metrics import dice  # noqa: E402
from waveseg.sample_data import SAMPLE_T1  # noqa: E402

SHAPE = (6, 9, 11)  # (Z, Y, X)


def _rotation(degrees: float) -> np.ndarray:
    a = np.deg2rad(degrees)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]) @ np.array(
        [[1, 0, 0], [0, np.cos(a / 2), -np.sin(a / 2)], [0, np.sin(a / 2), np.cos(a / 2)]])


GEOMETRIES = {
    "axis-aligned": (np.eye(3), (1.0, 1.0, 1.0)),
    "anisotropic": (np.eye(3), (0.7, 0.7, 3.0)),
    "oblique-anisotropic": (_rotation(30), (0.5, 0.8, 2.5)),
}


@pytest.fixture
def scene():
    return new_scene()


def make_volume(scene, direction: np.ndarray, spacing, origin=(10.0, -20.0, 5.0)):
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "synthetic")
    rng = np.random.default_rng(0)
    slicer.util.updateVolumeFromArray(node, rng.integers(0, 255, SHAPE).astype(np.int16))
    node.SetSpacing(*spacing)
    node.SetOrigin(*origin)
    matrix = vtk.vtkMatrix4x4()
    for r in range(3):
        for c in range(3):
            matrix.SetElement(r, c, direction[r, c])
    node.SetIJKToRASDirectionMatrix(matrix)
    return node


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_ras_to_ijk_inverts_the_volume_geometry(scene, geometry):
    node = make_volume(scene, *GEOMETRIES[geometry])
    ijk_to_ras = mrml_bridge.ijk_to_ras_matrix(node)
    for ijk in [(0, 0, 0), (10, 8, 5), (3.5, 2.25, 1.0)]:
        ras = (ijk_to_ras @ np.array([*ijk, 1.0]))[:3]
        np.testing.assert_allclose(mrml_bridge.ras_to_ijk(node, ras), ijk, atol=1e-6)
    array, spacing = mrml_bridge.volume_array(node)
    assert array.shape == SHAPE
    np.testing.assert_allclose(spacing, GEOMETRIES[geometry][1])


def test_ras_to_ijk_goes_through_parent_transforms(scene):
    node = make_volume(scene, np.eye(3), (1.0, 1.0, 1.0))
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    shift = vtk.vtkMatrix4x4()
    shift.SetElement(0, 3, 7.0)  # the volume is shown 7 mm to the right of its file position
    transform.SetMatrixTransformToParent(shift)
    node.SetAndObserveTransformNodeID(transform.GetID())
    ras_of_origin_voxel = (mrml_bridge.ijk_to_ras_matrix(node) @ np.array([0, 0, 0, 1.0]))[:3] + [7.0, 0, 0]
    np.testing.assert_allclose(mrml_bridge.ras_to_ijk(node, ras_of_origin_voxel), (0, 0, 0), atol=1e-6)


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_slice_axis_follows_the_voxel_axes(scene, geometry):
    direction, spacing = GEOMETRIES[geometry]
    node = make_volume(scene, direction, spacing)
    for ijk_axis in range(3):
        assert mrml_bridge.slice_axis_for_normal(node, -direction[:, ijk_axis]) == 2 - ijk_axis
    with pytest.raises(mrml_bridge.GeometryError, match="Rotate to volume plane"):
        mrml_bridge.slice_axis_for_normal(node, direction @ np.array([0.3, 0.0, 1.0]))


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_mask_round_trip_through_segment_and_seg_nrrd(scene, geometry, tmp_path):
    node = make_volume(scene, *GEOMETRIES[geometry])
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    segmentation.CreateDefaultDisplayNodes()
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(node)
    segment_id = mrml_bridge.ensure_segment(segmentation, "liver", (0.8, 0.2, 0.1))
    assert mrml_bridge.ensure_segment(segmentation, "liver") == segment_id  # found, not added twice
    mask = np.zeros(SHAPE, bool)
    mask[2, 1:5, 2:9] = True
    mask[4, 3, 3] = True
    mrml_bridge.write_mask_to_segment(mask, node, segmentation, segment_id)
    np.testing.assert_array_equal(mrml_bridge.read_segment_mask(segmentation, segment_id, node), mask)
    assert scene.GetNodesByClass("vtkMRMLLabelMapVolumeNode").GetNumberOfItems() == 0  # temporary nodes removed

    storage = segmentation.CreateDefaultStorageNode()
    path = tmp_path / "mask.seg.nrrd"
    storage.SetFileName(str(path))
    assert storage.WriteData(segmentation)
    written = read_image(path)  # our reader (SimpleITK + slicerio) sees the same voxels and geometry
    ras_of_voxels = mrml_bridge.ijk_to_ras_matrix(node)
    lps = np.diag([-1.0, -1.0, 1.0])
    np.testing.assert_allclose(lps @ np.array(written.direction).reshape(3, 3) * np.array(written.spacing), ras_of_voxels[:3, :3], atol=1e-5)
    zs, ys, xs = np.nonzero(written.array)
    offset = np.round(mrml_bridge.ras_to_ijk(node, lps @ np.array(written.origin))).astype(int)  # seg.nrrd may crop to the extent
    np.testing.assert_array_equal(np.stack([xs, ys, zs]).T + offset, np.stack(np.nonzero(mask)[::-1]).T)


def test_bad_masks_and_segments_are_refused(scene):
    node = make_volume(scene, np.eye(3), (1.0, 1.0, 1.0))
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    segment_id = mrml_bridge.ensure_segment(segmentation, "a")
    with pytest.raises(mrml_bridge.GeometryError, match="does not match"):
        mrml_bridge.write_mask_to_segment(np.zeros((2, 2, 2), bool), node, segmentation, segment_id)
    with pytest.raises(mrml_bridge.GeometryError, match="not in segmentation"):
        mrml_bridge.write_mask_to_segment(np.zeros(SHAPE, bool), node, segmentation, "missing")
    empty = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
    with pytest.raises(mrml_bridge.GeometryError, match="no image data"):
        mrml_bridge.volume_array(empty)


@pytest.fixture(scope="module")
def sample_scene():
    scene = new_scene()
    return scene, load_volume(scene, SAMPLE_T1, "colin27")


@pytest.mark.parametrize("case", PROMPT_CASES, ids=[c.name for c in PROMPT_CASES])
def test_prompt_table_matches_golden_masks(sample_scene, fast_segmenter, case):
    """The same table the in-Slicer self-test runs (prompts in RAS through the Logic)."""
    _, volume_node = sample_scene
    logic = VolumePromptLogic(fast_segmenter, volume_node, prefetch=False)
    run_case(case, volume_node, logic.box, logic.click, logic.propagate)
    assert logic.mask.any()
    assert dice(logic.mask, golden_mask(case)) >= 0.99
    logic.close()


def test_logic_undo_redo_and_writes_segment(sample_scene, fast_segmenter):
    scene, volume_node = sample_scene
    start = np.zeros(read_image(SAMPLE_T1).array.shape, bool)
    start[8, 100:110, 80:90] = True  # an existing segment the session starts from
    logic = VolumePromptLogic(fast_segmenter, volume_node, initial_mask=start, prefetch=False)
    ras = lambda ijk: (mrml_bridge.ijk_to_ras_matrix(volume_node) @ np.array([*ijk, 1.0]))[:3]  # noqa: E731
    normal = mrml_bridge.ijk_to_ras_matrix(volume_node)[:3, 2]
    axis, index = logic.box(ras((20, 20, 8)), ras((162, 198, 8)), normal)
    assert (axis, index) == (0, 8)
    after_box = logic.mask.copy()
    logic.click(ras((90, 30, 8)), False, normal)
    np.testing.assert_array_equal(logic.undo(), after_box)
    np.testing.assert_array_equal(logic.undo(), start)
    np.testing.assert_array_equal(logic.redo(), after_box)
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volume_node)
    segment_id = mrml_bridge.ensure_segment(segmentation, "brain")
    logic.write_to_segment(segmentation, segment_id)
    np.testing.assert_array_equal(mrml_bridge.read_segment_mask(segmentation, segment_id, volume_node), after_box)
    with pytest.raises(mrml_bridge.GeometryError, match="outside the volume"):
        logic.click(ras((500, 30, 8)), True, normal)
    np.testing.assert_array_equal(logic.mask, after_box)  # a refused prompt changes nothing
    logic.close()
