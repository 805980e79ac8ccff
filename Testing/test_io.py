"""File I/O: geometry survives round trips; DICOM/PNG/TIFF read; bad files are clear errors;
writes are atomic."""

import gzip

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import slicerio
import tifffile
from PIL import Image

from waveseg.errors import ImageFileError, WaveSegError
from waveseg.io import ImageVolume, describe, read_image, write_mask

OBLIQUE = tuple(np.array(sitk.VersorTransform((0.2, 0.3, 0.9), 0.4).GetMatrix()).tolist())


@pytest.fixture()
def oblique_volume(sample_volume):
    """The real sample with anisotropic spacing and a rotated, non-axis-aligned orientation."""
    return ImageVolume(sample_volume.array, (0.7, 0.8, 2.5), (-10.0, 20.0, 30.5), OBLIQUE)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".seg.nrrd", ".mha"])
def test_mask_geometry_survives_a_round_trip(oblique_volume, tmp_path, suffix):
    mask = oblique_volume.array > 90
    path = write_mask(mask, tmp_path / f"mask{suffix}", oblique_volume, segment_name="brain")
    back = read_image(path)
    assert np.array_equal(back.array > 0, mask)
    np.testing.assert_allclose(back.spacing, oblique_volume.spacing, atol=1e-5)
    np.testing.assert_allclose(back.origin, oblique_volume.origin, atol=1e-4)
    np.testing.assert_allclose(back.direction, oblique_volume.direction, atol=1e-5)
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "no temporary file may remain"


def test_seg_nrrd_is_a_slicer_segmentation_with_name_and_colour(sample_volume, tmp_path):
    path = write_mask(sample_volume.array > 90, tmp_path / "m.seg.nrrd", sample_volume, "brain", (0.1, 0.8, 0.2))
    segmentation = slicerio.read_segmentation(str(path))
    (segment,) = segmentation["segments"]
    assert segment["name"] == "brain"
    np.testing.assert_allclose(segment["color"], (0.1, 0.8, 0.2), atol=1e-4)
    np.testing.assert_allclose(segmentation["ijkToLPS"], sample_volume.ijk_to_lps(), atol=1e-6)


def test_empty_mask_writes_a_valid_empty_file(sample_volume, tmp_path):
    for name in ("e.nii.gz", "e.seg.nrrd"):
        path = write_mask(np.zeros(sample_volume.array.shape, bool), tmp_path / name, sample_volume)
        assert read_image(path).array.max() == 0


def test_2d_mask_keeps_2d_geometry(tmp_path):
    ref = ImageVolume(np.zeros((20, 30), np.uint8), (0.5, 0.25), (3.0, 4.0), (1.0, 0.0, 0.0, 1.0))
    mask = np.zeros((20, 30), bool)
    mask[5:10, 5:20] = True
    back = read_image(write_mask(mask, tmp_path / "m.nrrd", ref))
    assert np.array_equal(back.array > 0, mask) and back.spacing == (0.5, 0.25)


def test_dicom_series_folder_is_read_with_its_geometry(sample_volume, tmp_path):
    image = sitk.GetImageFromArray(sample_volume.array[:4].astype(np.int16))
    image.SetSpacing((0.9, 0.9, 2.0))
    image.SetOrigin((-5.0, 7.0, 11.0))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    series_uid = "1.2.826.0.1.3680043.2.1125.1.1"
    for k in range(image.GetDepth()):
        sl = image[:, :, k]
        sl.SetMetaData("0020|000e", series_uid)
        sl.SetMetaData("0020|0032", "\\".join(map(str, image.TransformIndexToPhysicalPoint((0, 0, k)))))
        sl.SetMetaData("0020|0013", str(k))
        sl.SetMetaData("0008|0060", "MR")
        sl.SetMetaData("0018|0050", "2.0")
        writer.SetFileName(str(tmp_path / f"slice{k:03d}.dcm"))
        writer.Execute(sl)
    volume = read_image(tmp_path)
    assert np.array_equal(volume.array, sample_volume.array[:4])
    np.testing.assert_allclose(volume.spacing, (0.9, 0.9, 2.0), atol=1e-4)
    np.testing.assert_allclose(volume.origin, (-5.0, 7.0, 11.0), atol=1e-4)


def test_png_and_tiff_read_as_2d_images(sample_slice, tmp_path):
    Image.fromarray(sample_slice).save(tmp_path / "g.png")
    Image.fromarray(np.stack([sample_slice] * 3, -1)).save(tmp_path / "c.png")
    tifffile.imwrite(tmp_path / "t.tif", sample_slice.astype(np.uint16) * 100)
    assert np.array_equal(read_image(tmp_path / "g.png").array, sample_slice)
    assert read_image(tmp_path / "c.png").array.shape == (*sample_slice.shape, 3)
    tif = read_image(tmp_path / "t.tif")
    assert tif.array.shape == sample_slice.shape and int(tif.array.max()) == int(sample_slice.max()) * 100
    assert "Y, X" in describe(tif)


def test_corrupt_truncated_and_missing_files_are_clear_errors(tmp_path):
    (tmp_path / "junk.nii.gz").write_bytes(b"this is not an image")
    with pytest.raises(ImageFileError, match="cannot read"):
        read_image(tmp_path / "junk.nii.gz")
    src = tmp_path / "ok.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.random.rand(20, 30, 40).astype(np.float32)), str(src))
    raw = gzip.decompress(src.read_bytes())
    (tmp_path / "cut.nii").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "cut.nii.gz").write_bytes(src.read_bytes()[: len(src.read_bytes()) // 2])
    (tmp_path / "short.nii").write_bytes(raw[:-4])  # one float32 voxel short
    (tmp_path / "short.nii.gz").write_bytes(gzip.compress(raw[:-4]))  # a whole gzip stream, one voxel short
    for cut in ("cut.nii", "cut.nii.gz", "short.nii", "short.nii.gz"):
        with pytest.raises(ImageFileError, match="cannot read"):
            read_image(tmp_path / cut)
    with pytest.raises(ImageFileError, match="does not exist"):
        read_image(tmp_path / "missing.nrrd")
    with pytest.raises(ImageFileError, match="no DICOM series"):
        read_image(tmp_path)


def test_4d_volume_is_refused(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6, 3), np.float32), np.eye(4)), tmp_path / "4d.nii.gz")
    with pytest.raises(ImageFileError, match="4D"):
        read_image(tmp_path / "4d.nii.gz")


def test_non_finite_voxels_are_reported_by_describe(tmp_path):
    a = np.ones((3, 4, 5), np.float32)
    a[0, 0, 0] = np.nan
    sitk.WriteImage(sitk.GetImageFromArray(a), str(tmp_path / "nan.nrrd"))
    assert "1 non-finite" in describe(read_image(tmp_path / "nan.nrrd"))


def test_bad_writes_leave_the_old_file_and_no_partial_file(sample_volume, tmp_path, monkeypatch):
    target = tmp_path / "mask.nii.gz"
    write_mask(np.zeros(sample_volume.array.shape, bool), target, sample_volume)
    before = target.read_bytes()
    with pytest.raises(WaveSegError, match="shape"):
        write_mask(np.zeros((2, 2, 2), bool), target, sample_volume)
    with pytest.raises(ImageFileError, match="cannot write masks as .txt"):
        write_mask(np.zeros((2, 2), bool), tmp_path / "mask.txt")

    def crash(image, path, *args):
        with open(path, "wb") as handle:
            handle.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(sitk, "WriteImage", crash)
    with pytest.raises(OSError):
        write_mask(np.ones(sample_volume.array.shape, bool), target, sample_volume)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.nii.gz"]
