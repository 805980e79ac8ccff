"""The Slicer module's Logic against real MRML (PyPI slicer-core: scene, volume, segmentation and
segment editor nodes, the Segment Editor logic, storage nodes) without the GUI: the editor's grid,
masks in segments, .seg.nrrd, prompts in RAS through parent transforms."""

from __future__ import annotations

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is part of the test extra")
vtk = pytest.importorskip("vtk")

from slicer_harness import new_editor  # noqa: E402
from WaveSegSlicerLib import mrml_bridge  # noqa: E402
from WaveSegSlicerLib.editor_grid import EditorGrid, changed_box, image_array, image_of_mask, prompt_voxel_and_axis  # noqa: E402
from WaveSegSlicerLib.mrml_support import load_volume, new_scene  # noqa: E402
from WaveSegSlicerLib.selftest_cases import PROMPT_CASES, golden_mask, run_case, voxel_handlers  # noqa: E402
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


def editor_grid(scene, volume_node, segmentation_node=None):
    """The Segment Editor's grid for a volume (the segmentation's reference geometry taken from it),
    through the real vtkSlicerSegmentEditorLogic; returns (grid, source voxels, segmentation, logic)."""
    if segmentation_node is None:
        segmentation_node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
        segmentation_node.CreateDefaultDisplayNodes()
        segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(volume_node)
    _editor_node, logic = new_editor(scene, segmentation_node, volume_node)
    assert logic.UpdateAlignedSourceVolume()
    source = logic.GetAlignedSourceVolume()
    return EditorGrid.of_image(source), image_array(source), segmentation_node, logic


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_editor_grid_is_the_volume_grid_and_maps_ras_to_voxels(scene, geometry):
    node = make_volume(scene, *GEOMETRIES[geometry])
    grid, voxels, _segmentation, _logic = editor_grid(scene, node)
    np.testing.assert_array_equal(voxels, slicer.util.arrayFromVolume(node))  # no resampling when the geometry is the volume's
    np.testing.assert_allclose(grid.spacing_xyz, GEOMETRIES[geometry][1], rtol=1e-6)
    ijk_to_ras = mrml_bridge.ijk_to_ras_matrix(node)
    for ijk in [(0, 0, 0), (10, 8, 5), (3.5, 2.25, 1.0)]:
        np.testing.assert_allclose(grid.voxel((ijk_to_ras @ np.array([*ijk, 1.0]))[:3]), ijk, atol=1e-6)
    with pytest.raises(mrml_bridge.GeometryError, match="outside the volume"):
        grid.voxel((ijk_to_ras @ np.array([30.0, 0, 0, 1.0]))[:3])


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_slice_axis_follows_the_voxel_axes(scene, geometry):
    direction, spacing = GEOMETRIES[geometry]
    grid, *_ = editor_grid(scene, make_volume(scene, direction, spacing))
    for ijk_axis in range(3):
        assert grid.axis_for_normal(-direction[:, ijk_axis]) == 2 - ijk_axis
    with pytest.raises(mrml_bridge.GeometryError, match="Rotate to volume plane"):
        grid.axis_for_normal(direction @ np.array([0.3, 0.0, 1.0]))


def test_prompts_go_through_the_segmentation_parent_transform(scene):
    """A volume under a rotated and shifted transform: the segmentation's geometry follows it
    (vtkMRMLSegmentationNode::SetReferenceImageGeometryParameterFromVolumeNode), and a view on
    the transformed voxel planes maps to the right voxel and axis."""
    node = make_volume(scene, np.eye(3), (1.0, 1.0, 1.0))
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    to_parent = np.eye(4)
    to_parent[:3, :3], to_parent[:3, 3] = _rotation(30), (7.0, -3.0, 2.0)
    transform.SetMatrixTransformToParent(slicer.util.vtkMatrixFromArray(to_parent))
    node.SetAndObserveTransformNodeID(transform.GetID())
    grid, *_rest = editor_grid(scene, node)
    segmentation = _rest[1]
    world = to_parent @ mrml_bridge.ijk_to_ras_matrix(node)  # voxel -> world RAS
    for ijk_axis in range(3):
        ijk = (4.0, 3.0, 2.0)
        voxels, axis = prompt_voxel_and_axis(grid, segmentation, [(world @ np.array([*ijk, 1.0]))[:3]], world[:3, ijk_axis])
        np.testing.assert_allclose(voxels[0], ijk, atol=1e-6)
        assert axis == 2 - ijk_axis


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_mask_round_trip_through_segment_and_seg_nrrd(scene, geometry, tmp_path):
    node = make_volume(scene, *GEOMETRIES[geometry])
    grid, _voxels, segmentation, _logic = editor_grid(scene, node)
    segment_id = mrml_bridge.ensure_segment(segmentation, "liver", (0.8, 0.2, 0.1))
    assert mrml_bridge.ensure_segment(segmentation, "liver") == segment_id  # found, not added twice
    mask = np.zeros(SHAPE, bool)
    mask[2, 1:5, 2:9] = True
    mask[4, 3, 3] = True
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    assert logic.SetBinaryLabelmapToSegment(image_of_mask(mask, grid), segmentation, segment_id, logic.MODE_REPLACE, grid.extent)
    colour_tables = scene.GetNodesByClass("vtkMRMLColorTableNode").GetNumberOfItems()
    np.testing.assert_array_equal(mrml_bridge.read_segment_mask(segmentation, segment_id, node), mask)
    assert scene.GetNodesByClass("vtkMRMLLabelMapVolumeNode").GetNumberOfItems() == 0  # temporary nodes removed
    assert scene.GetNodesByClass("vtkMRMLColorTableNode").GetNumberOfItems() == colour_tables  # and its colour table

    storage = segmentation.CreateDefaultStorageNode()
    path = tmp_path / "mask.seg.nrrd"
    storage.SetFileName(str(path))
    assert storage.WriteData(segmentation)
    written = read_image(path)  # our reader (SimpleITK + slicerio) sees the same voxels and geometry
    ras_of_voxels = mrml_bridge.ijk_to_ras_matrix(node)
    lps = np.diag([-1.0, -1.0, 1.0])
    np.testing.assert_allclose(lps @ np.array(written.direction).reshape(3, 3) * np.array(written.spacing), ras_of_voxels[:3, :3], atol=1e-5)
    zs, ys, xs = np.nonzero(written.array)
    offset = np.round(grid.voxel(lps @ np.array(written.origin))).astype(int)  # seg.nrrd may crop to the extent
    np.testing.assert_array_equal(np.stack([xs, ys, zs]).T + offset, np.stack(np.nonzero(mask)[::-1]).T)


def test_bad_masks_and_volumes_are_refused(scene):
    node = make_volume(scene, np.eye(3), (1.0, 1.0, 1.0))
    grid, *_ = editor_grid(scene, node)
    with pytest.raises(mrml_bridge.GeometryError, match="does not match"):
        image_of_mask(np.zeros((2, 2, 2), bool), grid)
    assert changed_box(np.zeros(SHAPE, bool), np.zeros(SHAPE, bool)) is None
    empty = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
    with pytest.raises(mrml_bridge.GeometryError, match="no image data"):
        mrml_bridge.volume_array(empty)
    with pytest.raises(mrml_bridge.GeometryError, match="no geometry"):
        EditorGrid.of_image(None)


@pytest.fixture(scope="module")
def sample_scene():
    scene = new_scene()
    return scene, load_volume(scene, SAMPLE_T1, "colin27")


@pytest.mark.parametrize("case", PROMPT_CASES, ids=[c.name for c in PROMPT_CASES])
def test_prompt_table_matches_golden_masks(sample_scene, fast_segmenter, case):
    """The same table the in-Slicer self-test runs (prompts in RAS through the Logic)."""
    scene, volume_node = sample_scene
    grid, voxels, segmentation, _ = editor_grid(scene, volume_node)
    logic = VolumePromptLogic(fast_segmenter, voxels, grid.spacing_xyz, prefetch=False)
    box, point = voxel_handlers(grid, segmentation, logic)
    run_case(case, volume_node, box, point, logic.propagate)
    assert logic.mask.any()
    assert dice(logic.mask, golden_mask(case)) >= 0.99
    logic.close()


def test_logic_undo_redo_and_a_refused_prompt(sample_scene, fast_segmenter):
    scene, volume_node = sample_scene
    grid, voxels, segmentation, _ = editor_grid(scene, volume_node)
    start = np.zeros(voxels.shape, bool)
    start[8, 100:110, 80:90] = True  # an existing segment the session starts from
    logic = VolumePromptLogic(fast_segmenter, voxels, grid.spacing_xyz, initial_mask=start, prefetch=False)
    box, point = voxel_handlers(grid, segmentation, logic)
    ras = lambda ijk: (mrml_bridge.ijk_to_ras_matrix(volume_node) @ np.array([*ijk, 1.0]))[:3]  # noqa: E731
    normal = mrml_bridge.ijk_to_ras_matrix(volume_node)[:3, 2]
    assert box(ras((20, 20, 8)), ras((162, 198, 8)), normal) == (0, 8)
    after_box = logic.mask.copy()
    point(ras((90, 30, 8)), False, normal)
    np.testing.assert_array_equal(logic.undo(), after_box)
    np.testing.assert_array_equal(logic.undo(), start)
    np.testing.assert_array_equal(logic.redo(), after_box)
    with pytest.raises(mrml_bridge.GeometryError, match="outside the volume"):
        point(ras((500, 30, 8)), True, normal)
    np.testing.assert_array_equal(logic.mask, after_box)  # a refused prompt changes nothing
    with pytest.raises(ValueError, match="differs from the volume"):
        VolumePromptLogic(fast_segmenter, voxels, grid.spacing_xyz, initial_mask=start[:4], prefetch=False)
    logic.close()
