"""Face crop and stitch: exactness outside the crops, identity round trips, sizes, batches, odd inputs, errors."""

from __future__ import annotations

import io
import math

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from remaskable_core.errors import InvalidInputError
from remaskable_core.faces.crop import CropSettings, crop_faces, stitch_faces
from remaskable_core.faces.face import Face


def make_face(cx: float, cy: float, side: float, angle_deg: float = 0.0, score: float = 0.9) -> Face:
    """A face box centred at (cx, cy) with ArcFace-like landmarks rotated by ``angle_deg`` (image-left eye first)."""
    angle = math.radians(angle_deg)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    offsets = np.array([[-0.18, -0.1], [0.18, -0.1], [0.0, 0.05], [-0.15, 0.22], [0.15, 0.22]]) * side
    landmarks = (offsets @ rotation.T + [cx, cy]).astype(np.float32)
    return Face((cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2), score, landmarks)


def random_photos(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """uint8-valued photos (as LoadImage gives them): noise plus smooth structure."""
    rng = np.random.default_rng(seed)
    smooth = cv2.resize(rng.random((batch * 3, height // 8 + 2, width // 8 + 2)).transpose(1, 2, 0).astype(np.float32),
                        (width, height), interpolation=cv2.INTER_CUBIC)
    smooth = smooth.reshape(height, width, batch, 3).transpose(2, 0, 1, 3)
    noise = rng.random((batch, height, width, 3)) * 0.2
    pixels = np.clip((smooth * 0.8 + noise) * 255, 0, 255).round().astype(np.uint8)
    return torch.from_numpy(pixels.astype(np.float32) / 255.0)


def footprint(matrix: np.ndarray, size: int, height: int, width: int, grow: int = 3) -> np.ndarray:
    """[H,W] bool: the crop's square mapped into the photo, grown by ``grow`` pixels (computed independently of
    the paste weights, from the corners of the crop)."""
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [size - 0.5, size - 0.5], [-0.5, size - 0.5]])
    points = corners @ inverse[:, :2].T + inverse[:, 2]
    canvas = np.zeros((height, width), np.uint8)
    cv2.fillConvexPoly(canvas, np.round(points * 16).astype(np.int32), 1, lineType=cv2.LINE_8, shift=4)
    kernel = np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)
    return cv2.dilate(canvas, kernel) > 0


def outside_all_crops(face_crops, image_index: int) -> np.ndarray:
    height, width = face_crops.image_height, face_crops.image_width
    inside = np.zeros((height, width), bool)
    for item in face_crops.items:
        if item.image_index == image_index and not item.is_placeholder:
            inside |= footprint(item.matrix, face_crops.crop_size, height, width)
    return ~inside


def as_png_bytes(image: torch.Tensor) -> np.ndarray:
    """What ComfyUI's SaveImage writes, read back: 255 * value, clipped, truncated to uint8, through PNG."""
    pixels = np.clip(255.0 * image.numpy(), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return np.array(Image.open(io.BytesIO(buffer.getvalue())))


# faces in the middle, overlapping, near and across the border (odd photo sizes)
FACES = [[make_face(40, 35, 30, 12), make_face(62, 50, 24, -25), make_face(3, 90, 26, 5)],
         [make_face(120, 4, 22, 40), make_face(70, 60, 40, 0)]]
SETTINGS = [CropSettings(size=64, align=True), CropSettings(size=96, align=False, context=2.0),
            CropSettings(size=None, align=False), CropSettings(size=None, align=True, paste_region="face oval"),
            CropSettings(size=72, align=True, feather=0)]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: f"size{s.size}-align{s.align}-{s.paste_region}")
def test_inverted_crops_change_nothing_outside_the_crops(settings):
    photos = random_photos(2, 103, 131)
    crops, masks, face_crops = crop_faces(photos, FACES, settings)
    assert crops.shape[0] == masks.shape[0] == len(face_crops) == 5
    assert crops.shape[1] == crops.shape[2] == face_crops.crop_size and face_crops.crop_size % 8 == 0

    stitched, pasted = stitch_faces(photos, 1.0 - crops, face_crops)
    assert stitched.shape == photos.shape and pasted.shape == photos.shape[:3]
    for index in range(2):
        untouched = (pasted[index] == 0).numpy()
        assert np.array_equal(stitched[index].numpy()[untouched], photos[index].numpy()[untouched])
        outside = outside_all_crops(face_crops, index)
        assert outside.any() and (pasted[index].numpy()[outside] == 0).all()
        saved, original = as_png_bytes(stitched[index]), as_png_bytes(photos[index])
        assert np.array_equal(saved[outside], original[outside])
        assert not np.array_equal(saved, original)
    # the edit landed: at every face centre the photo is (close to) inverted
    for index, faces in enumerate(FACES):
        for face in faces:
            x, y = int(face.center[0]), int(face.center[1])
            if 0 <= x < 131 and 0 <= y < 103 and pasted[index, y, x] > 0.999:
                expected = 1.0 - photos[index, y, x]
                assert torch.allclose(stitched[index, y, x], expected, atol=0.25), (index, x, y)


def test_unscaled_unrotated_crop_is_a_pixel_copy_and_stitching_it_back_is_exact():
    photos = random_photos(2, 103, 131, seed=3)
    crops, _, face_crops = crop_faces(photos, FACES, CropSettings(size=None, align=False))
    for crop, item in zip(crops, face_crops.items):
        shift = item.matrix[:, 2].astype(int)
        assert np.array_equal(item.matrix[:, :2], np.eye(2))
        y, x = -shift[1] + 20, -shift[0] + 20  # a crop pixel well inside the photo for these faces
        if 0 <= y < 103 and 0 <= x < 131:
            assert torch.equal(crop[20, 20], photos[item.image_index, y, x])
    stitched, _ = stitch_faces(photos, crops, face_crops)
    assert torch.equal(stitched, photos)


@pytest.mark.parametrize("settings", [CropSettings(size=256, align=True), CropSettings(size=256, align=False),
                                      CropSettings(size=None, align=True)], ids=["up-rot", "up", "rot"])
def test_identity_edit_changes_pixels_inside_only_by_resampling(settings):
    # (a crop smaller than the face loses detail by design: that is the size the user asked the model to see)
    from skimage import data

    photo = torch.from_numpy(data.astronaut().astype(np.float32) / 255.0)[None]
    faces = [[make_face(226, 121, 103, 3), make_face(330, 330, 70, -20)]]
    crops, _, face_crops = crop_faces(photo, faces, settings)
    stitched, pasted = stitch_faces(photo, crops, face_crops)
    error = (stitched - photo).abs()[0][pasted[0] > 0]
    assert float(error.mean()) < 4 / 255 and float(error.max()) < 0.5
    assert torch.equal(stitched[0][pasted[0] == 0], photo[0][pasted[0] == 0])


@pytest.mark.parametrize("size", [64, 200, 512, 1000])
def test_crop_sizes_are_multiples_of_8(size):
    photos = random_photos(1, 77, 93)
    rng = np.random.default_rng(size)
    faces = [[make_face(*rng.uniform(10, 70, 2), rng.uniform(9, 61)) for _ in range(3)]]
    if size % 8:
        with pytest.raises(InvalidInputError, match="multiple of 8"):
            crop_faces(photos, faces, CropSettings(size=size))
    else:
        assert crop_faces(photos, faces, CropSettings(size=size))[0].shape[1:3] == (size, size)
    kept = crop_faces(photos, faces, CropSettings(size=None, context=1.37))[2].crop_size
    assert kept % 8 == 0 and kept >= max(max(f.width, f.height) for f in faces[0]) * 1.37


def test_faces_are_centred_and_eyes_levelled_in_the_crop():
    photos = random_photos(1, 120, 160)
    face = make_face(90, 60, 40, angle_deg=30)
    _, _, face_crops = crop_faces(photos, [[face]], CropSettings(size=128, align=True, context=2.0))
    matrix = face_crops.items[0].matrix
    in_crop = face.landmarks @ matrix[:, :2].T + matrix[:, 2]
    assert abs(in_crop[0, 1] - in_crop[1, 1]) < 1e-6 and in_crop[0, 0] < in_crop[1, 0]
    centre = np.array(face.center) - 0.5
    assert np.allclose(matrix[:, :2] @ centre + matrix[:, 2], [63.5, 63.5])
    eye_distance = np.linalg.norm(face.landmarks[1] - face.landmarks[0])
    assert np.isclose(np.linalg.norm(in_crop[1] - in_crop[0]), eye_distance * 128 / 80)


def test_photos_without_faces_pass_through_exactly():
    photos = random_photos(3, 50, 70)
    faces = [[], [make_face(30, 25, 20)], []]
    for settings in (CropSettings(size=64), CropSettings(size=None)):
        crops, masks, face_crops = crop_faces(photos, faces, settings)
        assert [item.image_index for item in face_crops.items] == [0, 1, 2]
        assert [item.is_placeholder for item in face_crops.items] == [True, False, True]
        assert masks[0].abs().sum() == 0 and masks[2].abs().sum() == 0 and masks[1].sum() > 0
        stitched, pasted = stitch_faces(photos, 1.0 - crops, face_crops)
        assert torch.equal(stitched[0], photos[0]) and torch.equal(stitched[2], photos[2])
        assert pasted[0].abs().sum() == 0 and not torch.equal(stitched[1], photos[1])
    # nothing at all to crop: small stand-ins in keep-scale mode, still defined
    crops, _, face_crops = crop_faces(photos[:1], [[]], CropSettings(size=None))
    assert crops.shape == (1, 64, 64, 3) and face_crops.face_count == 0
    assert torch.equal(stitch_faces(photos[:1], crops, face_crops)[0], photos[:1])


def test_rgba_keeps_its_alpha_and_greyscale_comes_back_rgb():
    rgb = random_photos(1, 61, 45)
    alpha = torch.rand(1, 61, 45, 1)
    faces = [[make_face(22, 30, 20, 10)]]
    crops, _, face_crops = crop_faces(torch.cat([rgb, alpha], -1), faces, CropSettings(size=64))
    assert crops.shape[-1] == 3
    stitched, pasted = stitch_faces(torch.cat([rgb, alpha], -1), 1 - crops, face_crops)
    assert stitched.shape == (1, 61, 45, 4) and torch.equal(stitched[..., 3:], alpha)
    grey = rgb[..., :1]
    crops, _, face_crops = crop_faces(grey, faces, CropSettings(size=64))
    stitched, pasted = stitch_faces(grey, crops, face_crops)
    assert stitched.shape == (1, 61, 45, 3)
    assert torch.equal(stitched[0][pasted[0] == 0], grey.expand(-1, -1, -1, 3)[0][pasted[0] == 0])


def test_several_variants_per_crop_give_one_photo_per_variant():
    photos = random_photos(2, 64, 80)
    faces = [[make_face(20, 20, 20), make_face(55, 40, 22)], [make_face(40, 30, 30)]]
    crops, _, face_crops = crop_faces(photos, faces, CropSettings(size=64))
    variants = torch.cat([crops, 1 - crops])  # as Repeat Latent Batch orders them
    stitched, pasted = stitch_faces(photos, variants, face_crops)
    assert stitched.shape[0] == 4 and pasted.shape[0] == 4
    plain, _ = stitch_faces(photos, crops, face_crops)
    inverted, _ = stitch_faces(photos, 1 - crops, face_crops)
    assert torch.equal(stitched[:2], plain) and torch.equal(stitched[2:], inverted)


def test_edit_mask_limits_the_paste_to_the_edit():
    photos = random_photos(1, 90, 90)
    faces = [[make_face(45, 45, 40)]]
    crops, _, face_crops = crop_faces(photos, faces, CropSettings(size=64, align=False))
    nothing = torch.zeros(1, 64, 64)
    stitched, pasted = stitch_faces(photos, 1 - crops, face_crops, nothing)
    assert torch.equal(stitched, photos) and pasted.abs().sum() == 0
    left = torch.zeros(1, 64, 64)
    left[:, :, :32] = 1.0
    stitched, pasted = stitch_faces(photos, 1 - crops, face_crops, left)
    changed = (stitched != photos).any(-1)[0]
    columns = changed.nonzero()[:, 1]
    assert columns.numel() > 0 and int(columns.max()) <= 46  # crop column 31.5 maps to photo column 45
    # a mask per crop at the edited size is accepted too
    big = torch.nn.functional.interpolate((1 - crops).movedim(-1, 1), size=(128, 128)).movedim(1, -1)
    stitched_big, pasted_big = stitch_faces(photos, big, face_crops, torch.ones(1, 128, 128))
    assert torch.equal(stitched_big[0][pasted_big[0] == 0], photos[0][pasted_big[0] == 0])


def test_upscaled_edits_land_in_place():
    from skimage import data

    photo = torch.from_numpy(data.astronaut()[::2, ::2].astype(np.float32) / 255.0)[None]
    crops, _, face_crops = crop_faces(photo, [[make_face(113, 60, 52, 5)]], CropSettings(size=64))
    upscaled = torch.nn.functional.interpolate(crops.movedim(-1, 1), size=(256, 256), mode="bicubic",
                                               align_corners=False).clamp(0, 1).movedim(1, -1)
    stitched, pasted = stitch_faces(photo, upscaled, face_crops)
    same_size, _ = stitch_faces(photo, crops, face_crops)
    inside = pasted[0] > 0.99
    assert float((stitched - same_size).abs()[0][inside].mean()) < 2 / 255


def test_overlapping_crops_keep_each_face_from_its_own_crop():
    photos = torch.full((1, 80, 120, 3), 0.25)
    faces = [[make_face(45, 40, 30), make_face(75, 40, 30)]]  # crops of side 45 overlap by 15 px
    crops, _, face_crops = crop_faces(photos, faces, CropSettings(size=64, align=False))
    edited = crops.clone()
    edited[0] = 1.0  # only the first face is edited; the second crop still shows it unedited at its edge
    stitched, _ = stitch_faces(photos, edited, face_crops)
    assert torch.allclose(stitched[0, 40, 45], torch.tensor(1.0))
    assert torch.allclose(stitched[0, 40, 75], torch.tensor(0.25))
    assert float(stitched[0, 40, 52, 0]) > 0.99  # inside face 1's crop, nearer its centre: face 1's edit wins


def test_edits_reach_the_photo_border_when_the_crop_hangs_over_it():
    photos = random_photos(1, 60, 60)
    faces = [[make_face(5, 30, 24)]]
    crops, masks, face_crops = crop_faces(photos, faces, CropSettings(size=64, align=False, feather=8))
    stitched, pasted = stitch_faces(photos, torch.ones_like(crops), face_crops)
    assert float(pasted[0, 30, 0]) == 1.0 and torch.equal(stitched[0, 30, 0], torch.ones(3))
    # the inward fade: 0 at the crop's inner edges, full strength in the middle
    assert float(masks[0, 32, 63]) < 0.05 and float(masks[0, 32, 32]) == 1.0
    assert float(masks[0, 32, 0]) == 0.0  # padding outside the photo is not pasted


@pytest.mark.parametrize("edited_shape, match", [((4, 64, 64, 3), "not a multiple"), ((3, 64, 48, 3), "square")])
def test_stitch_rejects_crops_that_do_not_fit(edited_shape, match):
    photos = random_photos(1, 50, 50)
    _, _, face_crops = crop_faces(photos, [[make_face(20, 20, 20), make_face(30, 30, 20), make_face(10, 40, 20)]],
                                  CropSettings(size=64))
    with pytest.raises(InvalidInputError, match=match):
        stitch_faces(photos, torch.rand(edited_shape), face_crops)


def test_stitch_rejects_another_photo():
    photos = random_photos(1, 50, 50)
    crops, _, face_crops = crop_faces(photos, [[make_face(20, 20, 20)]], CropSettings(size=64))
    with pytest.raises(InvalidInputError, match="same image"):
        stitch_faces(random_photos(1, 50, 51), crops, face_crops)
    with pytest.raises(InvalidInputError, match="same image"):
        stitch_faces(random_photos(2, 50, 50), crops, face_crops)
    with pytest.raises(InvalidInputError, match="crop space"):
        stitch_faces(photos, crops, face_crops, torch.ones(1, 50, 50))
